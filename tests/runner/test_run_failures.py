"""run_benchmark against in-process servers: failures outside the stream are reported."""
from __future__ import annotations

from ctbench.model_servers.sdk import Model, ModelServer, ServerOptions
from ctbench.runners.run import RunConfig, run_benchmark


class BrokenCardModel(Model):
    """Turns healthy, but its Describe fails (a bug in the model's card)."""

    name = "broken-card"

    def input_spec(self):
        raise RuntimeError("bug in input_spec")

    def answer(self, batch):  # pragma: no cover - never reached
        return ["x" for _ in batch]


def test_a_server_whose_describe_fails_is_reported_as_failed_not_silently_skipped(tmp_path):
    server = ModelServer(BrokenCardModel(), ServerOptions(port=0))
    port = server.start()
    assert server.loaded.wait(10)
    try:
        result = run_benchmark(RunConfig(out_dir=tmp_path / "run", endpoints={"broken": f"127.0.0.1:{port}"},
                                         phantom_volumes=1, health_timeout_s=30))
    finally:
        server.stop(0)
    broken = result.servers["broken"]
    assert broken.failure, "the run would exit 0 with every question missing"
    assert "Describe" in broken.failure or "RpcError" in broken.failure or "describe" in broken.failure
