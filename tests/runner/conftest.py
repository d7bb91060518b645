from __future__ import annotations

from pathlib import Path

import pytest

from runner_helpers import write_registry


@pytest.fixture
def slow_registry(tmp_path, support_env) -> Path:
    """One echo server that takes 150 ms per batch of <= 4: slow enough to kill mid-run."""
    return write_registry(tmp_path / "registry.yaml", {
        "slow": {"model": "ctbench_test_models:EchoModel", "args": ["--option", "delay_ms=150"]},
    })
