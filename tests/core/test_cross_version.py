"""Versions that meet: a server built from the previous version of ctbench answers the current
runner, and the current server answers the previous runner, with the same predictions as a run
where both sides are current (the phantom, through real processes on loopback).

The previous version is built from git history (PREVIOUS below) into a throwaway virtual
environment, as a model team's image built months ago would be."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# The last commit of ctbench 0.1.0 before the protocol was frozen as proto/released/ctbench-0.1.0.
PREVIOUS = "a93eb72"
SERVER = "geometric"  # deterministic: the same volume and question always get the same answer
ARGS = ["--dataset", "synthetic", "--phantom-volumes", "3", "--no-score"]


@pytest.fixture(scope="module")
def previous(repo_root: Path, tmp_path_factory) -> Path:
    """bin/ of a venv holding ctbench as it was at PREVIOUS."""
    work = tmp_path_factory.mktemp("previous")
    known = subprocess.run(["git", "-C", str(repo_root), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"], capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"needs the git history holding {PREVIOUS} (a full clone, not a shallow one)")
    src = work / "src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(repo_root), "archive", PREVIOUS], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    result = subprocess.run([str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(src)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "venv" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _answers(run: Path) -> dict[str, str]:
    lines = (run / "predictions" / f"{SERVER}.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert records and all(r["status"] == "ok" for r in records), records[:3]
    return {r["question_id"]: r["prediction"] for r in records}


def _run_against(server_bin: Path, runner_bin: Path, out: Path, cwd: Path) -> dict[str, str]:
    port = _free_port()
    data = cwd / "served-data"
    data.mkdir(exist_ok=True)
    server = subprocess.Popen([str(server_bin / "bench"), "serve", SERVER, "--host", "127.0.0.1", "--port", str(port),
                               "--data-root", str(data)], cwd=cwd, env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        result = subprocess.run([str(runner_bin / "bench"), "run", "--endpoints", f"{SERVER}=127.0.0.1:{port}",
                                 *ARGS, "--out", str(out)], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return _answers(out)


@pytest.fixture(scope="module")
def current() -> Path:
    return Path(sys.executable).parent


@pytest.fixture(scope="module")
def both_current(current: Path, tmp_path_factory) -> dict[str, str]:
    cwd = tmp_path_factory.mktemp("current")
    return _run_against(current, current, cwd / "run", cwd)


def test_previous_server_answers_the_current_runner(previous, current, both_current, tmp_path):
    assert _run_against(previous, current, tmp_path / "run", tmp_path) == both_current


def test_current_server_answers_the_previous_runner(previous, current, both_current, tmp_path):
    assert _run_against(current, previous, tmp_path / "run", tmp_path) == both_current
