"""In-process fake ListModels endpoints for the Python client's tests (test_client_paging.py, test_pycli_models.py):
a gRPC server answering the ListModels of the gateway and / or the services over fixed entries, paged as the
contract says, recording what it was asked."""

import concurrent.futures
import json

import grpc

from maas_client.pb import common

SERVICES = {
    "generative": "maas.generative.v1.GenerativeService",
    "discriminative": "maas.discriminative.v1.DiscriminativeService",
    "gateway": "maas.gateway.v1.Gateway",
}
TYPES = {"generative": common.GENERATIVE, "discriminative": common.DISCRIMINATIVE}


class FakeListing:
    """ListModels of one fake endpoint over fixed entries, paged as the contract says: entries (models and
    unreadable versions together) ordered by (name, version, type) and filtered by name_prefix; page_size > 0
    gives at most min(page_size, 1000, page_cap) entries (page_cap plays the message budget) after the token's
    entry, and a token whenever the page was cut there (so a last page can come back empty); a token needs
    page_size > 0 and the same name_prefix and all_versions (INVALID_ARGUMENT otherwise). page_size 0 answers
    everything, RESOURCE_EXHAUSTED above unpaged_cap entries (the message cap). pages=False: a server older than
    paging, which ignores page_size and page_token. Every page carries missing_backends. `requests` records
    (page_size, page_token) of each call."""

    def __init__(self, models=(), unreadable=(), missing_backends=(), page_cap=1000, unpaged_cap=None, pages=True):
        self.entries = sorted([*models, *unreadable], key=lambda e: (e.name, e.version, e.type))
        self.missing_backends = list(missing_backends)
        self.page_cap = page_cap
        self.unpaged_cap = unpaged_cap
        self.pages = pages
        self.requests = []
        self.max_page_bytes = []  # of each call

    def __call__(self, request, context):
        self.requests.append((request.page_size, request.page_token))
        self.max_page_bytes.append(request.max_page_bytes)
        covered = [e for e in self.entries if e.name.startswith(request.name_prefix)]
        if not self.pages or (request.page_size == 0 and not request.page_token):
            if self.pages and self.unpaged_cap is not None and len(covered) > self.unpaged_cap:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the listing is above the largest message; page")
            return self._response(covered, "")
        if request.page_size <= 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size {request.page_size} with a page token")
        start = 0
        if request.page_token:
            prefix, all_versions, *key = json.loads(request.page_token)
            if (prefix, all_versions) != (request.name_prefix, request.all_versions):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the token is of another listing")
            start = sum(1 for e in covered if [e.name, e.version, e.type] <= key)
        limit = min(request.page_size, 1000, self.page_cap)
        page = covered[start:start + limit]
        token = ""
        if len(page) == limit:
            last = page[-1]
            token = json.dumps([request.name_prefix, request.all_versions, last.name, last.version, last.type])
        return self._response(page, token)

    def _response(self, entries, token):
        response = common.ListModelsResponse(missing_backends=self.missing_backends, next_page_token=token)
        for e in entries:
            (response.models if isinstance(e, common.ModelInfo) else response.unreadable_versions).append(e)
        return response


def serve(listings):
    """A gRPC server on 127.0.0.1 answering ListModels of the services named in `listings` (name -> FakeListing);
    every other method is UNIMPLEMENTED, as at a service's endpoint."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    for name, listing in listings.items():
        handler = grpc.unary_unary_rpc_method_handler(
            listing, request_deserializer=common.ListModelsRequest.FromString,
            response_serializer=common.ListModelsResponse.SerializeToString)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICES[name],
                                                                                  {"ListModels": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def model(name, version=1, kind="generative", typed=True):
    return common.ModelInfo(name=name, version=version, type=TYPES[kind] if typed else 0, family="uniform")


def damaged(name, version=1, kind="generative", typed=True):
    return common.UnreadableVersion(name=name, version=version, type=TYPES[kind] if typed else 0, code="DATA_LOSS",
                                    message=f"{name} version {version} cannot be read")
