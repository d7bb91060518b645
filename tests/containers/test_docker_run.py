"""`bench run` through real containers: the same predictions as local processes, and a
container killed mid-run loses nothing once the run is resumed."""
from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import pytest

from ctbench.runners.backends.docker_backend import LABEL
from ctbench.runners.ledger import effective_records, read_ledger
from ctbench.runners.run import RunConfig, run_benchmark

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


def check_runs():
    spec = importlib.util.spec_from_file_location("check_runs", REPO / "scripts" / "docker" / "check_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def images(require_image):
    for server in ("chance", "blind", "geometric"):
        require_image(f"ctbench/{server}:latest")


def test_docker_run_gives_the_local_run_predictions(images, tmp_path):
    servers = "chance,blind,geometric"  # the GPU servers need a GPU host
    docker_run = run_benchmark(RunConfig(tmp_path / "docker", servers=servers, backend="docker", phantom_volumes=3))
    local_run = run_benchmark(RunConfig(tmp_path / "local", servers=servers, backend="local", phantom_volumes=3))
    assert "Docker" in docker_run.backend and "local" in local_run.backend
    checks = check_runs()
    assert checks.check_run(tmp_path / "docker", "docker", {}) == []
    assert checks.compare_runs(tmp_path / "docker", tmp_path / "local") == []


def test_container_killed_mid_run_then_resume_loses_nothing(images, docker_client, tmp_path):
    out = tmp_path / "run"
    ledger = out / "predictions" / "geometric.jsonl"
    killed = threading.Event()

    def kill_when_answers_arrive():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed.is_set():
            if ledger.is_file() and read_ledger(ledger).records:
                for container in docker_client.containers.list(
                        filters={"label": [f"{LABEL}.server=geometric", f"{LABEL}.role=model"]}):
                    container.kill()
                    killed.set()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_when_answers_arrive, daemon=True)
    watcher.start()
    config = RunConfig(out, servers="geometric", backend="docker", phantom_volumes=12, restarts=0)
    first = run_benchmark(config)
    watcher.join(5)
    if not killed.is_set() or not first.servers["geometric"].failure:
        pytest.skip("the run finished before the container could be killed (machine too fast)")
    answered_first = {q for q, r in effective_records(ledger).items() if r["status"] == "ok"}
    assert 0 < len(answered_first) < first.n_questions

    second = run_benchmark(config)
    result = second.servers["geometric"]
    assert result.failure == ""
    assert result.already_done == len(answered_first), "answers from the killed run are kept, not asked again"
    final = effective_records(ledger)
    assert len(final) == second.n_questions
    assert all(r["status"] == "ok" for r in final.values())
    assert check_runs().check_run(out, "docker", {"geometric": 0.95}) == []


def test_endpoints_target_containers_already_running(images, docker_client, tmp_path):
    """`--endpoints name=host:port`: the runner starts nothing and streams volumes inline."""
    from ctbench.runners.backends.base import ServerSpec
    from ctbench.runners.backends.docker_backend import DockerBackend
    from ctbench.runners.health import wait_until_serving

    data_root = tmp_path / "elsewhere"
    data_root.mkdir()
    with DockerBackend(docker_client) as backend:
        endpoint = backend.start(ServerSpec(name="geometric", model="geometric", image="ctbench/geometric:latest"),
                                 data_root, tmp_path / "logs")
        wait_until_serving(endpoint.address, 60, "geometric", lambda: backend.is_alive("geometric"))
        result = run_benchmark(RunConfig(tmp_path / "run", endpoints={"geometric": endpoint.address}, phantom_volumes=2))
        assert backend.is_alive("geometric"), "the runner does not stop servers it did not start"
    assert "endpoints" in result.backend
    assert result.servers["geometric"].ok == result.n_questions
    assert check_runs().check_run(tmp_path / "run", None, {"geometric": 0.95}) == []


def test_foreign_listener_on_the_registry_port_neither_stops_nor_fools_the_run(images, tmp_path):
    """Another process on compose's fixed port for `chance`: the run picks its own free port and
    every answer comes from its own container."""
    import socket

    from ctbench.runners.compose_file import load_compose_file

    registry_port = load_compose_file()["chance"].host_port
    foreign = socket.socket()
    try:
        foreign.bind(("127.0.0.1", registry_port))
        foreign.listen(8)
    except OSError:
        pass  # something else already holds it: a foreign listener all the same
    try:
        result = run_benchmark(RunConfig(tmp_path / "run", servers="chance", backend="docker", phantom_volumes=1))
    finally:
        foreign.close()
    chance = result.servers["chance"]
    assert chance.failure == "" and chance.errors == 0 and chance.ok == result.n_questions
    assert chance.card["name"] == "chance"
