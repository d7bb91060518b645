from __future__ import annotations

from pathlib import Path

import pytest
from runner_helpers import write_registry

from ctbench.model_servers.baselines.chance import Chance
from ctbench.model_servers.sdk import ModelServer, ServerOptions


@pytest.fixture
def slow_registry(tmp_path, support_env) -> Path:
    """One echo server that takes 150 ms per batch of <= 4: slow enough to kill mid-run."""
    return write_registry(tmp_path / "registry.yaml", {
        "slow": {"model": "ctbench_test_models:EchoModel", "args": ["--option", "delay_ms=150"]},
    })


@pytest.fixture
def chance_endpoint():
    """A real `chance` server in this process, on a free loopback port: its address."""
    server = ModelServer(Chance(), ServerOptions(port=0))
    port = server.start()
    assert server.loaded.wait(10)
    yield f"127.0.0.1:{port}"
    server.stop(0)
