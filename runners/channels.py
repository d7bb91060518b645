"""The runner's gRPC channels, with the run's token for the servers that require one.

A backend that starts servers behind a token (runners/backends/slurm.py) registers it for the
address it returns; every channel the runner opens to that address then sends
`authorization: Bearer <token>` (model_servers/sdk/auth.py checks it). Health checks go without:
servers leave health open.
"""
from __future__ import annotations

import threading
from pathlib import Path

import grpc

_tokens: dict[str, str] = {}
_cas: dict[str, bytes] = {}  # address -> PEM CA bundle: the channel speaks TLS and trusts only it
_lock = threading.Lock()


def register_token(address: str, token: str) -> None:
    with _lock:
        _tokens[address] = token


def register_token_file(addresses, path: Path) -> None:
    """Send the token in `path` to each of `addresses` (servers a user runs with
    $CTBENCH_SERVER_TOKEN_FILE set, reached with `bench run --endpoints ... --token-file`)."""
    from ctbench.model_servers.sdk.auth import read_token

    token = read_token(Path(path))
    for address in addresses:
        register_token(address, token)


def register_ca_file(addresses, path: Path) -> None:
    """Speak TLS to each of `addresses`, trusting the PEM certificates in `path`
    (`bench run --endpoints ... --endpoint-ca`)."""
    from ctbench.errors import ServerStartError

    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ServerStartError(f"cannot read the endpoint CA {path}: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE" not in pem:
        raise ServerStartError(f"the endpoint CA {path} holds no PEM certificate")
    with _lock:
        for address in addresses:
            _cas[address] = pem


def forget_token(address: str) -> None:
    with _lock:
        _tokens.pop(address, None)


def open_channel(address: str, **kwargs) -> grpc.Channel:
    """A channel to `address`, sending the token registered for it, if any; TLS where a CA is
    registered for it, else plain."""
    with _lock:
        token = _tokens.get(address)
        ca = _cas.get(address)
    if ca is not None:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca), **kwargs)
    else:
        channel = grpc.insecure_channel(address, **kwargs)
    if token is None:
        return channel
    return grpc.intercept_channel(channel, _TokenMetadata(token))


class _TokenMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                     grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, token: str):
        self._metadata = ("authorization", f"Bearer {token}")

    def _with_token(self, details):
        metadata = [*(details.metadata or ()), self._metadata]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._with_token(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._with_token(details), request_iterator)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression
