"""The per-run token on a server port (model_servers/sdk/auth.py) and the runner's channels that
send it (runners/channels.py), over real gRPC on loopback."""
from __future__ import annotations

import grpc
import pytest
from ctbench_test_models import EchoModel
from grpc_health.v1 import health_pb2, health_pb2_grpc
from runner_helpers import bench, wait_for

from ctbench.errors import ServerStartError
from ctbench.model_servers.sdk.server import ModelServer, ServerOptions
from ctbench.runners import channels
from ctbench.runners.client import describe
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc


@pytest.fixture
def guarded_server(tmp_path, monkeypatch):
    token_file = tmp_path / "server-token"
    token_file.write_text("s3cret\n")
    monkeypatch.setenv("CTBENCH_SERVER_TOKEN_FILE", str(token_file))
    server = ModelServer(EchoModel(), ServerOptions(port=0))
    address = f"127.0.0.1:{server.start()}"
    assert server.loaded.wait(10)
    yield address
    channels.forget_token(address)
    server.stop(0)


def describe_with(address: str, metadata) -> grpc.StatusCode:
    with grpc.insecure_channel(address) as channel:
        try:
            pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=5, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("metadata", [None, [("authorization", "Bearer wrong")], [("authorization", "s3cret")]],
                         ids=["missing", "wrong", "not-bearer"])
def test_a_call_without_the_runs_token_is_unauthenticated(guarded_server, metadata):
    assert describe_with(guarded_server, metadata) == grpc.StatusCode.UNAUTHENTICATED


def test_the_answer_stream_without_the_token_is_unauthenticated(guarded_server):
    with grpc.insecure_channel(guarded_server) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            list(pb_grpc.AnswerVolumeQuestionStub(channel).Answer(iter([]), timeout=5))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_stays_open_without_the_token(guarded_server):
    with grpc.insecure_channel(guarded_server) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_the_runners_channels_send_the_token_registered_for_the_address(guarded_server):
    with pytest.raises(grpc.RpcError):
        describe(guarded_server)
    channels.register_token(guarded_server, "s3cret")
    assert describe(guarded_server)["name"]


def test_an_unreadable_token_file_stops_the_server_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("CTBENCH_SERVER_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ServerStartError, match="cannot read the server token from .*missing"):
        ModelServer(EchoModel(), ServerOptions(port=0))


def test_without_the_variable_the_server_is_open(tmp_path, monkeypatch):
    monkeypatch.delenv("CTBENCH_SERVER_TOKEN_FILE", raising=False)
    server = ModelServer(EchoModel(), ServerOptions(port=0))
    address = f"127.0.0.1:{server.start()}"
    try:
        assert describe_with(address, None) == grpc.StatusCode.OK
    finally:
        server.stop(0)


@pytest.mark.slow
def test_bench_run_reaches_a_guarded_server_given_with_endpoints_only_with_its_token_file(tmp_path, support_env):
    token_file = tmp_path / "token"
    token_file.write_text("t0ken")
    port_file = tmp_path / "port"
    server = bench("serve", "ctbench_test_models:EchoModel", "--port", "0", "--port-file", str(port_file),
                   env={**support_env, "CTBENCH_SERVER_TOKEN_FILE": str(token_file)})
    try:
        wait_for(port_file.is_file, 60, "the server to listen")
        endpoint = f"echo=127.0.0.1:{port_file.read_text()}"
        refused = bench("run", "--endpoints", endpoint, "--out", str(tmp_path / "no-token"), "--phantom-volumes", "1", "--no-score")
        output, _ = refused.communicate(timeout=120)
        assert refused.returncode == 2 and "Describe failed: UNAUTHENTICATED" in output, output
        allowed = bench("run", "--endpoints", endpoint, "--token-file", str(token_file), "--out", str(tmp_path / "with-token"),
                        "--phantom-volumes", "1", "--no-score")
        output, _ = allowed.communicate(timeout=120)
        assert allowed.returncode == 0 and "echo: 10 answered, 0 errors" in output, output
    finally:
        server.terminate()
        server.communicate(timeout=30)
