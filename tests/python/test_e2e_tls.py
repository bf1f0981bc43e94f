"""TLS on every hop: a generative server with TLS, a discriminative server with mutual TLS, a gateway serving
TLS and talking (mutual) TLS to both backends (the gRPC proxy), a gateway whose HTTP/2 front serves TLS and mutual
TLS in front of plaintext backends, Python clients and the maas CLI with the CA (and a client certificate).
Plaintext or certificate-less clients are refused. Certificates are made in the test by openssl."""

import os
import pathlib
import subprocess

import grpc
import pytest

from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas.common.v1 import common_pb2
from maas.gateway.v1 import gateway_pb2_grpc
from maas.generative.v1 import generative_pb2 as gen, generative_pb2_grpc

from maas_testing import TIMEOUT, ServerProcess, binary, start_discriminative, start_generative


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=maas test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=maas {name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.pem", *ext, cwd=d)
    return {k: d / f"{k}" for k in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.fixture(scope="module")
def servers(pki, tmp_path_factory):
    root = tmp_path_factory.mktemp("tls-models")
    server_tls = ["--tls_cert_file", pki["server.pem"], "--tls_key_file", pki["server.key"]]
    generative = start_generative(root / "generative", extra=server_tls)
    discriminative = start_discriminative(root / "discriminative",
                                          extra=server_tls + ["--tls_client_ca_file", pki["ca.pem"]])
    gateway = ServerProcess("maas-gateway", [
        "--port", 0, "--generative_target", f"ipv4:127.0.0.1:{generative.port}",
        "--discriminative_target", f"ipv4:127.0.0.1:{discriminative.port}", *server_tls,
        "--backend_tls_ca_file", pki["ca.pem"], "--backend_tls_cert_file", pki["client.pem"],
        "--backend_tls_key_file", pki["client.key"], "--health_check_interval_ms", "200"])
    yield {"generative": generative, "discriminative": discriminative, "gateway": gateway}
    for process in (gateway, generative, discriminative):
        assert process.stop() == 0
        process.release()


def credentials(pki, client_cert=False):
    kwargs = {"root_certificates": pki["ca.pem"].read_bytes()}
    if client_cert:
        kwargs.update(private_key=pki["client.key"].read_bytes(), certificate_chain=pki["client.pem"].read_bytes())
    return grpc.ssl_channel_credentials(**kwargs)


def list_models(channel, stub_class=gateway_pb2_grpc.GatewayStub, timeout=TIMEOUT, metadata=()):
    return stub_class(channel).ListModels(common_pb2.ListModelsRequest(), timeout=timeout, metadata=metadata)


def test_tls_server_accepts_tls_and_refuses_plaintext(servers, pki):
    address = f"127.0.0.1:{servers['generative'].port}"
    with grpc.secure_channel(address, credentials(pki)) as channel:
        stub = generative_pb2_grpc.GenerativeServiceStub(channel)
        spec = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0], high=[2.0]))
        assert stub.CreateModel(gen.CreateModelRequest(name="tls-box", spec=spec), timeout=TIMEOUT).info.version == 1
    with grpc.insecure_channel(address) as channel:
        with pytest.raises(grpc.RpcError) as error:
            list_models(channel, generative_pb2_grpc.GenerativeServiceStub, timeout=3)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_server_requires_a_client_certificate(servers, pki):
    from maas.discriminative.v1 import discriminative_pb2_grpc
    address = f"127.0.0.1:{servers['discriminative'].port}"
    with grpc.secure_channel(address, credentials(pki, client_cert=True)) as channel:
        assert list(list_models(channel, discriminative_pb2_grpc.DiscriminativeServiceStub).models) == []
    with grpc.secure_channel(address, credentials(pki)) as channel:
        with pytest.raises(grpc.RpcError) as error:
            list_models(channel, discriminative_pb2_grpc.DiscriminativeServiceStub, timeout=3)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_gateway_serves_tls_and_reaches_tls_backends(servers, pki):
    # The HTTP/2 front talks plaintext to backends: with backend TLS the gRPC proxy serves, and says so.
    assert "the gRPC proxy serves every call" in servers["gateway"].stderr_text()
    address = f"127.0.0.1:{servers['gateway'].port}"
    with grpc.secure_channel(address, credentials(pki)) as channel:
        names = [m.name for m in list_models(channel).models]  # fans out to both backends over (m)TLS
        assert names == ["tls-box"]
        batches = list(generative_pb2_grpc.GenerativeServiceStub(channel).Sample(
            gen.SampleRequest(model=common_pb2.ModelRef(name="tls-box"), num_samples=5, seed=3), timeout=TIMEOUT))
        assert sum(b.x.rows for b in batches) == 5


def test_cli_talks_tls(servers, pki):
    maas = [str(binary("maas")), f"--target=127.0.0.1:{servers['gateway'].port}"]
    ok = subprocess.run(maas + [f"--tls_ca_file={pki['ca.pem']}", "models"], capture_output=True, text=True,
                        timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert "tls-box" in ok.stdout
    plain = subprocess.run(maas + ["--timeout=3", "models"], capture_output=True, text=True, timeout=30)
    assert plain.returncode == 1 and "UNAVAILABLE" in plain.stderr
    bad = subprocess.run(maas + ["--tls_cert_file=x.pem", "models"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr
    # A failed handshake (a CA that did not sign the server's certificate): gRPC core's own log lines stay off
    # stderr, which holds exactly the one error line (a JSON one with --json).
    for json in ([], ["--json"]):
        refused = subprocess.run(maas + [*json, "--timeout=3", f"--tls_ca_file={pki['client.pem']}", "models"],
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
        assert refused.stderr.startswith('{"error":{"code":"UNAVAILABLE"' if json else "maas: UNAVAILABLE: ")


def test_a_key_that_does_not_match_the_certificate_is_named_not_port_in_use(pki, tmp_path):
    """issue 5 item 9: a mismatched pair used to be reported as 'port in use'."""
    result = subprocess.run(
        [binary("maas-generative"), "--port", "0", "--model_dir", str(tmp_path / "m"),
         "--tls_cert_file", pki["server.pem"], "--tls_key_file", pki["client.key"]],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "is not the private key of the certificate" in result.stderr
    assert "client.key" in result.stderr and "server.pem" in result.stderr
    assert "port in use" not in result.stderr


@pytest.mark.parametrize("server", ["maas-generative", "maas-discriminative", "maas-gateway"])
def test_an_unreadable_client_ca_is_named_not_port_in_use(pki, tmp_path, server):
    """A --tls_client_ca_file holding no certificate used to be reported by the services (and the gateway's gRPC
    proxy) as 'cannot listen ... port in use', after a gRPC core error line."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    args = ["--port", "0", "--tls_cert_file", pki["server.pem"], "--tls_key_file", pki["server.key"],
            "--tls_client_ca_file", garbage]
    if server == "maas-gateway":
        args += ["--h2_front=false", "--generative_target", "ipv4:127.0.0.1:1", "--discriminative_target",
                 "ipv4:127.0.0.1:2"]
    else:
        args += ["--model_dir", tmp_path / "m"]
    result = subprocess.run([binary(server), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "tls_client_ca_file" in result.stderr and "garbage.pem" in result.stderr, result.stderr
    assert "holds no readable PEM certificate" in result.stderr, result.stderr
    assert "port in use" not in result.stderr


@pytest.mark.parametrize("case", ["garbage_ca", "wrong_client_key"])
def test_the_gateway_checks_its_backend_tls_files_at_start(pki, tmp_path, case):
    """The gateway used to accept a backend CA file holding no certificate, or a backend client certificate with
    another key, print its ready line and then log gRPC core errors on every connection attempt."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    args = ["--port", "0", "--generative_target", "ipv4:127.0.0.1:1", "--discriminative_target", "ipv4:127.0.0.1:2"]
    if case == "garbage_ca":
        args += ["--backend_tls_ca_file", garbage]
        expected = ["backend_tls_ca_file", "garbage.pem", "holds no readable PEM certificate"]
    else:
        args += ["--backend_tls_ca_file", pki["ca.pem"], "--backend_tls_cert_file", pki["client.pem"],
                 "--backend_tls_key_file", pki["server.key"]]
        expected = ["backend_tls_key_file", "server.key", "is not the private key of the certificate",
                    "backend_tls_cert_file", "client.pem"]
    result = subprocess.run([binary("maas-gateway"), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "serving" not in result.stderr


@pytest.fixture(scope="module")
def plain_backends(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls-front-models")
    generative = start_generative(root / "generative")
    discriminative = start_discriminative(root / "discriminative")
    yield generative, discriminative
    for process in (generative, discriminative):
        assert process.stop() == 0
        process.release()


def front_gateway_args(backends, pki, mutual):
    generative, discriminative = backends
    args = ["--port", "0", "--generative_target", f"ipv4:127.0.0.1:{generative.port}",
            "--discriminative_target", f"ipv4:127.0.0.1:{discriminative.port}",
            "--tls_cert_file", str(pki["server.pem"]), "--tls_key_file", str(pki["server.key"]),
            "--health_check_interval_ms", "200"]
    return args + (["--tls_client_ca_file", str(pki["ca.pem"])] if mutual else [])


def test_gateway_front_serves_tls_over_plaintext_backends(plain_backends, pki):
    """The default gateway (HTTP/2 front) ends TLS itself: a backend route (generative), the default route
    (Gateway.ListModels through the gateway's own gRPC server) and the C++ CLI; plaintext clients are refused."""
    gateway = ServerProcess("maas-gateway", front_gateway_args(plain_backends, pki, mutual=False))
    try:
        assert "(h2 front, TLS)" in gateway.stderr_text()
        with grpc.secure_channel(gateway.address, credentials(pki)) as channel:
            stub = generative_pb2_grpc.GenerativeServiceStub(channel)
            spec = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0], high=[3.0]))
            assert stub.CreateModel(gen.CreateModelRequest(name="front-box", spec=spec),
                                    timeout=TIMEOUT).info.version == 1
            batches = list(stub.Sample(gen.SampleRequest(model=common_pb2.ModelRef(name="front-box"), num_samples=7,
                                                         seed=3), timeout=TIMEOUT))
            assert sum(b.x.rows for b in batches) == 7
            assert [m.name for m in list_models(channel).models] == ["front-box"]
            # Megabytes each way: many TLS records, partial writes and the flow-control windows on the way.
            wide = gen.GenerativeModelSpec(uniform=gen.UniformSpec(low=[0.0] * 100_000, high=[1.0] * 100_000))
            assert stub.CreateModel(gen.CreateModelRequest(name="front-wide", spec=wide),
                                    timeout=TIMEOUT).info.version == 1
            batches = list(stub.Sample(gen.SampleRequest(model=common_pb2.ModelRef(name="front-wide"),
                                                         num_samples=20, seed=5), timeout=TIMEOUT))
            assert sum(b.x.rows for b in batches) == 20
            assert all(0.0 <= v <= 1.0 for b in batches for v in b.x.values)
        with grpc.insecure_channel(gateway.address) as channel:
            with pytest.raises(grpc.RpcError) as error:
                list_models(channel, timeout=3)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        ok = subprocess.run([str(binary("maas")), f"--target={gateway.address}", f"--tls_ca_file={pki['ca.pem']}",
                             "models"], capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        assert "front-box" in ok.stdout
    finally:
        assert gateway.stop() == 0
        gateway.release()


def test_gateway_front_mutual_tls_requires_a_client_certificate(plain_backends, pki):
    gateway = ServerProcess("maas-gateway", front_gateway_args(plain_backends, pki, mutual=True))
    try:
        assert "(h2 front, mutual TLS)" in gateway.stderr_text()
        with grpc.secure_channel(gateway.address, credentials(pki, client_cert=True)) as channel:
            list_models(channel)
        with grpc.secure_channel(gateway.address, credentials(pki)) as channel:
            with pytest.raises(grpc.RpcError) as error:
                list_models(channel, timeout=3)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        # The refused handshake did not hurt the front: a good client still gets through.
        with grpc.secure_channel(gateway.address, credentials(pki, client_cert=True)) as channel:
            list_models(channel)
    finally:
        assert gateway.stop() == 0
        gateway.release()


def test_gateway_front_names_a_key_that_does_not_match_the_certificate(plain_backends, pki):
    args = front_gateway_args(plain_backends, pki, mutual=False)
    args[args.index("--tls_key_file") + 1] = str(pki["client.key"])
    result = subprocess.run([str(binary("maas-gateway")), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "is not the private key of the certificate" in result.stderr
    assert "client.key" in result.stderr and "server.pem" in result.stderr


def listening_tcp_ports(pid: int) -> set:
    """The TCP ports process `pid` listens on (from /proc: its socket inodes in /proc/net/tcp and tcp6)."""
    inodes = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in pathlib.Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # state LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_gateway_front_loopback_server_is_no_way_around_mutual_tls(plain_backends, pki):
    """Behind the HTTP/2 front the gateway's own gRPC server listens on a loopback port, plaintext. Any local
    process can reach it: without the front's per-process key it must refuse every call (health, the Gateway
    service, a backend route), even with a forged key or a forged client address, while clients with a
    certificate still get everything through the front. (It used to serve them all, skipping mutual TLS.)"""
    gateway = ServerProcess("maas-gateway", front_gateway_args(plain_backends, pki, mutual=True))
    try:
        with grpc.secure_channel(gateway.address, credentials(pki, client_cert=True)) as channel:
            list_models(channel)
        hidden = listening_tcp_ports(gateway.proc.pid) - {gateway.port}
        assert hidden, "the gateway's loopback gRPC server was not found"
        for port in hidden:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                forged = (("maas-front-key", "0" * 32), ("maas-client-peer", "ipv4:6.6.6.6:666"))
                calls = [
                    lambda md: health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                         timeout=TIMEOUT, metadata=md),
                    lambda md: list_models(channel, timeout=TIMEOUT, metadata=md),
                    lambda md: generative_pb2_grpc.GenerativeServiceStub(channel).ListModels(
                        common_pb2.ListModelsRequest(), timeout=TIMEOUT, metadata=md),
                ]
                for call in calls:
                    for metadata in ((), forged):
                        with pytest.raises(grpc.RpcError) as error:
                            call(metadata)
                        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, error.value
                        assert "--port" in error.value.details()
        # Through the front, with a certificate, every kind still works (the front adds the key).
        with grpc.secure_channel(gateway.address, credentials(pki, client_cert=True)) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(
                service="maas.gateway.v1.Gateway"), timeout=TIMEOUT)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
            list_models(channel, metadata=(("maas-front-key", "0" * 32),))
    finally:
        assert gateway.stop() == 0
        gateway.release()
