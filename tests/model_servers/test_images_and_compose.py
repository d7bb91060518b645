"""The eight GPU images and their compose services: CUDA base via ARG, non-root, health check,
weights mounted read-only (never copied in), authors' code at pinned commits, loopback ports.
hadolint runs on every Dockerfile when it is installed."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tools import find_tool

from ctbench.model_servers.registry import MODEL_MODULES, get_model_class

ROOT = Path(__file__).resolve().parents[2]
VLMS = ["med3dvlm", "m3d-lamed", "radfm", "ct-chat", "medgemma", "merlin", "vila-m3", "lingshu"]


@pytest.mark.parametrize("name", VLMS)
def test_dockerfile_is_a_cuda_non_root_server_without_weights(name):
    text = (ROOT / "dockerfiles" / f"{name}.Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=nvidia/cuda:\S+runtime", text, re.M)
    assert "USER 10001:10001" in text and "HEALTHCHECK" in text
    assert 'ENTRYPOINT ["bench", "serve"]' in text and f'CMD ["{name}"' in text
    assert "weights=/weights" in text
    assert not re.search(r"^(COPY|ADD)\s.*weights", text, re.M | re.I)  # never baked in
    package = MODEL_MODULES[name].split(".")[-2]
    assert f"model_servers/{package}/requirements.txt" in text


@pytest.mark.parametrize("name", VLMS)
def test_authors_checkouts_are_pinned_to_the_commit_the_server_names(name):
    text = (ROOT / "dockerfiles" / f"{name}.Dockerfile").read_text()
    cls = get_model_class(name)
    for repo in (getattr(cls, "repo", None), getattr(cls, "clip_repo", None)):
        if repo is not None:
            assert repo.commit in text and repo.url in text and f"{repo.env_var}={repo.default_path}" in text


@pytest.mark.parametrize("name", VLMS)
def test_requirements_are_pinned(name):
    package = MODEL_MODULES[name].split(".")[-2]
    lines = [line for line in (ROOT / "model_servers" / package / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)
    assert any(line.startswith("torch==") for line in lines)


@pytest.mark.skipif(find_tool("hadolint") is None, reason="hadolint not installed")
@pytest.mark.parametrize("name", VLMS)
def test_hadolint_passes(name):
    result = subprocess.run([find_tool("hadolint"), str(ROOT / "dockerfiles" / f"{name}.Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_image_that_installs_the_source_copies_all_the_wheel_needs(repo_root):
    """`pip install /src` builds the wheel, whose build copies the project files (PROJECT_FILES)
    and the Python folders (PACKAGE_ROOTS): an image that leaves one out fails to build."""
    import re

    from ctbench.project import PACKAGE_ROOTS, PROJECT_FILES

    needed = {*PROJECT_FILES, *PACKAGE_ROOTS.values()}
    checked = 0
    for dockerfile in sorted((repo_root / "dockerfiles").glob("*.Dockerfile")):
        text = dockerfile.read_text()
        if not re.search(r"pip install [^\n]*/src\b", text):
            continue
        copied = set()
        for sources in re.findall(r"^COPY (.+) /src/\S*$", text, re.M):
            copied |= {s.rstrip("/") for s in sources.split()}
        copied |= {f"scripts/{Path(s).name}" for s in copied if s.startswith("scripts/")}
        missing = sorted(p for p in needed if p not in copied and f"{p}" not in copied)
        assert not missing, f"{dockerfile.name} does not copy {', '.join(missing)} into /src"
        checked += 1
    assert checked >= 9
