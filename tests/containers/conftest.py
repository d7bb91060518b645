"""Fixtures for the container tests: the Docker engine (skip cleanly when none answers), test
images, and servers started as local processes or in-process."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def load_fixture_module(name: str):
    spec = importlib.util.spec_from_file_location(f"ctbench_test_{name}", FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client, or a clean skip that says why and how to get an engine."""
    from ctbench.runners.backends.docker_backend import engine_available

    ok, why = engine_available()
    if not ok:
        pytest.skip(f"{why} (scripts/docker/engine.sh start, or scripts/docker/ci-stage.sh runs these)")
    import docker

    client = docker.from_env(timeout=120)
    yield client
    client.close()


def _require_image(client, image: str) -> None:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.skip(f"image {image} not built: run scripts/docker/build-images.sh")


@pytest.fixture
def require_image(docker_client):
    """`require_image("ctbench/chance:latest")` skips the test, saying how to build it, if absent."""
    return lambda image: _require_image(docker_client, image)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def test_server_image(docker_client) -> str:
    """ctbench/test-broken: tests/containers/fixtures/broken_server.py on the ctbench base."""
    _require_image(docker_client, "ctbench/base:latest")
    image = "ctbench/test-broken:latest"
    docker_client.images.build(path=str(FIXTURES), dockerfile="test-server.Dockerfile", tag=image, rm=True)
    return image


@pytest.fixture
def broken_server():
    """The deliberately broken server, in-process on a loopback port; yields host:port."""
    module = load_fixture_module("broken_server")
    server, port = module.serve(0, "broken", host="127.0.0.1")
    yield f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture
def never_healthy_server():
    module = load_fixture_module("broken_server")
    server, port = module.serve(0, "never-healthy", host="127.0.0.1")
    yield f"127.0.0.1:{port}"
    server.stop(0)
