"""`ctbench-sdk` (sdk/) is the light distribution a model image installs: built as a wheel from the
checkout's own files, installed ALONE in a fresh virtual environment, it serves the guide's
template model over real gRPC (checked by `bench conformance` from the full install), and neither
it nor importing the SDK brings in any of the runner's or the scorer's packages."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ctbench import __version__
from ctbench.project import SDK_FOLDER, SDK_MODULES, SDK_PACKAGES

# The runner's and the scorer's packages (and torch, which only some model images bring).
FORBIDDEN = ("pandas", "docker", "scipy", "rich", "click", "yaml", "matplotlib", "torch")
# Every module the SDK's packages hold, imported at once; then what else got imported.
IMPORT_ALL = """
import importlib, json, pkgutil, sys
import ctbench.errors, ctbench.exit_with_parent, ctbench.registry, ctbench.v1.answer_volume_question_pb2_grpc
for package in ("ctbench.model_servers.sdk", "ctbench.preprocess"):
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"{package}.{info.name}")
sys.path.insert(0, sys.argv[1])
import template_server
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _project_table(pyproject: Path) -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(pyproject, "rb") as f:
        return tomllib.load(f)["project"]


def _forbidden_imported(python: str, repo: Path, env: dict | None = None) -> list[str]:
    result = subprocess.run([python, "-c", IMPORT_ALL, str(repo / "dockerfiles" / "template")],
                            capture_output=True, text=True, timeout=120, env=env, cwd=repo / SDK_FOLDER)
    assert result.returncode == 0, result.stderr[-3000:]
    return sorted(set(json.loads(result.stdout.splitlines()[-1])) & set(FORBIDDEN))


def test_sdk_metadata_follows_ctbench(repo_root: Path):
    sdk = _project_table(repo_root / SDK_FOLDER / "pyproject.toml")
    full = _project_table(repo_root / "pyproject.toml")
    assert sdk["version"] == __version__ == full["version"]
    # Every SDK requirement is one of ctbench's own (so the two never disagree on a pin).
    assert set(sdk["dependencies"]) <= set(full["dependencies"])
    for package, folder in SDK_PACKAGES.items():
        assert (repo_root / folder / "__init__.py").is_file(), f"{package}: {folder} is not a package"
        for module in SDK_MODULES.get(package, ()):
            assert (repo_root / folder / f"{module}.py").is_file(), f"{package}.{module} is missing"


def test_importing_the_sdk_imports_none_of_the_runner_or_scorer(repo_root: Path):
    # In this environment pandas, click, rich, ... are all installed: none may be imported.
    assert _forbidden_imported(sys.executable, repo_root) == []


@pytest.fixture(scope="module")
def venv(repo_root: Path, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("sdk")
    listed = subprocess.run(["git", "-C", str(repo_root), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("needs a git checkout to list the project's files")
    src = work / "src"
    for relative in listed.stdout.decode().split("\0"):
        if relative and (repo_root / relative).is_file():
            (src / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo_root / relative, src / relative)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
                            str(src / SDK_FOLDER)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (work / "dist").glob("ctbench_sdk-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    installed = subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    env = {"HOME": os.environ.get("HOME", str(work)), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    return {"wheel": wheel, "python": python, "env": env, "src": src, "venv": venv}

@pytest.mark.slow
def test_wheel_holds_only_the_sdk(venv):
    names = [n for n in zipfile.ZipFile(venv["wheel"]).namelist() if n.endswith(".py")]
    assert "ctbench/model_servers/sdk/server.py" in names and "ctbench/v1/answer_volume_question_pb2.py" in names
    assert "ctbench/preprocess/orientation.py" in names and "ctbench/errors.py" in names
    for name in names:
        assert not name.startswith(("ctbench/cli/", "ctbench/llm/", "ctbench/runners/", "ctbench/evaluation/",
                                    "ctbench/datasets/", "ctbench/model_servers/baselines/")), name
    assert "ctbench/registry.py" in names  # the preset registry of ctbench.preprocess.input_spec

@pytest.mark.slow
def test_installs_none_of_the_runner_or_scorer_packages(venv):
    listed = subprocess.run([venv["python"], "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, timeout=120, env=venv["env"])
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "ctbench-sdk" in names and "ctbench" not in names
    assert names.isdisjoint({"pandas", "docker", "scipy", "rich", "click", "pyyaml", "matplotlib", "torch"})
    assert _forbidden_imported(venv["python"], venv["src"], venv["env"]) == []

@pytest.mark.slow
def test_serves_the_template_model_that_passes_conformance(venv, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path / "data"
    data.mkdir()
    server = subprocess.Popen([venv["python"], str(venv["src"] / "dockerfiles" / "template" / "template_server.py"),
                               "template", "--host", "127.0.0.1", "--port", str(port), "--data-root", str(data)],
                              cwd=tmp_path, env=venv["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # The checker is the full ctbench of this environment, talking to the SDK-only server.
        bench = str(Path(sys.executable).with_name("bench"))
        result = subprocess.run([bench, "conformance", f"127.0.0.1:{port}", "--data-root", str(data),
                                 "--json", str(tmp_path / "conformance.json")],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert server.poll() is None, server.stderr.read()[-2000:]
        report = json.loads((tmp_path / "conformance.json").read_text())
        assert report["passed"] and report["counts"]["fail"] == 0 and report["counts"]["pass"] > 0, report["counts"]
        assert report["model"]["name"] == "template" and report["model"]["sdk_version"] == __version__
    finally:
        server.terminate()
        server.wait(timeout=30)
