"""`ctbench-sdk` (sdk/) is the light distribution a model image installs: built as a wheel from the
checkout's own files, installed ALONE in a fresh virtual environment, it serves the guide's
template model over real gRPC (checked by `bench conformance` from the full install, and by its
own `bench conformance`), and neither it nor importing the SDK brings in any of the runner's or
the scorer's packages. ctbench depends on it and installs none of its files a second time."""
from __future__ import annotations

import json
import os
import re
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
import ctbench.compatibility, ctbench.server_cli, ctbench.model_servers.registry
for package in ("ctbench.model_servers.sdk", "ctbench.preprocess", "ctbench.conformance"):
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"{package}.{info.name}")
sys.path.insert(0, sys.argv[1])
import template_server
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _pyproject(pyproject: Path) -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(pyproject, "rb") as f:
        return tomllib.load(f)


def _project_table(pyproject: Path) -> dict:
    return _pyproject(pyproject)["project"]


def _forbidden_imported(python: str, repo: Path, env: dict | None = None) -> list[str]:
    result = subprocess.run([python, "-c", IMPORT_ALL, str(repo / "dockerfiles" / "template")],
                            capture_output=True, text=True, timeout=120, env=env, cwd=repo / SDK_FOLDER)
    assert result.returncode == 0, result.stderr[-3000:]
    return sorted(set(json.loads(result.stdout.splitlines()[-1])) & set(FORBIDDEN))


def test_sdk_metadata_follows_ctbench(repo_root: Path):
    sdk = _project_table(repo_root / SDK_FOLDER / "pyproject.toml")
    full = _project_table(repo_root / "pyproject.toml")
    # The version is written once (ctbench/__init__.py) and read by both distributions' metadata
    # (the built wheels' versions are checked below).
    for pyproject in (repo_root / SDK_FOLDER / "pyproject.toml", repo_root / "pyproject.toml"):
        table = _pyproject(pyproject)
        assert "version" not in table["project"] and "version" in table["project"]["dynamic"], pyproject
        assert table["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ctbench.__version__"}, pyproject
    # ctbench depends on exactly its own version of the SDK, and names none of the SDK's
    # requirements again (so the two never disagree on a pin).
    assert f"ctbench-sdk=={__version__}" in full["dependencies"]
    sdk_names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in sdk["dependencies"]}
    full_names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in full["dependencies"]}
    assert sdk_names and not sdk_names & full_names, sdk_names & full_names
    # One `bench` script, from the SDK (the full CLI runs behind it where ctbench is installed).
    assert sdk["scripts"] == {"bench": "ctbench.server_cli:main"} and "scripts" not in full
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
    return {"wheel": wheel, "python": python, "env": env, "src": src, "venv": venv, "dist": work / "dist"}


def _record(wheel: Path) -> set[str]:
    """The files a wheel installs, from its RECORD (its own .dist-info left out)."""
    with zipfile.ZipFile(wheel) as archive:
        (record,) = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        rows = archive.read(record).decode().splitlines()
    return {row.split(",")[0] for row in rows if row and ".dist-info/" not in row.split(",")[0]}


def _metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode()


@pytest.fixture(scope="module")
def full_wheel(venv) -> Path:
    """ctbench's own wheel, built from the same copy of the checkout."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(venv["dist"]),
                            str(venv["src"])], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = venv["dist"].glob("ctbench-*.whl")
    return wheel


@pytest.mark.slow
def test_no_file_is_installed_by_both_distributions(venv, full_wheel, repo_root):
    sdk, full = _record(venv["wheel"]), _record(full_wheel)
    assert not sdk & full, f"installed by both: {sorted(sdk & full)[:10]}"
    # ... and between them every Python module of the checkout is installed, once.
    from ctbench.project import PACKAGE_ROOTS

    listed = subprocess.run(["git", "-C", str(repo_root), "ls-files", "-co", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split()
    expected = set()
    for package, folder in PACKAGE_ROOTS.items():
        inside = package.replace(".", "/")
        for path in listed:
            if path.endswith(".py") and path.startswith(f"{folder}/") and (repo_root / path).is_file():
                relative = path[len(folder) + 1:]
                if package == "ctbench" and relative.split("/")[0] in {p.split(".")[1] for p in PACKAGE_ROOTS if "." in p}:
                    continue
                expected.add(f"{inside}/{relative}")
    missing = sorted(expected - (sdk | full))
    assert not missing, f"in neither wheel: {missing[:10]}"
    assert "ctbench/__init__.py" in sdk and "ctbench/cli/__init__.py" in full and "ctbench/runners/run.py" in full


@pytest.mark.slow
def test_both_wheels_carry_the_one_version_and_ctbench_requires_its_sdk(venv, full_wheel):
    sdk, full = _metadata(venv["wheel"]), _metadata(full_wheel)
    assert f"\nVersion: {__version__}\n" in sdk and f"\nVersion: {__version__}\n" in full
    assert f"\nRequires-Dist: ctbench-sdk=={__version__}\n" in full
    assert venv["wheel"].name == f"ctbench_sdk-{__version__}-py3-none-any.whl"
    assert full_wheel.name == f"ctbench-{__version__}-py3-none-any.whl"

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


@pytest.mark.slow
def test_the_sdk_alone_serves_and_checks_with_bench(venv, tmp_path):
    """With only ctbench-sdk installed, `bench serve` serves an out-of-tree model and `bench
    conformance` checks it; the rest of `bench` says it needs the full ctbench."""
    bench = str(venv["venv"] / "bin" / "bench")
    env = {**venv["env"], "PYTHONPATH": str(venv["src"] / "dockerfiles" / "template")}
    shown = subprocess.run([bench, "--help"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert shown.returncode == 0 and "serve" in shown.stdout and "conformance" in shown.stdout, shown.stdout
    other = subprocess.run([bench, "run", "--servers", "all"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert other.returncode == 2 and "pip install ctbench" in other.stderr, other.stderr
    started = subprocess.run([bench, "conformance", "--serve", "chance"], capture_output=True, text=True, timeout=60,
                             env=env, cwd=tmp_path)
    assert started.returncode == 1 and "only the full ctbench carries" in started.stderr, started.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path / "data"
    data.mkdir()
    server = subprocess.Popen([bench, "serve", "template_server:TemplateModel", "--host", "127.0.0.1", "--port", str(port),
                               "--data-root", str(data)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        result = subprocess.run([bench, "conformance", f"127.0.0.1:{port}", "--data-root", str(data),
                                 "--json", str(tmp_path / "conformance.json")],
                                capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert server.poll() is None, server.stderr.read()[-2000:]
        report = json.loads((tmp_path / "conformance.json").read_text())
        assert report["passed"] and report["counts"]["fail"] == 0 and report["counts"]["pass"] > 0, report["counts"]
        assert report["model"]["name"] == "template" and report["model"]["sdk_version"] == __version__
    finally:
        server.terminate()
        server.wait(timeout=30)
