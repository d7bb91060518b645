"""Where a model container and its gateway can send packets, tried for real: network namespaces
play a LAN neighbour and an outside host (tests/support/netns.py; nothing leaves the machine).
The guarantees must not rest on Docker's own iptables chains: each attempt is repeated with
them bypassed, and with a second Docker daemon started on the host (which rewrites them).
Needs root (namespaces, iptables) and the engine; ci-stage.sh runs them."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from netns import PROBE_OUT, PROBE_TCP, Listener, delete_rules_naming, docker_chains_bypassed, last_json, namespace, sh

from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.docker_backend import DockerBackend, free_loopback_port
from ctbench.runners.health import wait_until_serving
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("iptables") is None or shutil.which("ip") is None,
                       reason="needs root, ip and iptables for namespaces and rules"),
]

TCP_PORT, UDP_PORT = 18080, 18081


def _octet() -> int:
    return 64 + secrets.randbelow(160)


@pytest.fixture
def running(docker_client, require_image, tmp_path):
    """chance through the docker backend, serving; yields (backend, endpoint)."""
    require_image("ctbench/chance:latest")
    require_image("ctbench/gateway:latest")
    data = tmp_path / "data"
    data.mkdir()
    (data / "note.txt").write_text("x\n")
    with DockerBackend(docker_client, block_host_access=True) as backend:
        endpoint = backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"),
                                 data, tmp_path / "logs")
        wait_until_serving(endpoint.address, 60, "chance", lambda: backend.is_alive("chance"),
                           lambda: backend.logs("chance"))
        yield backend, endpoint


def _gateway(docker_client, backend):
    return docker_client.containers.get(f"{backend.prefix}-chance-gw")


def _runner_reaches(endpoint) -> None:
    with grpc.insecure_channel(endpoint.address) as channel:
        card = pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=10)
    assert card.name == "chance"


def _probe_out(container, host: str) -> dict:
    result = container.exec_run(["python3", "-c", PROBE_OUT, host, str(TCP_PORT), str(UDP_PORT)])
    return last_json(result.output.decode("utf-8", "replace"))


def _assert_no_way_out(containers: dict, outside, listener) -> None:
    for role, container in containers.items():
        result = _probe_out(container, outside.ip)
        assert result["tcp"] != "reached", (role, result)
        assert result["udp"] != "sent" and result["dns"] != "sent", (role, "no route: nothing is sent", result)
        assert "Network is unreachable" in result["tcp"], (role, result)
    events = listener.events()
    assert events == [], f"packets reached the outside host: {events}"


def test_model_and_gateway_reach_no_outside_host_even_with_dockers_chains_bypassed(running, docker_client, tmp_path):
    backend, endpoint = running
    containers = {"model": backend.model_container("chance"), "gateway": _gateway(docker_client, backend)}
    with namespace("out", _octet()) as outside:
        listener = Listener(outside, tmp_path, TCP_PORT, (UDP_PORT, 53))
        try:
            # The outside host is reachable from this host, and from a container that has a route:
            # the probe would see a way out if there were one.
            sh("python3", "-c", PROBE_TCP, f"{outside.ip}:{TCP_PORT}")
            assert listener.events(0.5), "the outside host answers the host itself"
            listener.clear()
            control = docker_client.containers.run(
                "ctbench/gateway:latest", entrypoint=["python3"], command=["-c", PROBE_OUT, outside.ip,
                                                                           str(TCP_PORT), str(UDP_PORT)],
                network="bridge", detach=True, labels={"org.ctbench.project": "ctbench"})
            try:
                control.wait(timeout=60)
                assert last_json(control.logs().decode())["tcp"] == "reached", "a container with a route gets out"
            finally:
                control.remove(force=True)
            listener.clear()
            _assert_no_way_out(containers, outside, listener)
            with docker_chains_bypassed():
                _assert_no_way_out(containers, outside, listener)
        finally:
            listener.close()
    _runner_reaches(endpoint)


def test_published_port_is_unreachable_from_a_lan_neighbour_while_the_runner_reaches_it(running, docker_client, tmp_path):
    backend, endpoint = running
    gateway = _gateway(docker_client, backend)
    gateway.reload()
    edge = docker_client.networks.get(f"{backend.prefix}-chance-edge")
    edge_ip = gateway.attrs["NetworkSettings"]["Networks"][edge.name]["IPAddress"]
    edge_subnet = edge.attrs["IPAM"]["Config"][0]["Subnet"]
    bridge = docker_client.networks.get("bridge")
    bridge_subnet = bridge.attrs["IPAM"]["Config"][0]["Subnet"]
    port = endpoint.address.rsplit(":", 1)[1]
    # A plain container published on 127.0.0.1 the usual way: the engine lets a neighbour that
    # routes its subnet through the host reach it, which shows the probe can see a way in.
    control = docker_client.containers.run(
        "ctbench/gateway:latest", entrypoint=["python3"], command=["-m", "http.server", "8000"],
        network="bridge", ports={"8000/tcp": ("127.0.0.1", free_loopback_port())}, detach=True,
        labels={"org.ctbench.project": "ctbench"})
    try:
        control.reload()
        control_ip = control.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        _wait_listening(control_ip, 8000)
        with namespace("lan", _octet(), routes=(edge_subnet, bridge_subnet)) as lan:
            with socket.socket() as host_service:  # a service on the host's LAN address: wiring works
                host_service.bind((lan.host_ip, 0))
                host_service.listen(4)
                threading.Thread(target=lambda: host_service.accept()[0].close(), daemon=True).start()
                wired = f"{lan.host_ip}:{host_service.getsockname()[1]}"
                for bypass in (False, True):
                    with docker_chains_bypassed() if bypass else _nothing():
                        targets = [f"{edge_ip}:50051", f"{lan.host_ip}:{port}", f"{control_ip}:8000"]
                        if not bypass:
                            targets.insert(0, wired)
                        result = last_json(lan.python(PROBE_TCP, *targets))
                        if not bypass:
                            assert result[wired] == "reached", result
                        assert result[f"{control_ip}:8000"] == "reached", ("the control shows the path exists", result)
                        assert result[f"{edge_ip}:50051"] != "reached", ("the gateway answers no neighbour", result)
                        assert result[f"{lan.host_ip}:{port}"] != "reached", result
                        _runner_reaches(endpoint)
    finally:
        control.remove(force=True)


def _wait_listening(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _docker_chains() -> dict[str, str]:
    """iptables-save text of the filter and nat tables."""
    return {table: sh("iptables-save", "-t", table).stdout for table in ("filter", "nat")}


def _restore_docker_chains(saved: dict[str, str]) -> None:
    """Put back the DOCKER* chains as they were (a daemon starting rewrites them); other chains'
    rules are left as they are now."""
    for table, text in saved.items():
        lines = [f"*{table}"]
        for line in text.splitlines():
            if line.startswith(":DOCKER") or line.startswith("-A DOCKER"):
                lines.append(line)
        lines.append("COMMIT")
        subprocess.run(["iptables-restore", "--noflush"], input="\n".join(lines) + "\n", text=True,
                       capture_output=True, timeout=30, check=True)


def _second_daemon(tmp: Path):
    """A second dockerd on this host (own socket, roots, bridge), as another team might run."""
    import docker

    tag = secrets.token_hex(2)
    socket_path, bridge = f"/var/run/ctbench-second-{tag}.sock", f"ctb2{tag}"
    sh("ip", "link", "add", bridge, "type", "bridge")
    sh("ip", "addr", "add", "172.31.253.1/24", "dev", bridge)
    sh("ip", "link", "set", bridge, "up")
    args = [shutil.which("dockerd") or "/usr/sbin/dockerd", "-H", f"unix://{socket_path}", f"--data-root={tmp}/data", f"--exec-root=/var/run/ctb2-{tag}",
            f"--pidfile={tmp}/dockerd.pid", f"--bridge={bridge}", f"--containerd-namespace=ctb2-{tag}",
            f"--containerd-plugins-namespace=ctb2p-{tag}"]
    log = open(tmp / "dockerd.log", "w")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()
        delete_rules_naming(bridge)  # a daemon leaves its bridge's FORWARD and NAT rules behind
        sh("ip", "link", "delete", bridge, check=False)
        shutil.rmtree(f"/var/run/ctb2-{tag}", ignore_errors=True)
        Path(socket_path).unlink(missing_ok=True)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client = docker.DockerClient(base_url=f"unix://{socket_path}", timeout=5)
            client.ping()
            client.close()
            return stop
        except Exception:
            if process.poll() is not None:
                break
            time.sleep(1)
    stop()
    raise RuntimeError(f"the second dockerd did not come up: {(tmp / 'dockerd.log').read_text()[-2000:]}")


def test_a_second_docker_daemon_on_the_host_opens_no_path_out(running, docker_client, tmp_path):
    backend, endpoint = running
    containers = {"model": backend.model_container("chance"), "gateway": _gateway(docker_client, backend)}
    saved = _docker_chains()
    second = tmp_path / "second"
    second.mkdir()
    with namespace("out", _octet()) as outside:
        listener = Listener(outside, tmp_path, TCP_PORT, (UDP_PORT, 53))
        try:
            stop = _second_daemon(second)
            try:
                after = _docker_chains()["filter"]
                assert after != saved["filter"], "the second daemon rewrote Docker's chains"
                _assert_no_way_out(containers, outside, listener)
            finally:
                stop()
        finally:
            listener.close()
            _restore_docker_chains(saved)
    _runner_reaches(endpoint)
