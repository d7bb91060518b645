"""Servers the runner starts as local processes require the run's token (runners/backends/local.py
with require_token, model_servers/sdk/auth.py), over real gRPC to a real `bench serve` process."""
from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.local import LocalProcessBackend
from ctbench.runners.client import describe
from ctbench.runners.health import wait_until_serving
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow


def describe_code(address: str, metadata=None) -> grpc.StatusCode:
    with grpc.insecure_channel(address) as channel:
        try:
            pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=10, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("require_token", [True, False], ids=["runner", "library-default"])
def test_a_local_server_the_runner_starts_refuses_calls_without_the_runs_token(tmp_path, require_token):
    backend = LocalProcessBackend(require_token=require_token)
    (tmp_path / "data").mkdir()
    try:
        endpoint = backend.start(ServerSpec(name="chance", model="chance"), tmp_path / "data", tmp_path / "run" / "logs")
        wait_until_serving(endpoint.address, 60, "chance", lambda: backend.is_alive("chance"), lambda: backend.logs("chance"))
        token_file = tmp_path / "run" / "secrets" / "server-token"
        if not require_token:
            assert describe_code(endpoint.address) == grpc.StatusCode.OK and not token_file.exists()
            return
        assert token_file.stat().st_mode & 0o777 == 0o600 and (token_file.parent.stat().st_mode & 0o777) == 0o700
        assert describe_code(endpoint.address) == grpc.StatusCode.UNAUTHENTICATED
        assert describe_code(endpoint.address, [("authorization", "Bearer wrong")]) == grpc.StatusCode.UNAUTHENTICATED
        token = token_file.read_text()
        assert describe_code(endpoint.address, [("authorization", f"Bearer {token}")]) == grpc.StatusCode.OK
        assert describe(endpoint.address)["name"], "the runner's own channels send the token"
        with grpc.insecure_channel(endpoint.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING, "health stays open"
    finally:
        backend.stop_all()
