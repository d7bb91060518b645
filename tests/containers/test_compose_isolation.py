"""compose/compose.yaml brought up for real (the chance baseline): the model runs in its holder's
namespace with no default route, the gateway loses its route too, and the runner reaches the
model on the published 127.0.0.1 port. Uses `docker compose` (v2) or `docker-compose` (1.29,
which does not know the top-level `name` key: a copy without it is used). Skipped, saying so,
when neither is installed."""
from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import yaml

from ctbench.runners.health import wait_until_serving
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose" / "compose.yaml"
TIMEOUT_S = 120


def _compose_command(tmp_path: Path) -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose", "-f", str(COMPOSE)]
    if shutil.which("docker-compose"):
        spec = yaml.safe_load(COMPOSE.read_text())
        spec.pop("name", None)
        copy = tmp_path / "compose.yaml"
        copy.write_text(yaml.safe_dump(spec, sort_keys=False))
        return ["docker-compose", "--project-directory", str(COMPOSE.parent), "-f", str(copy)]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed")


def _default_routes(docker_client, name: str) -> list[str]:
    out = docker_client.containers.get(name).exec_run(["cat", "/proc/net/route"]).output.decode()
    return [line for line in out.splitlines()[1:] if line.split()[1:2] == ["00000000"]]


def test_compose_model_and_gateway_have_no_default_route_and_serve_on_loopback(docker_client, require_image, tmp_path):
    require_image("ctbench/chance:latest")
    require_image("ctbench/gateway:latest")
    spec = yaml.safe_load(COMPOSE.read_text())
    port = int(spec["services"]["chance"]["x-ctbench"]["host_port"])
    project = f"ctbcompose{secrets.token_hex(3)}"
    data = tmp_path / "data"
    data.mkdir()
    env = {"CTBENCH_DATA_ROOT": str(data), "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
    import os

    env["DOCKER_HOST"] = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    base = [*_compose_command(tmp_path), "-p", project, "--profile", "baselines"]

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)

    try:
        up = compose("up", "-d", "--no-build", "chance", "chance-gw", "chance-gw-noroute")
        assert up.returncode == 0, up.stderr[-3000:]
        containers = {c.labels.get("com.docker.compose.service"): c
                      for c in docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})}
        assert {"chance", "chance-ns", "chance-noroute", "chance-gw", "chance-gw-noroute"} <= set(containers)
        deadline = time.monotonic() + 60
        for helper in ("chance-noroute", "chance-gw-noroute"):
            while containers[helper].status != "exited" and time.monotonic() < deadline:
                time.sleep(0.5)
                containers[helper].reload()
            assert containers[helper].attrs["State"]["ExitCode"] == 0, containers[helper].logs().decode()
        model, holder = containers["chance"], containers["chance-ns"]
        assert model.attrs["HostConfig"]["NetworkMode"] == f"container:{holder.id}"
        assert _default_routes(docker_client, model.name) == []
        assert _default_routes(docker_client, containers["chance-gw"].name) == []
        address = f"127.0.0.1:{port}"
        wait_until_serving(address, 60, "chance", lambda: True, lambda: model.logs(tail=20).decode())
        with grpc.insecure_channel(address) as channel:
            assert pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=10).name == "chance"
    finally:
        compose("down", "--remove-orphans", "-t", "2")
