from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUPPORT = REPO / "tests" / "support"
sys.path.insert(0, str(SUPPORT))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def support_env(monkeypatch) -> dict:
    """Environment for server subprocesses that must import tests/support models."""
    path = os.pathsep.join(p for p in (str(SUPPORT), os.environ.get("PYTHONPATH", "")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    return {"PYTHONPATH": path}


@pytest.fixture(scope="session")
def phantom_small(tmp_path_factory) -> Path:
    """A 4-volume phantom benchmark (40 questions), generated once per session."""
    from ctbench.datasets.phantom.generate import PhantomConfig, generate

    return generate(tmp_path_factory.mktemp("phantom"), PhantomConfig(n_volumes=4))
