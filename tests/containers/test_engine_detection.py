"""`engine_available()` says plainly whether a Docker engine is usable, and the docker backend
refuses to start without one, naming the fix. No engine needed for these."""
from __future__ import annotations

import socket
import threading

import pytest

from ctbench.runners.backends.docker_backend import DockerBackend, DockerUnavailable, engine_available


@pytest.fixture
def refusing_engine(tmp_path, monkeypatch):
    """A unix socket that answers every Docker API call with 403, like an authz plugin would."""
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    stop = threading.Event()
    body = b'{"message":"authorization denied by plugin ctbench-test"}'
    reply = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(reply)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    yield path
    stop.set()
    thread.join(2)
    server.close()


def test_no_engine_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    ok, why = engine_available()
    assert ok is False
    assert f"{tmp_path}/absent.sock" in why and "nothing listens" in why
    assert "Error while fetching" not in why and "\n" not in why, "one plain line, no exception text"


def test_engine_refusing_is_reported_with_its_reason(refusing_engine):
    ok, why = engine_available()
    assert ok is False
    assert str(refusing_engine) in why
    assert "403" in why or "authorization denied" in why


def test_backend_without_engine_names_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    with pytest.raises(DockerUnavailable, match="--backend local"):
        DockerBackend()


def test_backend_with_refusing_engine_names_the_way_out(refusing_engine):
    with pytest.raises(DockerUnavailable, match="engine.sh start"):
        DockerBackend()


def test_bench_run_with_docker_backend_and_no_engine_says_what_to_do(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ctbench.cli import main

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    result = CliRunner().invoke(main, ["run", "--backend", "docker", "--servers", "chance", "--phantom-volumes", "1",
                                       "--out", str(tmp_path / "run"), "--no-score"])
    assert result.exit_code == 1, result.output
    assert "no usable Docker engine" in result.output and "--backend local" in result.output


def test_without_docker_host_the_runner_looks_for_the_system_engine(monkeypatch):
    """ctbench's own engine (scripts/docker/engine.sh) is reached through DOCKER_HOST only; without
    it `bench run --backend auto` looks where a normal system engine listens."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    _ok, why = engine_available()
    assert "unix:///var/run/docker.sock" in why
