"""What the docker backend asks the engine for, checked against a recording fake client: GPU
device requests, the read-only /data mount, dropped capabilities, loopback-only publishing, and
the command the registry (not the image) decides. No engine needed."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from ctbench.errors import ServerStartError
from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.docker_backend import DockerBackend


class FakeContainer:
    def __init__(self, kwargs):
        self.kwargs = kwargs
        self.status = "running"
        self.attrs = {"State": {"Status": "running"}}

    def start(self):
        pass

    def reload(self):
        pass

    def logs(self, tail=None):
        return b"fake log\n"

    def stop(self, timeout=None):
        self.status = "exited"

    def remove(self, force=False):
        self.status = "removed"


class FakeClient:
    def __init__(self):
        self.created: list[dict] = []
        self.networks_created: list[dict] = []
        self.images = SimpleNamespace(get=lambda image: object())
        self.api = SimpleNamespace(_version="1.41")
        self.containers = SimpleNamespace(create=self._create)
        self.networks = SimpleNamespace(create=self._network)

    def _create(self, image, **kwargs):
        container = FakeContainer({"image": image, **kwargs})
        self.created.append(container.kwargs)
        return container

    def _network(self, name, **kwargs):
        self.networks_created.append({"name": name, **kwargs})
        return SimpleNamespace(name=name, id="0123456789abcdef", connect=lambda c, **kw: None, remove=lambda: None)


@pytest.fixture
def recorded(tmp_path):
    client = FakeClient()
    backend = DockerBackend(client, run_id="unit", block_host_access=False)
    data = tmp_path / "data"
    data.mkdir()
    return client, backend, data


def test_gpu_server_gets_a_gpu_device_request(recorded, tmp_path, monkeypatch):
    from ctbench.runners.backends import docker_backend

    monkeypatch.setattr(docker_backend, "host_has_gpu", lambda: True)
    client, backend, data = recorded
    endpoint = backend.start(ServerSpec(name="vlm", model="medgemma", image="ctbench/medgemma:latest", gpu=True,
                                        args=("--option", "weights=/weights")), data, tmp_path / "logs")
    model = client.created[0]
    (request,) = model["device_requests"]
    assert request["Capabilities"] == [["gpu"]] and request["Count"] == -1
    assert model["command"] == ["medgemma", "--host", "0.0.0.0", "--port", "50051", "--data-root", "/data",
                                "--option", "weights=/weights"]
    assert endpoint.data_root == "/data" and endpoint.address.startswith("127.0.0.1:")
    backend.stop_all()
    assert (tmp_path / "logs" / "vlm.docker.log").read_text() == "fake log\n"


def test_gpu_server_mounts_its_weights_read_only_with_shared_memory(tmp_path, monkeypatch):
    from ctbench.runners.backends import docker_backend

    monkeypatch.setattr(docker_backend, "host_has_gpu", lambda: True)
    client = FakeClient()
    weights = tmp_path / "weights"
    (weights / "medgemma").mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    backend = DockerBackend(client, run_id="unit", block_host_access=False, weights_root=weights)
    backend.start(ServerSpec(name="medgemma", model="medgemma", image="ctbench/medgemma:latest", gpu=True), data, tmp_path / "logs")
    model = client.created[0]
    assert model["volumes"][str(weights / "medgemma")] == {"bind": "/weights", "mode": "ro"}
    assert model["shm_size"] == "2g"


def test_gpu_servers_are_not_runnable_on_a_host_without_gpu(monkeypatch, tmp_path):
    from ctbench.runners.backends import docker_backend

    monkeypatch.setattr(docker_backend, "host_has_gpu", lambda: False)
    gpu = ServerSpec(name="medgemma", model="medgemma", image="ctbench/medgemma:latest", gpu=True)
    assert "needs a GPU" in docker_backend.runnable_here(gpu)
    assert docker_backend.runnable_here(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest")) is True
    assert "no image" in docker_backend.runnable_here(ServerSpec(name="x", model="x"))
    with pytest.raises(ServerStartError, match="medgemma needs a GPU; this host has none"):
        DockerBackend(FakeClient(), block_host_access=False).start(gpu, tmp_path, tmp_path / "logs")
    monkeypatch.setattr(docker_backend, "host_has_gpu", lambda: True)
    assert docker_backend.runnable_here(gpu) is True


def test_cpu_server_gets_no_device_request_and_is_locked_down(recorded, tmp_path):
    client, backend, data = recorded
    backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest", host_port=50999), data, tmp_path / "logs")
    model, gateway = client.created
    assert model["device_requests"] is None and model["shm_size"] is None
    assert model["volumes"] == {str(data.resolve()): {"bind": "/data", "mode": "ro"}}
    assert model["cap_drop"] == ["ALL"] and model["security_opt"] == ["no-new-privileges:true"]
    assert model["network"] == "ctbench-unit-models" and "ports" not in model
    assert gateway["ports"] == {"50051/tcp": ("127.0.0.1", 50999)}
    assert gateway["command"] == ["50051=chance:50051"]
    internal = {n["name"]: n["internal"] for n in client.networks_created}
    assert internal == {"ctbench-unit-models": True, "ctbench-unit-edge": False}
    edge = next(n for n in client.networks_created if n["name"].endswith("edge"))
    assert edge["options"] == {"com.docker.network.bridge.enable_ip_masquerade": "false"}
