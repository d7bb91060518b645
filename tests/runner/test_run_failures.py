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


def test_a_server_whose_card_is_broken_is_reported_as_failed_not_silently_skipped(tmp_path):
    # The server checks its card when the model loads: a card that cannot be built leaves it
    # NOT_SERVING with the reason, and the run reports that server as failed, saying why.
    server = ModelServer(BrokenCardModel(), ServerOptions(port=0))
    port = server.start()
    try:
        result = run_benchmark(RunConfig(out_dir=tmp_path / "run", endpoints={"broken": f"127.0.0.1:{port}"},
                                         phantom_volumes=1, health_timeout_s=10))
    finally:
        server.stop(0)
    assert not server.loaded.is_set()
    assert "bug in input_spec" in server.core.load_error
    broken = result.servers["broken"]
    assert broken.failure, "the run would exit 0 with every question missing"
    assert "bug in input_spec" in broken.failure or "NOT_SERVING" in broken.failure or "not ready" in broken.failure.lower()
