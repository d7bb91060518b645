"""The docker backend against a real engine: baseline containers on loopback, no route out,
read-only data, certain teardown, and each fault with a clear message. Skipped (saying so)
when no engine answers; scripts/docker/ci-stage.sh runs them with one up."""
from __future__ import annotations

import socket

import grpc
import pytest

from ctbench.errors import ServerStartError
from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.docker_backend import LABEL, DockerBackend, ImageBuildError
from ctbench.runners.health import wait_until_serving
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

pytestmark = pytest.mark.docker

NO_ROUTE_OUT = """
import socket, sys, threading
for host, port in (("1.1.1.1", 53), ("151.101.2.132", 443)):
    try:
        socket.create_connection((host, port), timeout=1.5)
    except OSError as exc:
        print(host, "blocked:", exc)
    else:
        print(host, "REACHED"); sys.exit(1)
resolved = []
lookup = threading.Thread(target=lambda: resolved.append(socket.getaddrinfo("deb.debian.org", 80)), daemon=True)
lookup.start()
lookup.join(3)
if resolved:
    print("dns RESOLVED"); sys.exit(1)
print("dns blocked")
"""


def default_routes(container) -> list[str]:
    """The default routes (IPv4 and IPv6) of a container's network namespace, as the kernel
    lists them in /proc/net/route and /proc/net/ipv6_route."""
    out = container.exec_run(["sh", "-c", "cat /proc/net/route; cat /proc/net/ipv6_route 2>/dev/null"]).output.decode()
    rows = [line.split() for line in out.splitlines()]
    v4 = [r for r in rows if len(r) > 2 and r[1] == "00000000" and r[0] != "Iface"]
    v6 = [r for r in rows if len(r) == 10 and r[0] == "0" * 32 and r[1] == "00" and r[9] != "lo"]
    return [" ".join(r) for r in v4 + v6]


def spec_for(name: str, **kw) -> ServerSpec:
    return ServerSpec(name=name, model=kw.pop("model", name), image=kw.pop("image", f"ctbench/{name}:latest"), **kw)


@pytest.fixture
def backend(docker_client):
    with DockerBackend(docker_client) as b:
        yield b
    leftovers = docker_client.containers.list(all=True, filters={"label": f"{LABEL}.run={b.run_id}"})
    assert leftovers == [], "teardown removes every container"


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "note.txt").write_text("read-only\n")
    return root


def wait(backend, endpoint, timeout=60):
    wait_until_serving(endpoint.address, timeout, endpoint.name,
                       lambda: backend.is_alive(endpoint.name), lambda: backend.logs(endpoint.name))


def test_baseline_container_serves_on_loopback_only_and_tears_down(backend, require_image, docker_client, data_root, tmp_path):
    require_image("ctbench/chance:latest")
    endpoint = backend.start(spec_for("chance"), data_root, tmp_path / "logs")
    assert endpoint.address.startswith("127.0.0.1:") and endpoint.data_root == "/data"
    wait(backend, endpoint)
    with grpc.insecure_channel(endpoint.address) as channel:
        card = pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=10)
    assert card.name == "chance"
    gateway = docker_client.containers.get(f"{backend.prefix}-chance-gw")
    bindings = gateway.attrs["HostConfig"]["PortBindings"]
    assert all(b["HostIp"] == "127.0.0.1" for bs in bindings.values() for b in bs)
    model, holder = backend.model_container("chance"), backend.network_container("chance")
    assert list(holder.attrs["NetworkSettings"]["Networks"]) == [f"{backend.prefix}-chance-models"]
    assert model.attrs["HostConfig"]["NetworkMode"] == f"container:{holder.id}"
    assert model.attrs["HostConfig"]["PortBindings"] in (None, {})
    assert holder.attrs["HostConfig"]["PortBindings"] in (None, {})
    backend.stop("chance")
    assert not backend.running()
    assert (tmp_path / "logs" / "chance.docker.log").is_file()
    assert docker_client.networks.list(filters={"label": f"{LABEL}.run={backend.run_id}"}) == []


def test_model_container_has_no_route_out_and_reads_data_read_only(backend, require_image, docker_client, data_root, tmp_path):
    require_image("ctbench/blind:latest")
    endpoint = backend.start(spec_for("blind"), data_root, tmp_path / "logs")
    wait(backend, endpoint)
    model = backend.model_container("blind")
    gateway = docker_client.containers.get(f"{backend.prefix}-blind-gw")
    assert default_routes(model) == [] and default_routes(gateway) == []
    result = model.exec_run(["python3", "-c", NO_ROUTE_OUT])
    assert result.exit_code == 0, result.output.decode()
    assert model.exec_run(["cat", "/data/note.txt"]).output == b"read-only\n"
    write = model.exec_run(["sh", "-c", "echo x > /data/new.txt"])
    assert write.exit_code != 0 and b"Read-only file system" in write.output
    assert model.exec_run(["id", "-u"]).output.strip() == b"10001"
    # The gateway, on the edge network without masquerading, cannot open connections out either.
    result = gateway.exec_run(["python3", "-c", NO_ROUTE_OUT])
    assert result.exit_code == 0, result.output.decode()


def test_image_build_failure_shows_the_build_log(backend, require_image, fixtures_dir, docker_client, data_root, tmp_path):
    require_image("ctbench/debian:bookworm")
    spec = spec_for("doomed", model="chance", image="ctbench/test-build-fails:latest",
                    build={"context": str(fixtures_dir), "dockerfile": "build-fails.Dockerfile"})
    before = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(ImageBuildError, match="(?s)build-fails.Dockerfile failed.*fails on purpose"):
        backend.start(spec, data_root, tmp_path / "logs")
    assert not backend.running()
    assert {c.id for c in docker_client.containers.list(all=True)} == before, "no failed build step left behind"


def test_missing_image_without_build_section_says_how_to_get_it(backend, data_root, tmp_path):
    with pytest.raises(ServerStartError, match="build-images.sh"):
        backend.start(spec_for("ghost", model="chance", image="ctbench/no-such-image:latest"), data_root, tmp_path / "logs")


def test_container_exiting_at_start_is_reported_with_its_log(backend, require_image, docker_client, data_root, tmp_path):
    require_image("ctbench/chance:latest")
    spec = spec_for("crashy", model="no-such-model", image="ctbench/chance:latest")
    endpoint = backend.start(spec, data_root, tmp_path / "logs")
    with pytest.raises(ServerStartError, match="(?s)died before turning healthy.*Unknown model server 'no-such-model'"):
        wait(backend, endpoint)
    assert backend.exit_status("crashy").startswith("exited with code")


def test_server_that_never_turns_healthy_fails_within_the_bound(backend, test_server_image, data_root, tmp_path):
    endpoint = backend.start(spec_for("stuck", model="never-healthy", image=test_server_image), data_root, tmp_path / "logs")
    with pytest.raises(ServerStartError, match=r"did not turn healthy within 3s \(last health status: NOT_SERVING\)"):
        wait(backend, endpoint, timeout=3)


def test_killed_container_is_seen_dead_and_restarts(backend, require_image, docker_client, data_root, tmp_path):
    require_image("ctbench/chance:latest")
    endpoint = backend.start(spec_for("chance"), data_root, tmp_path / "logs")
    wait(backend, endpoint)
    backend.model_container("chance").kill()
    assert not backend.is_alive("chance")
    assert backend.restart("chance") == endpoint
    wait(backend, endpoint)
    assert backend.is_alive("chance")
    assert default_routes(backend.model_container("chance")) == [], "a restarted model gets no route back"


@pytest.mark.parametrize("server", ["chance", "blind", "geometric"])
def test_conformance_passes_against_each_baseline_container(backend, require_image, docker_client, data_root, tmp_path, server):
    from ctbench.conformance import ConformanceOptions, run_conformance

    require_image(f"ctbench/{server}:latest")
    endpoint = backend.start(spec_for(server), data_root, tmp_path / "logs")
    wait(backend, endpoint)
    report = run_conformance(endpoint.address, ConformanceOptions(data_root=data_root, timeout_s=120))
    assert report.passed, report.to_text()
    assert {r.name: r.status for r in report.results}["reference"] == "pass"


def test_conformance_fails_against_the_broken_container(backend, test_server_image, data_root, tmp_path):
    from ctbench.conformance import ConformanceOptions, run_conformance

    endpoint = backend.start(spec_for("broken", model="broken", image=test_server_image), data_root, tmp_path / "logs")
    wait(backend, endpoint)
    report = run_conformance(endpoint.address, ConformanceOptions(data_root=data_root, timeout_s=60))
    assert not report.passed
    failed = {r.name for r in report.results if r.status == "fail"}
    assert {"describe", "bad-items", "reuse"} <= failed


def test_backend_builds_a_missing_image_from_its_build_section_and_it_conforms(backend, require_image, docker_client, data_root, tmp_path):
    """The guide's template image, built by the backend itself (as `bench run` does when an image
    is missing), then checked with `bench conformance` through the loopback gateway."""
    from ctbench.conformance import ConformanceOptions, run_conformance

    require_image("ctbench/sdk:latest")  # the template builds on ctbench-sdk alone
    image = "ctbench/template:ci-test"
    try:
        docker_client.images.remove(image, force=True)
    except Exception:
        pass
    spec = spec_for("template", image=image, build={"context": "..", "dockerfile": "dockerfiles/template.Dockerfile"})
    endpoint = backend.start(spec, data_root, tmp_path / "logs")
    wait(backend, endpoint)
    report = run_conformance(endpoint.address, ConformanceOptions(data_root=data_root, timeout_s=120))
    assert report.passed, report.to_text()
    history = " ".join(layer.get("CreatedBy", "") for layer in docker_client.images.get(image).history())
    assert "build-secrets" not in history, "the CA bundle never reaches the final image"


SDK_IMAGE_PROBE = """
import importlib.metadata as md, importlib.util as u, json
names = sorted(d.metadata["Name"].lower() for d in md.distributions())
print(json.dumps({"names": names, "cli": u.find_spec("ctbench.cli") is not None,
                  "conformance": u.find_spec("ctbench.conformance") is not None}))
"""


def test_the_sdk_image_carries_ctbench_sdk_alone_with_bench_serve_and_conformance(docker_client, require_image):
    """ctbench/sdk (what the template builds on): ctbench-sdk and the server's packages, none of the
    runner's or the scorer's, and its `bench` has serve and conformance."""
    import json

    require_image("ctbench/sdk:latest")
    out = docker_client.containers.run("ctbench/sdk:latest", ["-c", SDK_IMAGE_PROBE], entrypoint="python3",
                                       network_mode="none", remove=True)
    found = json.loads(out.decode().splitlines()[-1])
    assert "ctbench-sdk" in found["names"] and "ctbench" not in found["names"], found["names"]
    assert not set(found["names"]) & {"pandas", "docker", "scipy", "rich", "click", "pyyaml", "matplotlib", "torch"}
    assert found["conformance"] and not found["cli"]
    shown = docker_client.containers.run("ctbench/sdk:latest", ["--help"], entrypoint="bench", network_mode="none",
                                         remove=True).decode()
    assert "serve" in shown and "conformance" in shown and "pip install ctbench" in shown, shown


def test_data_root_the_container_user_cannot_read_is_refused_up_front(backend, tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    with pytest.raises(ServerStartError, match="not readable by the containers' user .*chmod g\\+rx.*joins gid"):
        backend.start(spec_for("chance"), private, tmp_path / "logs")
    assert not backend.running()


def _accept_once(listener: socket.socket) -> None:
    try:
        listener.accept()[0].close()
    except OSError:
        pass  # closed without a connection: the blocked case


def test_block_host_access_closes_the_path_to_host_services(docker_client, require_image, data_root, tmp_path):
    """Opt-in (CTBENCH_BLOCK_HOST_ACCESS=1): model containers cannot reach services the host
    exposes on its bridge address; the runner still reaches the model through the gateway."""
    import os
    import threading

    if os.geteuid() != 0:
        pytest.skip("needs root for iptables")
    require_image("ctbench/chance:latest")
    probe = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
             " print('REACHED')\nexcept OSError as e:\n print('blocked', e)")
    for block, expected in ((False, b"REACHED"), (True, b"blocked")):
        with DockerBackend(docker_client, block_host_access=block) as backend:
            endpoint = backend.start(spec_for("chance"), data_root, tmp_path / "logs")
            wait(backend, endpoint)
            network = docker_client.networks.get(f"{backend.prefix}-chance-models")
            host_ip = network.attrs["IPAM"]["Config"][0]["Gateway"]
            # A host service on the bridge address only (what a 0.0.0.0 service also listens on).
            with socket.socket() as listener:
                listener.bind((host_ip, 0))
                listener.listen(4)
                threading.Thread(target=_accept_once, args=(listener,), daemon=True).start()
                port = listener.getsockname()[1]
                out = backend.model_container("chance").exec_run(["python3", "-c", probe, host_ip, str(port)]).output
            assert out.startswith(expected), out
            with grpc.insecure_channel(endpoint.address) as channel:
                pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=10)


def test_cli_checks_an_image_it_starts_itself_and_stops_it(require_image, docker_client):
    from click.testing import CliRunner

    from ctbench.cli import main

    require_image("ctbench/blind:latest")
    before = {c.id for c in docker_client.containers.list(all=True)}
    result = CliRunner().invoke(main, ["conformance", "--image", "ctbench/blind:latest", "--check", "inline"])
    assert result.exit_code == 0, result.output
    assert "CONFORMS" in result.output and "ctbench/blind:latest" in result.output
    assert {c.id for c in docker_client.containers.list(all=True)} == before


def test_cli_image_that_never_turns_healthy_gets_a_failing_report(test_server_image, docker_client):
    from click.testing import CliRunner

    from ctbench.cli import main

    result = CliRunner().invoke(main, ["conformance", "--image", test_server_image, "--model", "never-healthy",
                                       "--health-timeout", "3"])
    assert result.exit_code == 1, result.output
    assert "did not turn healthy within 3s" in result.output and "DOES NOT CONFORM" in result.output


# Scans every file on every mount of the container except its image's own root filesystem (the
# image was built before the run's data existed) and the kernel's pseudo filesystems; exits 1
# naming any readable file that holds one of the needles (hex-encoded in argv).
FIND_ANSWERS = r"""
import os, sys
needles = [bytes.fromhex(h) for h in sys.argv[1:]]
skip = ("/proc", "/sys", "/dev")
mounts = set()
for line in open("/proc/self/mountinfo"):
    point = line.split()[4]
    if point != "/" and not point.startswith(skip):
        mounts.add(point)
found, scanned = [], 0
for mount in sorted(mounts):
    paths = [mount] if os.path.isfile(mount) else (os.path.join(d, f) for d, _, fs in os.walk(mount) for f in fs)
    for path in paths:
        try:
            data = open(path, "rb").read()
        except OSError:
            continue
        scanned += 1
        found += [path for n in needles if n in data]
print("mounts", sorted(mounts), "files read", scanned)
if found:
    print("ANSWERS IN", sorted(set(found))); sys.exit(1)
"""


def test_model_container_can_read_no_answer(backend, require_image, tmp_path):
    """A phantom data root holds the questions with their answers and the ground truth; the model
    container's /data holds only the run's volumes, and no file it can read carries an answer."""
    from ctbench.datasets.phantom.generate import PhantomConfig, generate
    from ctbench.datasets.qa_items import load_dataset
    from ctbench.runners.run import _relative_volumes

    require_image("ctbench/chance:latest")
    qa_path = generate(tmp_path / "phantom", PhantomConfig(n_volumes=2))
    root = qa_path.parent
    (root / "answers-canary.txt").write_text("canary-7f3e9a1c5b")
    dataset = load_dataset(qa_path)
    volumes = _relative_volumes(dataset)
    assert volumes == ["volumes/phantom_000.nii.gz", "volumes/phantom_001.nii.gz"]
    endpoint = backend.start(spec_for("chance"), root, tmp_path / "run" / "logs", volumes=volumes)
    wait(backend, endpoint)
    model = backend.model_container("chance")
    listing = model.exec_run(["find", "/data", "-type", "f"]).output.decode().split()
    assert sorted(listing) == [f"/data/{v}" for v in volumes]
    needles = [b"canary-7f3e9a1c5b", (root / "qa_pairs.json").read_bytes()[:120],
               (root / "ground_truth.json").read_bytes()[:120],
               *(f'"answer": "{item.answer}"'.encode() for item in dataset.items[:3])]
    result = model.exec_run(["python3", "-c", FIND_ANSWERS, *(n.hex() for n in needles)])
    assert result.exit_code == 0, result.output.decode()
    assert b"/data" in result.output


SETUID_FILES = ["/", "-xdev", "-type", "f", "-perm", "/6000"]


def setuid_files(docker_client, image: str) -> list[str]:
    """Files with the setuid or setgid bit in `image` (found as root with the default capabilities)."""
    out = docker_client.containers.run(image, SETUID_FILES, entrypoint="find", user="0", network_mode="none", remove=True)
    return out.decode().split()


@pytest.mark.parametrize("image", ["ctbench/python:3.11", "ctbench/base:latest", "ctbench/sdk:latest", "ctbench/chance:latest",
                                   "ctbench/blind:latest", "ctbench/geometric:latest", "ctbench/gateway:latest"])
def test_images_carry_no_setuid_or_setgid_files(docker_client, require_image, image):
    require_image("ctbench/debian:bookworm")
    require_image(image)
    assert "/usr/bin/su" in setuid_files(docker_client, "ctbench/debian:bookworm"), "the check finds them where they are"
    assert setuid_files(docker_client, image) == []


def test_containers_are_hardened_on_the_real_engine(backend, require_image, docker_client, data_root, tmp_path):
    require_image("ctbench/chance:latest")
    endpoint = backend.start(spec_for("chance"), data_root, tmp_path / "logs")
    wait(backend, endpoint)
    model = backend.model_container("chance")
    gateway = docker_client.containers.get(f"{backend.prefix}-chance-gw")
    for container in (model, gateway):
        container.reload()
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges:true"] and host["Privileged"] is False
        assert host["PidsLimit"] > 0 and host["Memory"] > 0 and host["NanoCpus"] > 0
        assert host["LogConfig"]["Type"] == "json-file" and set(host["LogConfig"]["Config"]) == {"max-size", "max-file"}
        write = container.exec_run(["sh", "-c", "echo x > /etc/ctbench-probe"])
        assert write.exit_code != 0 and b"Read-only file system" in write.output
    host = model.attrs["HostConfig"]
    assert (host["PidsLimit"], host["Memory"], host["NanoCpus"]) == (256, 4 * 1024**3, 2_000_000_000)
    assert model.exec_run(["sh", "-c", "echo scratch > /tmp/x && cat /tmp/x"]).output == b"scratch\n"
    # The model still serves under all of it.
    with grpc.insecure_channel(endpoint.address) as channel:
        assert pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=10).name == "chance"


PROBE = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        print(target, "reached")
    except OSError as exc:
        print(target, "blocked", type(exc).__name__)
"""


def _addresses(container) -> dict[str, str]:
    container.reload()
    return {name: net["IPAddress"] for name, net in container.attrs["NetworkSettings"]["Networks"].items()}


def test_a_model_reaches_only_its_own_gateway(backend, require_image, docker_client, data_root, tmp_path):
    """Two models in one run: from `chance`, neither `blind` nor blind's gateway answers (by name or
    by any of their addresses); chance's own gateway does."""
    require_image("ctbench/chance:latest")
    require_image("ctbench/blind:latest")
    for name in ("chance", "blind"):
        wait(backend, backend.start(spec_for(name), data_root, tmp_path / "logs"))
    gateway = {name: docker_client.containers.get(f"{backend.prefix}-{name}-gw") for name in ("chance", "blind")}
    others = ["blind:50051", *(f"{ip}:50051" for ip in _addresses(backend.network_container("blind")).values()),
              *(f"{ip}:50051" for ip in _addresses(gateway["blind"]).values())]
    (chance_network,) = _addresses(backend.network_container("chance"))
    own = _addresses(gateway["chance"])[chance_network]
    out = backend.model_container("chance").exec_run(["python3", "-c", PROBE, f"{own}:50051", *others]).output.decode()
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert lines[f"{own}:50051"] == "reached", out
    assert all(lines[target].startswith("blocked") for target in others), out
    assert gateway["blind"].attrs["Config"]["Cmd"] == ["50051=blind:50051"], "a gateway relays for its own model only"


def test_model_reads_a_data_root_readable_by_its_group_only(backend, require_image, tmp_path):
    """Patient data as a hospital keeps it (mode 0750, files 0640, another owner and group): the
    model container reads it through the group it joins; nothing is made world-readable."""
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root to give the data root another owner")
    require_image("ctbench/chance:latest")
    root = tmp_path / "patients"
    root.mkdir()
    (root / "note.txt").write_text("group only\n")
    for path, mode in ((root / "note.txt", 0o640), (root, 0o750)):
        path.chmod(mode)
        os.chown(path, 4242, 4242)
    tmp_path.chmod(0o755)
    endpoint = backend.start(spec_for("chance"), root, tmp_path / "logs")
    wait(backend, endpoint)
    assert backend.model_container("chance").exec_run(["cat", "/data/note.txt"]).output == b"group only\n"


def test_a_run_token_is_required_by_the_model_container(docker_client, require_image, data_root, tmp_path):
    """What the runner starts refuses a call without the run's token (health stays open), and
    the token file is readable inside by the image's unprivileged user alone."""
    from ctbench.runners import channels

    require_image("ctbench/chance:latest")
    with DockerBackend(docker_client, require_token=True) as backend:
        endpoint = backend.start(spec_for("chance"), data_root, tmp_path / "logs")
        wait(backend, endpoint)
        with grpc.insecure_channel(endpoint.address) as plain:
            with pytest.raises(grpc.RpcError) as info:
                pb_grpc.AnswerVolumeQuestionStub(plain).Describe(pb.DescribeRequest(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with channels.open_channel(endpoint.address) as authorised:
            card = pb_grpc.AnswerVolumeQuestionStub(authorised).Describe(pb.DescribeRequest(), timeout=10)
        assert card.name == "chance"
        model = backend._servers["chance"]["model"]
        shown = model.exec_run(["sh", "-c", "id -u; cat /run/ctbench/server-token >/dev/null && echo readable"]).output.decode()
        assert shown.split()[0] != "0" and "readable" in shown
