"""TLS on a server port (`bench serve --tls-cert --tls-key`, model_servers/sdk/auth.py) and the
runner's channels that trust the CA `bench run --endpoint-ca` names (runners/channels.py), over
real gRPC on loopback with certificates made here."""
from __future__ import annotations

import datetime
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ctbench_test_models import EchoModel
from runner_helpers import bench, wait_for

from ctbench.errors import ServerStartError
from ctbench.model_servers.sdk.server import ModelServer, ServerOptions
from ctbench.runners import channels
from ctbench.runners.client import describe
from ctbench.runners.health import wait_until_serving


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _sign(subject, key, issuer, issuer_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer)).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def pki(tmp_path):
    """A CA, a server certificate for 127.0.0.1 it signed, and an unrelated CA."""
    ca_key, other_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    (tmp_path / "ca.pem").write_bytes(_pem(_sign("run CA", ca_key, "run CA", ca_key, True)))
    (tmp_path / "other-ca.pem").write_bytes(_pem(_sign("other CA", other_key, "other CA", other_key, True)))
    (tmp_path / "server.pem").write_bytes(_pem(_sign("server", server_key, "run CA", ca_key, False)))
    (tmp_path / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp_path


@pytest.fixture
def tls_server(pki):
    server = ModelServer(EchoModel(), ServerOptions(port=0, tls_cert=pki / "server.pem", tls_key=pki / "server.key"))
    address = f"127.0.0.1:{server.start()}"
    assert server.loaded.wait(10)
    yield address
    with channels._lock:
        channels._cas.pop(address, None)
    server.stop(0)


def test_the_right_ca_reaches_a_tls_server_and_health_goes_over_tls_too(tls_server, pki):
    channels.register_ca_file([tls_server], pki / "ca.pem")
    wait_until_serving(tls_server, 10, "echo")
    assert describe(tls_server)["name"]


def test_a_wrong_ca_is_refused(tls_server, pki):
    channels.register_ca_file([tls_server], pki / "other-ca.pem")
    with pytest.raises(grpc.RpcError) as refused:
        describe(tls_server)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_plain_channel_gets_nothing_from_a_tls_port(tls_server):
    with pytest.raises(grpc.RpcError) as refused:
        describe(tls_server)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_bad_certificate_files_fail_with_what_and_where(pki, tmp_path):
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ServerStartError, match=r"the TLS certificate .*junk.pem is not PEM"):
        ModelServer(EchoModel(), ServerOptions(port=0, tls_cert=tmp_path / "junk.pem", tls_key=pki / "server.key")).start()
    with pytest.raises(ServerStartError, match=r"the endpoint CA .*junk.pem holds no PEM certificate"):
        channels.register_ca_file(["127.0.0.1:1"], tmp_path / "junk.pem")


@pytest.mark.slow
def test_bench_run_reaches_a_tls_and_token_guarded_server_only_with_the_right_ca_and_token(pki, tmp_path, support_env):
    (tmp_path / "token").write_text("t0ken")
    port_file = tmp_path / "port"
    server = bench("serve", "ctbench_test_models:EchoModel", "--port", "0", "--port-file", str(port_file),
                   "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                   env={**support_env, "CTBENCH_SERVER_TOKEN_FILE": str(tmp_path / "token")})
    try:
        wait_for(port_file.is_file, 60, "the server to listen")
        endpoint = f"echo=127.0.0.1:{port_file.read_text()}"
        common = ["--phantom-volumes", "1", "--no-score", "--health-timeout", "10"]
        for name, extra in (("wrong-ca", ["--endpoint-ca", str(pki / "other-ca.pem"), "--token-file", str(tmp_path / "token")]),
                            ("no-token", ["--endpoint-ca", str(pki / "ca.pem")])):
            refused = bench("run", "--endpoints", endpoint, *extra, "--out", str(tmp_path / name), *common)
            output, _ = refused.communicate(timeout=120)
            assert refused.returncode != 0 and "10 answered" not in output, (name, output)
        allowed = bench("run", "--endpoints", endpoint, "--endpoint-ca", str(pki / "ca.pem"), "--token-file", str(tmp_path / "token"),
                        "--out", str(tmp_path / "ok"), *common)
        output, _ = allowed.communicate(timeout=120)
        assert allowed.returncode == 0 and "echo: 10 answered, 0 errors" in output, output
    finally:
        server.terminate()
        server.communicate(timeout=30)
