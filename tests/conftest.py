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


# --- the test command installs everything: there, "not installed" is a failure, not a skip -----
# scripts/test.sh sets CTBENCH_REQUIRE_TEST_TOOLS=1 after installing every optional part; a test
# that then skips because a tool or an extra is missing points at a missing install step.
MISSING_INSTALL = ("not installed", "pip install", "install-wordnet")
_missing: list[str] = []


def _note_missing(report) -> None:
    if os.environ.get("CTBENCH_REQUIRE_TEST_TOOLS") != "1" or not report.skipped:
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(marker in reason for marker in MISSING_INSTALL):
        _missing.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report):
    _note_missing(report)


def pytest_collectreport(report):
    _note_missing(report)


def pytest_sessionfinish(session, exitstatus):
    if _missing:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _missing:
        terminalreporter.section("missing install steps (CTBENCH_REQUIRE_TEST_TOOLS=1)", red=True)
        for line in _missing:
            terminalreporter.line(line)
