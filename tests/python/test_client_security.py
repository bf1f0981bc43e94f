"""maas_client's security options against the real binaries: TLS (root_certificates), mutual TLS
(client_certificate + client_key) and bearer tokens (token / token_file) for --auth_token_file servers.
Certificates are made in the test by openssl."""

import re
import subprocess

import grpc
import numpy as np
import pytest

import maas_client
from maas_client.pb import generative as gpb

from maas_testing import start_discriminative, start_generative

TOKEN = "client-s3cret"
SPEC = gpb.GenerativeModelSpec(uniform=gpb.UniformSpec(low=[0.0], high=[2.0]))


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=maas client test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=maas {name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.pem", *ext, cwd=d)
    return d


@pytest.fixture(scope="module")
def servers(pki, tmp_path_factory):
    root = tmp_path_factory.mktemp("client-security")
    token_file = root / "token"
    token_file.write_text(TOKEN + "\n")
    tls = ["--tls_cert_file", pki / "server.pem", "--tls_key_file", pki / "server.key"]
    generative = start_generative(root / "generative", extra=[*tls, "--auth_token_file", token_file])
    discriminative = start_discriminative(root / "discriminative",
                                          extra=[*tls, "--tls_client_ca_file", pki / "ca.pem"])
    yield {"generative": generative, "discriminative": discriminative, "token_file": token_file}
    for process in (generative, discriminative):
        assert process.stop() == 0
        process.release()


def test_tls_with_token(servers, pki):
    address = servers["generative"].address
    ca = pki / "ca.pem"
    with maas_client.GenerativeClient(address, root_certificates=ca, token=TOKEN, timeout=10) as gen:
        assert gen.create(SPEC, "guarded").version == 1
        assert gen.sample_array("guarded", 4, seed=1).shape == (4, 1)
    with maas_client.GenerativeClient(address, root_certificates=ca.read_bytes(),
                                      token_file=servers["token_file"], timeout=10) as gen:
        assert gen.create(SPEC, "guarded").version == 2
    with maas_client.GenerativeClient(address, root_certificates=ca, timeout=10) as gen:
        assert gen.get("guarded").info.version == 2  # reads need no token
        with pytest.raises(maas_client.UnauthenticatedError) as e:
            gen.create(SPEC, "guarded")
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED and "authorization" in e.value.message.lower()
        with pytest.raises(maas_client.UnauthenticatedError):
            gen.fit(np.zeros((3, 1)), "uniform", name="guarded")
    with maas_client.GenerativeClient(address, root_certificates=ca, token=TOKEN + "x", timeout=10) as gen:
        with pytest.raises(maas_client.PermissionDeniedError) as e:
            gen.delete("guarded")
        assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
    # Surrounding whitespace of token= is ignored, as of token_file's contents and the servers' token file.
    with maas_client.Models(address, root_certificates=ca, token=f"  {TOKEN}  ", timeout=10) as models:
        assert [m.version for m in models.list("guarded", all_versions=True)] == [1, 2]
        assert models.delete("guarded") == [1, 2]


def test_tls_server_refuses_plaintext_and_unknown_ca(servers):
    address = servers["generative"].address
    with maas_client.GenerativeClient(address, timeout=5) as gen:
        with pytest.raises(maas_client.UnavailableError):
            gen.list()
    with maas_client.GenerativeClient(address, tls=True, timeout=5) as gen:  # system roots do not know our CA
        with pytest.raises(maas_client.UnavailableError):
            gen.list()


def test_mutual_tls(servers, pki):
    address = servers["discriminative"].address
    with maas_client.DiscriminativeClient(address, root_certificates=pki / "ca.pem",
                                          client_certificate=pki / "client.pem", client_key=pki / "client.key",
                                          timeout=10) as disc:
        result = disc.train(["good goal", "bread oven"], ["sports", "food"], name="mtls")
        assert result.classes == ["food", "sports"]
        assert disc.predict("mtls", ["goal"]).tolist() == ["sports"]
    with maas_client.DiscriminativeClient(address, root_certificates=pki / "ca.pem", timeout=5) as disc:
        with pytest.raises(maas_client.UnavailableError):  # no client certificate: the handshake fails
            disc.list()


def test_bad_security_options_are_clear_errors(pki, tmp_path):
    with pytest.raises(ValueError, match="client_certificate and client_key go together"):
        maas_client.Connection("127.0.0.1:1", client_certificate=pki / "client.pem")
    with pytest.raises(ValueError, match="root_certificates: cannot read"):
        maas_client.Connection("127.0.0.1:1", root_certificates=tmp_path / "missing.pem")
    # A CA file without a PEM certificate: every call used to fail UNAVAILABLE with a handshake error naming nothing.
    for junk in (b"not a certificate\n", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                 (pki / "ca.key").read_bytes(), b"\xff\xfe"):
        (tmp_path / "junk.pem").write_bytes(junk)
        with pytest.raises(ValueError, match=f"root_certificates: {tmp_path / 'junk.pem'} holds no PEM certificate"):
            maas_client.Connection("127.0.0.1:1", root_certificates=tmp_path / "junk.pem")
        with pytest.raises(ValueError, match="root_certificates: the bytes given holds no PEM certificate"):
            maas_client.Connection("127.0.0.1:1", root_certificates=junk)
    maas_client.Connection("127.0.0.1:1", root_certificates=pki / "ca.pem").close()
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        maas_client.Connection("127.0.0.1:1", token_file=tmp_path / "empty")
    for blank in ("", " \n\t"):
        with pytest.raises(ValueError, match="token is empty"):
            maas_client.Connection("127.0.0.1:1", token=blank)


def test_a_token_that_is_no_header_value_is_refused_without_quoting_it(tmp_path):
    """It used to be taken, and every call then failed with InternalError "Invalid metadata"; the Go and TypeScript
    clients refuse the same tokens with the same message."""
    for token in ("s3cr\u00e9t-9xq", "line-one\nline-two", "tabbed\tzz9q", "deleted\x7fzz9q", "emoji-\U0001F600"):
        (tmp_path / "token").write_text(token + "\n", encoding="utf-8")
        for options in ({"token": token}, {"token_file": tmp_path / "token"}):
            with pytest.raises(ValueError, match="cannot be sent in the authorization header: its character") as e:
                maas_client.Connection("127.0.0.1:1", **options)
            pieces = [p for p in re.split(r"[^ -~]", token) if len(p) >= 4]
            assert pieces and not any(p in str(e.value) for p in pieces), str(e.value)
    maas_client.Connection("127.0.0.1:1", token="  printable ASCII, spaces too ~  ").close()


def test_pem_content_given_as_str_is_used_as_pem(servers, pki):
    """A PEM read in text mode (or from an environment variable) is a str: it used to be taken as a file's path, and
    the ValueError quoted the whole str, the private key included. A str that begins with -----BEGIN is now PEM
    content, as bytes are."""
    address = servers["discriminative"].address
    ca, cert, key = ((pki / name).read_text() for name in ("ca.pem", "client.pem", "client.key"))
    with maas_client.DiscriminativeClient(address, root_certificates=ca, client_certificate=cert, client_key=key,
                                          timeout=10) as disc:
        assert disc.train(["good goal", "bread oven"], ["sports", "food"], name="mtls-text").classes == \
            ["food", "sports"]
    # Leading whitespace (or a BOM) before the -----BEGIN line is still PEM content.
    with maas_client.DiscriminativeClient(address, root_certificates="\ufeff\n" + ca, client_certificate=cert,
                                          client_key="  " + key, timeout=10) as disc:
        assert disc.predict("mtls-text", ["goal"]).tolist() == ["sports"]


def test_pem_options_never_quote_pem_content_in_errors(pki, tmp_path):
    key = (pki / "client.key").read_text()
    body = [line for line in key.splitlines() if line and not line.startswith("-----")]
    cert = (pki / "client.pem").read_text()
    # Not PEM content (no -----BEGIN line) and no file's path: an error that names the option, never the str.
    for option in ("client_key", "client_certificate", "root_certificates"):
        options = {"client_certificate": cert, "client_key": key, option: "\n".join(body)}
        with pytest.raises(ValueError, match=f"^{option}: cannot read \\(a str of \\d+ characters") as e:
            maas_client.Connection("127.0.0.1:1", **options)
        assert not any(line in str(e.value) for line in body), str(e.value)
        assert e.value.__cause__ is None and e.value.__context__ is None
    # A str that is PEM content but no certificate: the CA check names "the PEM text given", not its content.
    with pytest.raises(ValueError, match="^root_certificates: the PEM text given holds no PEM certificate") as e:
        maas_client.Connection("127.0.0.1:1", root_certificates=key)
    assert not any(line in str(e.value) for line in body), str(e.value)
    # A path that cannot be read is still named.
    with pytest.raises(ValueError, match=f"^client_key: cannot read {tmp_path / 'missing.key'}: No such file"):
        maas_client.Connection("127.0.0.1:1", client_certificate=cert, client_key=tmp_path / "missing.key")
    with pytest.raises(ValueError, match=f"^root_certificates: cannot read {tmp_path / 'nope.pem'}: No such file"):
        maas_client.Connection("127.0.0.1:1", root_certificates=str(tmp_path / "nope.pem"))
    # Neither PEM nor a path: InvalidArgumentError naming the option (was a bare TypeError from pathlib).
    with pytest.raises(maas_client.InvalidArgumentError, match="root_certificates must be PEM content .* got int"):
        maas_client.Connection("127.0.0.1:1", root_certificates=5)
