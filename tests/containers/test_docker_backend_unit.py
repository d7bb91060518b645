"""What the docker backend asks the engine for, checked against a recording fake client: GPU
device requests, the read-only /data mount, dropped capabilities, loopback-only publishing, and
the command the registry (not the image) decides. No engine needed."""
from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import docker
import pytest

from ctbench.errors import ServerStartError
from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.docker_backend import DockerBackend


class FakeContainer:
    def __init__(self, kwargs, exit_code: int = 0):
        self.kwargs = kwargs
        self.name = kwargs.get("name", "")
        self.id = f"id-{self.name}"
        self.labels = kwargs.get("labels", {})
        self.status = "running"
        self.attrs = {"State": {"Status": "running"}}
        self.exit_code = exit_code

    def wait(self, timeout=None):
        return {"StatusCode": self.exit_code}

    def start(self):
        if self.kwargs.pop("refuse_start", None):
            raise docker.errors.APIError("start", explanation=self.kwargs["refusal"])

    def reload(self):
        pass

    def logs(self, tail=None):
        return b"fake log\n"

    def stop(self, timeout=None):
        self.status = "exited"

    def remove(self, force=False):
        self.status = "removed"


class FakeClient:
    def __init__(self, port_taken_times: int = 0):
        self.port_taken_times = port_taken_times  # gateway starts that fail as if the port were taken
        self.created: list[dict] = []  # model and gateway containers, in order
        self.helpers: list[dict] = []  # network holders and route helpers, in order
        self.route_exit_code = 0
        self.networks_created: list[dict] = []
        self.images = SimpleNamespace(get=lambda image: object())
        self.api = SimpleNamespace(_version="1.41")
        self.containers = SimpleNamespace(create=self._create)
        self.networks = SimpleNamespace(create=self._network)

    def _create(self, image, **kwargs):
        role = (kwargs.get("labels") or {}).get("org.ctbench.role")
        helper = role in ("network", "route-helper")
        container = FakeContainer({"image": image, **kwargs},
                                  exit_code=self.route_exit_code if role == "route-helper" else 0)
        (self.helpers if helper else self.created).append(dict(container.kwargs))
        if "ports" in kwargs and self.port_taken_times > 0:
            self.port_taken_times -= 1
            port = kwargs["ports"]["50051/tcp"][1]
            container.kwargs.update(refuse_start=True, refusal=f"Bind for 127.0.0.1:{port} failed: port is already allocated")
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
    endpoint = backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), data, tmp_path / "logs")
    model, gateway = client.created
    assert model["device_requests"] is None and model["shm_size"] is None
    assert model["volumes"] == {str(data.resolve()): {"bind": "/data", "mode": "ro"}}
    assert model["cap_drop"] == ["ALL"] and model["security_opt"] == ["no-new-privileges:true"]
    assert model["network_mode"] == "container:id-ctbench-unit-chance-net" and "ports" not in model
    port = int(endpoint.address.rsplit(":", 1)[1])
    assert gateway["ports"] == {"50051/tcp": ("127.0.0.1", port)}
    assert gateway["command"] == ["50051=chance:50051"]
    internal = {n["name"]: n["internal"] for n in client.networks_created}
    assert internal == {"ctbench-unit-chance-models": True, "ctbench-unit-chance-edge": False}
    edge = next(n for n in client.networks_created if n["name"].endswith("edge"))
    assert edge["options"] == {"com.docker.network.bridge.enable_ip_masquerade": "false"}


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_gateway_takes_a_free_port_not_the_registry_port_another_process_holds(recorded, tmp_path):
    """With a foreign listener on the compose file's port, the run still gets its own server."""
    client, backend, data = recorded
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen(1)
        held = foreign.getsockname()[1]
        endpoint = backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest", host_port=held),
                                 data, tmp_path / "logs")
    assert _port(endpoint.address) != held
    assert client.created[-1]["ports"] == {"50051/tcp": ("127.0.0.1", _port(endpoint.address))}


def test_a_port_taken_between_choice_and_bind_is_retried_on_another(tmp_path):
    client = FakeClient(port_taken_times=2)
    backend = DockerBackend(client, run_id="unit", block_host_access=False)
    data = tmp_path / "data"
    data.mkdir()
    endpoint = backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), data, tmp_path / "logs")
    gateways = [c for c in client.created if "ports" in c]
    assert len(gateways) == 3
    assert gateways[-1]["ports"]["50051/tcp"][1] == _port(endpoint.address)


def test_ports_taken_on_every_try_end_in_port_in_use_and_leave_nothing(tmp_path):
    from ctbench.errors import PortInUse
    from ctbench.runners.backends.docker_backend import PORT_ATTEMPTS

    client = FakeClient(port_taken_times=PORT_ATTEMPTS)
    backend = DockerBackend(client, run_id="unit", block_host_access=False)
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(PortInUse, match=f"no free 127.0.0.1 port after {PORT_ATTEMPTS} tries"):
        backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), data, tmp_path / "logs")
    assert not backend.running()
    assert len([c for c in client.created if "ports" in c]) == PORT_ATTEMPTS


def phantom_root(tmp_path):
    """A data root laid out like the phantom's: answers beside the volumes."""
    root = tmp_path / "phantom"
    (root / "volumes").mkdir(parents=True)
    for name in ("a.nii.gz", "b.nii.gz", "unused.nii.gz"):
        (root / "volumes" / name).write_bytes(b"voxels " + name.encode())
    (root / "qa_pairs.json").write_text('{"answer": "left"}')
    (root / "ground_truth.json").write_text("{}")
    return root


def _view_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_model_container_mounts_only_the_runs_volumes(tmp_path):
    client = FakeClient()
    root = phantom_root(tmp_path)
    run = tmp_path / "run"
    with DockerBackend(client, run_id="unit", block_host_access=False) as backend:
        backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), root, run / "logs",
                      volumes=["volumes/a.nii.gz", "volumes/b.nii.gz"])
        backend.start(ServerSpec(name="blind", model="blind", image="ctbench/blind:latest"), root, run / "logs",
                      volumes=["volumes/a.nii.gz", "volumes/b.nii.gz"])
        chance, _, blind, _ = client.created
        ((folder, mount),) = chance["volumes"].items()
        assert mount == {"bind": "/data", "mode": "ro"} and blind["volumes"] == chance["volumes"]
        folder = Path(folder)
        assert folder.is_relative_to(run) and not folder.is_relative_to(root)
        assert _view_files(folder) == {"volumes/a.nii.gz", "volumes/b.nii.gz"}
        assert (folder / "volumes" / "a.nii.gz").stat().st_ino == (root / "volumes" / "a.nii.gz").stat().st_ino
        assert oct(folder.stat().st_mode & 0o777) == "0o755"
    assert not folder.exists(), "the view goes with the run's last server"
    assert (root / "volumes" / "a.nii.gz").read_bytes() == b"voxels a.nii.gz"


def test_volumes_that_cannot_be_hard_linked_are_bind_mounted_one_by_one(tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    client = FakeClient()
    root = phantom_root(tmp_path)
    backend = DockerBackend(client, run_id="unit", block_host_access=False)
    backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), root, tmp_path / "run" / "logs",
                  volumes=["volumes/a.nii.gz"])
    mounts = client.created[0]["volumes"]
    (view,) = [source for source, m in mounts.items() if m["bind"] == "/data"]
    assert mounts[str(root / "volumes" / "a.nii.gz")] == {"bind": "/data/volumes/a.nii.gz", "mode": "ro"}
    assert len(mounts) == 2 and _view_files(Path(view)) == {"volumes/a.nii.gz"}
    backend.stop_all()


def test_a_volume_path_leaving_the_data_root_is_refused(tmp_path):
    from ctbench.errors import DatasetError

    backend = DockerBackend(FakeClient(), run_id="unit", block_host_access=False)
    root = phantom_root(tmp_path)
    with pytest.raises(DatasetError, match="not inside the data root"):
        backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), root, tmp_path / "run" / "logs",
                      volumes=["../phantom/qa_pairs.json"])
    assert not backend.running()


def test_runner_passes_only_the_runs_volumes_to_the_backend(tmp_path):
    from ctbench.datasets.qa_items import load_dataset
    from ctbench.runners.run import _relative_volumes

    root = phantom_root(tmp_path)
    (root / "qa.jsonl").write_text(
        '{"case_id": "a", "image_path": "volumes/a.nii.gz", "question": "q1", "answer": "x"}\n'
        '{"case_id": "a", "image_path": "volumes/a.nii.gz", "question": "q2", "answer": "y"}\n'
        '{"case_id": "b", "image_path": "volumes/b.nii.gz", "question": "q3", "answer": "z"}\n')
    assert _relative_volumes(load_dataset(root / "qa.jsonl")) == ["volumes/a.nii.gz", "volumes/b.nii.gz"]


def test_containers_are_hardened_by_default(recorded, tmp_path):
    client, backend, data = recorded
    backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), data, tmp_path / "logs")
    model, gateway = client.created
    assert model["read_only"] is True and model["tmpfs"] == {"/tmp": "size=1g,mode=1777"}
    assert model["pids_limit"] == 256 and model["mem_limit"] == "4g" and model["nano_cpus"] == 2_000_000_000
    assert model["log_config"]["Type"] == "json-file"
    assert model["log_config"]["Config"] == {"max-size": "10m", "max-file": "3"}
    assert gateway["read_only"] is True and gateway["pids_limit"] == 64 and gateway["mem_limit"] == "256m"
    assert gateway["cap_drop"] == ["ALL"] and gateway["log_config"]["Type"] == "json-file"


REGISTRY = """
services:
  roomy:
    image: ctbench/roomy:latest
    read_only: false
    tmpfs: ["/scratch:size=10m"]
    pids_limit: 99
    mem_limit: 1g
    cpus: 0.5
    logging: {driver: json-file, options: {max-size: 1m, max-file: "2"}}
    x-ctbench: {model: chance}
  plain:
    image: ctbench/plain:latest
    x-ctbench: {model: chance}
"""


def test_registry_sets_container_limits_per_service(tmp_path):
    from ctbench.runners.backends.container_settings import ContainerSettings
    from ctbench.runners.compose_file import load_compose_file

    path = tmp_path / "compose.yaml"
    path.write_text(REGISTRY)
    specs = load_compose_file(path)
    assert specs["roomy"].container == ContainerSettings(read_only=False, tmpfs=("/scratch:size=10m",), pids_limit=99,
                                                         mem_limit="1g", cpus=0.5, log_max_size="1m", log_max_file=2)
    assert specs["plain"].container == ContainerSettings(), "a service that says nothing gets the hardened defaults"
    client = FakeClient()
    data = tmp_path / "data"
    data.mkdir()
    DockerBackend(client, run_id="unit", block_host_access=False).start(specs["roomy"], data, tmp_path / "logs")
    model = client.created[0]
    assert model["read_only"] is False and model["tmpfs"] == {"/scratch": "size=10m"}
    assert model["pids_limit"] == 99 and model["mem_limit"] == "1g" and model["nano_cpus"] == 500_000_000


def test_a_bad_container_limit_names_the_service_and_the_file(tmp_path):
    from ctbench.errors import ComposeFileError
    from ctbench.runners.compose_file import load_compose_file

    path = tmp_path / "compose.yaml"
    path.write_text(REGISTRY.replace("pids_limit: 99", "pids_limit: lots"))
    with pytest.raises(ComposeFileError, match=r"compose.yaml: service 'roomy': bad container setting"):
        load_compose_file(path)


def test_each_model_gets_its_own_internal_network_shared_only_with_its_gateway(tmp_path):
    client = FakeClient()
    connected: dict[str, list] = {}

    def network(name, **kwargs):
        client.networks_created.append({"name": name, **kwargs})
        return SimpleNamespace(name=name, id="0123456789abcdef", remove=lambda: None,
                               connect=lambda c, **kw: connected.setdefault(name, []).append(c.kwargs["name"]))

    client.networks = SimpleNamespace(create=network)
    data = tmp_path / "data"
    data.mkdir()
    backend = DockerBackend(client, run_id="unit", block_host_access=False)
    for name in ("chance", "blind"):
        backend.start(ServerSpec(name=name, model=name, image=f"ctbench/{name}:latest"), data, tmp_path / "logs")
    holders = {c["name"]: c["network"] for c in client.helpers if c["labels"]["org.ctbench.role"] == "network"}
    assert holders == {"ctbench-unit-chance-net": "ctbench-unit-chance-models",
                       "ctbench-unit-blind-net": "ctbench-unit-blind-models"}
    models = {c["name"]: c["network_mode"] for c in client.created if "ports" not in c}
    assert models == {"ctbench-unit-chance": "container:id-ctbench-unit-chance-net",
                      "ctbench-unit-blind": "container:id-ctbench-unit-blind-net"}
    assert connected == {"ctbench-unit-chance-models": ["ctbench-unit-chance-gw"],
                         "ctbench-unit-blind-models": ["ctbench-unit-blind-gw"]}
    assert {n["name"]: n["internal"] for n in client.networks_created} == {
        "ctbench-unit-chance-models": True, "ctbench-unit-blind-models": True,
        "ctbench-unit-chance-edge": False, "ctbench-unit-blind-edge": False}
    backend.stop_all()


def _private_root(tmp_path, mode: int) -> Path:
    """A data root owned by another user and group (uid/gid 4242), with `mode`."""
    root = tmp_path / "patients"
    root.mkdir()
    (root / "scan.nii.gz").write_bytes(b"x")
    (root / "scan.nii.gz").chmod(0o640)
    root.chmod(mode)
    if os.geteuid() == 0:
        os.chown(root, 4242, 4242)
        os.chown(root / "scan.nii.gz", 4242, 4242)
    return root


def test_a_group_readable_data_root_is_read_through_its_group_not_made_world_readable(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the data root another owner")
    client = FakeClient()
    root = _private_root(tmp_path, 0o750)
    DockerBackend(client, run_id="unit", block_host_access=False).start(
        ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), root, tmp_path / "logs")
    model, gateway = client.created
    assert model["group_add"] == ["4242"], "the model container joins the data root's group"
    assert "group_add" not in gateway, "the gateway reads no data"
    assert root.stat().st_mode & 0o777 == 0o750, "the data root's mode is left as it is"


def test_a_world_readable_data_root_needs_no_extra_group(recorded, tmp_path):
    client, backend, data = recorded
    data.chmod(0o755)
    backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), data, tmp_path / "logs")
    assert client.created[0]["group_add"] is None


def test_a_data_root_neither_group_nor_world_readable_is_refused_saying_what_it_needs(tmp_path):
    client = FakeClient()
    root = _private_root(tmp_path, 0o700)
    gid = root.stat().st_gid
    with pytest.raises(ServerStartError, match=rf"mode 700.*chmod g\+rx.*joins gid {gid}.*chown it to uid 10001"):
        DockerBackend(client, run_id="unit", block_host_access=False).start(
            ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), root, tmp_path / "logs")
    assert client.created == [] and client.helpers == []


def test_model_runs_in_a_namespace_whose_default_routes_go_before_it_starts(recorded, tmp_path):
    """The holder joins the models network under the server's name; a one-shot helper with only
    CAP_NET_ADMIN runs drop_routes.py in the holder's namespace, then in the gateway's."""
    from ctbench.runners.backends.docker_backend import DROP_ROUTES

    client, backend, data = recorded
    backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), data, tmp_path / "logs")
    holder, first, second = client.helpers
    assert holder["name"] == "ctbench-unit-chance-net" and holder["network"] == "ctbench-unit-chance-models"
    assert holder["hostname"] == "chance" and holder["cap_drop"] == ["ALL"] and "cap_add" not in holder
    assert [h["network_mode"] for h in (first, second)] == ["container:id-ctbench-unit-chance-net",
                                                            "container:id-ctbench-unit-chance-gw"]
    for helper in (first, second):
        assert helper["cap_drop"] == ["ALL"] and helper["cap_add"] == ["NET_ADMIN"]
        assert helper["security_opt"] == ["no-new-privileges:true"] and helper["read_only"] is True
        assert helper["command"] == ["-c", DROP_ROUTES.read_text(encoding="utf-8")]
    model, gateway = client.created
    assert "hostname" not in model and "cap_add" not in model
    assert gateway["environment"] == {"CTBENCH_GATEWAY_AWAIT_NO_ROUTE": "60"}, "it listens once the routes are gone"


def test_a_namespace_keeping_its_default_route_stops_the_start(tmp_path):
    client = FakeClient()
    client.route_exit_code = 1
    data = tmp_path / "data"
    data.mkdir()
    backend = DockerBackend(client, run_id="unit", block_host_access=False)
    with pytest.raises(ServerStartError, match="could not delete the default routes of ctbench-unit-chance-net"):
        backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), data, tmp_path / "logs")
    assert client.created == [], "no model starts in a namespace with a route out"
    assert not backend.running()


def test_exit_code_of_a_model_container_once_it_has_exited(recorded, tmp_path):
    _client, backend, data = recorded
    backend.start(ServerSpec(name="crashy", model="chance", image="ctbench/baselines:latest"), data, tmp_path / "logs")
    assert backend.exit_code("crashy") is None  # running
    model = backend._servers["crashy"]["model"]
    model.attrs = {"State": {"Status": "exited", "ExitCode": 3}}
    assert backend.exit_code("crashy") == 3
    assert backend.exit_status("crashy") == "exited with code 3"
    assert backend.exit_code("never-started") is None


def test_a_token_backend_mounts_the_run_token_for_the_image_user_only(tmp_path, monkeypatch):
    import stat

    from ctbench.runners import channels
    from ctbench.runners.backends.docker_backend import TOKEN_GID, TOKEN_MOUNT

    chowned = []
    monkeypatch.setattr(os, "chown", lambda path, uid, gid: chowned.append((Path(path), uid, gid)))
    client = FakeClient()
    backend = DockerBackend(client, run_id="unit", block_host_access=False, require_token=True)
    data = tmp_path / "data"
    data.mkdir()
    endpoint = backend.start(ServerSpec(name="chance", model="chance", image="ctbench/chance:latest"), data, tmp_path / "run" / "logs")
    model = client.created[0]
    token_file = tmp_path / "run" / "secrets" / "chance" / "server-token"
    assert model["volumes"][str(token_file.resolve())] == {"bind": TOKEN_MOUNT, "mode": "ro"}
    assert model["environment"]["CTBENCH_SERVER_TOKEN_FILE"] == TOKEN_MOUNT
    assert str(TOKEN_GID) in model["group_add"]
    assert chowned == [(token_file, -1, TOKEN_GID)]
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o440
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert channels._tokens[endpoint.address] == token_file.read_text()
    backend.stop_all()
    assert endpoint.address not in channels._tokens
