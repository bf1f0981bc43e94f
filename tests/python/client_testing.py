"""Helpers of the Python client's tests (test_client_*.py): a random labelled corpus and the uniform oracle.

The client under test is the installed maas_client (deploy/deps.d/50-python-client.sh; CTest runs it first).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from typing import Iterator, Sequence, Tuple

import grpc
import numpy as np
import scipy.stats

# Labels whose code-point order differs from case-insensitive order, as scikit-learn's classes_ sorts them.
CLASSES = ["sports", "Cooking", "tech", "été"]
_TOPICAL = {
    "sports": ["goal", "match", "team", "striker", "score", "league", "coach", "Football", "win", "Straße"],
    "Cooking": ["bake", "bread", "dough", "oven", "salt", "butter", "café", "recipe", "crème", "Brûlée"],
    "tech": ["server", "latency", "gRPC", "kernel", "cache", "thread", "Linux", "naïve", "2024", "v2"],
    "été": ["plage", "soleil", "mer", "vacances", "日本語", "東京", "travel", "été", "Ñandú", "ÉCOLE"],
}
_COMMON = ["the", "and", "of", "to", "in", "is", "it", "for", "on", "with", "a", "I", "x", "don't", "e-mail"]


def make_corpus(seed: int, num_docs: int):
    """Random documents with class-dependent word frequencies: (texts, labels)."""
    rng = np.random.default_rng(seed)
    vocabulary = _COMMON + [w for c in CLASSES for w in _TOPICAL[c]]
    texts, labels = [], []
    for _ in range(num_docs):
        label = CLASSES[rng.integers(len(CLASSES))]
        weights = np.where(np.isin(vocabulary, _TOPICAL[label]), 4.0, 1.0)
        words = rng.choice(vocabulary, size=rng.integers(1, 20), p=weights / weights.sum())
        texts.append(" ".join(w.upper() if rng.random() < 0.1 else str(w) for w in words))
        labels.append(label)
    return texts, labels


def uniform_log_density(x, low, high):
    """log p(x) of the uniform distribution on the closed box [low, high], from scipy."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    return scipy.stats.uniform(loc=low, scale=high - low).logpdf(x).sum(axis=1)


@contextlib.contextmanager
def fake_generative_service(handlers: dict, options: Sequence[Tuple[str, int]] = ()) -> Iterator[str]:
    """An in-process GenerativeService on 127.0.0.1 that answers `handlers` (method name -> gRPC method handler,
    e.g. grpc.unary_stream_rpc_method_handler(...)); yields its address and stops it at the end."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2), options=list(options))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("maas.generative.v1.GenerativeService",
                                                                          handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)
