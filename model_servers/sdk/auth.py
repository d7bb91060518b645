"""A per-run token on the server port: every call but health must carry it.

On a cluster a server's port is reachable by every user of the network, so servers the runner
starts under --backend slurm require the run's secret in the `authorization` metadata
(`Bearer <token>`). The token comes from the owner-only file $CTBENCH_SERVER_TOKEN_FILE names;
without that variable the server is open, as before. grpc.health.v1 stays open on purpose:
schedulers' probes do not carry the token, and it tells only SERVING or NOT_SERVING.
A call without the token, or with another, ends UNAUTHENTICATED before any handler runs.
The token travels in clear unless the port speaks TLS (`bench serve --tls-cert --tls-key`,
`server_credentials`; the runner trusts the CA given with `bench run --endpoint-ca`).
"""
from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

import grpc

from ctbench.errors import ServerStartError

log = logging.getLogger("ctbench.server")

TOKEN_FILE_ENV = "CTBENCH_SERVER_TOKEN_FILE"
METADATA_KEY = "authorization"
OPEN_SERVICES = ("/grpc.health.v1.Health/",)


def write_token_file(folder: Path, token: str) -> Path:
    """`token` in FOLDER/server-token, the folder and the file readable by their owner only
    (the runner and the servers it starts run as the same user)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / "server-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    os.chmod(path, 0o600)
    return path


def server_credentials(cert: Path, key: Path) -> grpc.ServerCredentials:
    """TLS credentials for the server port from PEM files (`bench serve --tls-cert --tls-key`)."""
    pems = []
    for what, path in (("certificate", cert), ("key", key)):
        try:
            pems.append(Path(path).read_bytes())
        except OSError as exc:
            raise ServerStartError(f"cannot read the TLS {what} {path}: {exc.strerror}") from None
        if b"-----BEGIN" not in pems[-1]:
            raise ServerStartError(f"the TLS {what} {path} is not PEM")
    return grpc.ssl_server_credentials([(pems[1], pems[0])])


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ServerStartError(f"cannot read the server token from {path} (${TOKEN_FILE_ENV}): {exc.strerror}") from None
    if not token:
        raise ServerStartError(f"the server token file {path} (${TOKEN_FILE_ENV}) is empty")
    return token


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls whose `authorization` metadata is not `Bearer <token>`."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        sent = dict(handler_call_details.invocation_metadata or ()).get(METADATA_KEY, "")
        if hmac.compare_digest(str(sent).encode(), self._expected):
            return handler
        return _refusal(handler, "missing or wrong token" if sent else "no token")


def _refusal(handler: grpc.RpcMethodHandler, why: str) -> grpc.RpcMethodHandler:
    def refuse(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, f"this server requires the run's token ({why})")

    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return make(refuse, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)


def interceptors_from_env() -> list[grpc.ServerInterceptor]:
    """The token check when $CTBENCH_SERVER_TOKEN_FILE is set, else nothing."""
    path = os.environ.get(TOKEN_FILE_ENV)
    if not path:
        return []
    log.info("calls other than health require the token in %s", path)
    return [TokenInterceptor(read_token(Path(path)))]
