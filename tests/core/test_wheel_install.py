"""`pip install ctbench` is a complete install: the built wheels (ctbench and the ctbench-sdk it
depends on, which no index has), installed non-editable into a fresh virtual environment, run
the main job from an empty folder, serve a model that passes conformance, and write a project
folder with `bench init`.

Builds both wheels from the checkout's own files (tracked and new, as git lists them), so a
project file the wheels forget fails here, not on a user's machine."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
PACKAGED = ("compose/compose.yaml", "proto/ctbench/v1/answer_volume_question.proto",
            "dockerfiles/base.Dockerfile", "dockerfiles/template/template_server.py",
            "docs/shipping-a-model-container.md", "sdk/pyproject.toml", "sdk/setup.py", "LICENSE")


def _source_files(repo: Path) -> list[str]:
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("needs a git checkout to list the project's files")
    return [f for f in listed.stdout.decode().split("\0") if f and (repo / f).is_file()]


@pytest.fixture(scope="module")
def installed(repo_root: Path, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    for relative in _source_files(repo_root):
        (src / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root / relative, src / relative)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
                    str(src / "sdk"), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = (work / "dist").glob("ctbench-*.whl")
    (sdk_wheel,) = (work / "dist").glob("ctbench_sdk-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Both wheels in one install: pip takes ctbench's requirement ctbench-sdk==VERSION from the
    # second file (no index has it).
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel), str(sdk_wheel)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    empty = work / "empty"
    empty.mkdir()
    # Nothing of the checkout or of the test environment leaks in: a minimal PATH, no PYTHONPATH,
    # no registry override, a project cache of its own.
    env = {"HOME": os.environ.get("HOME", str(work)), "PATH": "/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", "CTBENCH_HOME": str(work / "cache")}
    return {"wheel": wheel, "bench": str(venv / "bin" / "bench"), "cwd": empty, "env": env}


def test_wheel_carries_the_project_files_and_license(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for relative in PACKAGED:
        assert f"ctbench/_project/{relative}" in names, f"the wheel lacks {relative}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_installed_wheel_runs_the_main_job_from_an_empty_folder(installed):
    result = subprocess.run([installed["bench"], "run", "--servers", "all", "--backend", "local", "--out", "runs/phantom"],
                            cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "server registry not found" not in output
    # Quiet: one line says why there are no containers, one line which servers are skipped and why.
    lines = result.stderr.splitlines()  # status lines go to stderr, the table to stdout
    assert [line for line in lines if line.startswith("skipping ")] == [
        "skipping med3dvlm, m3d-lamed, radfm, ct-chat, medgemma, merlin, vila-m3, lingshu: "
        "needs a GPU container (--backend docker on a GPU host)"]
    assert lines[0].startswith("backend: local processes") and "Error" not in lines[0]
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"│ (chance|blind|geometric)\s+│\s+([\d.]+)", output)}
    assert set(rows) == {"chance", "blind", "geometric"}, output[-4000:]
    assert rows["geometric"] == 100.0
    assert (installed["cwd"] / "runs" / "phantom" / "summary.csv").is_file()


def test_installed_wheel_serves_a_model_that_passes_conformance(installed, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path / "data"
    data.mkdir()
    server = subprocess.Popen([installed["bench"], "serve", "chance", "--host", "127.0.0.1", "--port", str(port), "--data-root", str(data)],
                              cwd=installed["cwd"], env=installed["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        result = subprocess.run([installed["bench"], "conformance", f"127.0.0.1:{port}", "--data-root", str(data)],
                                cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_bench_init_writes_a_project_folder_that_builds(installed, tmp_path):
    dest = tmp_path / "project"
    result = subprocess.run([installed["bench"], "init", str(dest)], env=installed["env"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for relative in PACKAGED:
        assert (dest / relative).is_file(), f"bench init did not write {relative}"
    # The build context the registry's `build:` sections name holds what base.Dockerfile copies.
    for copied in ("pyproject.toml", "setup.py", "README.md", "ctbench/cli/__init__.py", "runners/run.py",
                   "model_servers/sdk", "preprocess", "evaluation", "datasets"):
        assert (dest / copied).exists(), f"the build context lacks {copied}"
    assert not (dest / "ctbench" / "runners").exists(), "sources must be in the repository's layout"
    again = subprocess.run([installed["bench"], "init", str(dest)], env=installed["env"], capture_output=True, text=True)
    assert again.returncode != 0 and "--force" in again.stderr
    # ... and it is a project pip can install from (what the images do with `pip install /src`).
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(dest)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    # ... and so is its light SDK distribution (what a model image installs).
    sdk = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(dest / "sdk")],
                         capture_output=True, text=True)
    assert sdk.returncode == 0, sdk.stderr[-2000:]
    assert len(list((tmp_path / "dist").glob("ctbench_sdk-*.whl"))) == 1
