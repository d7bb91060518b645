"""The docker backend: each model server in its own container, reached on a 127.0.0.1 port.

Per server it runs three containers (names `<project>-<run>-<server>`, `...-net`, `...-gw`):

- a network holder (`-net`, an idle process): the network namespace of the model, on the
  server's own internal network (`<project>-<run>-<server>-models`, nobody else on it but the
  gateway) under the server's name. Before the model starts, a one-shot helper with
  CAP_NET_ADMIN (runners/backends/drop_routes.py) deletes that namespace's default routes:
  the model can then reach only its own subnet, whatever Docker's iptables chains say;
- the model container, in the holder's namespace (`network_mode: container:`), with a view
  holding only the run's volumes (runners/backends/volume_view.py) mounted read-only at /data —
  never the dataset file or anything else from the data root — and GPU device requests when the
  registry asks for one;
- a gateway (dockerfiles/gateway/forward.py) on that network and on the server's own edge
  network (`-edge`, without masquerading), relaying to that one model from a free 127.0.0.1 port
  the backend picks itself (never a fixed one: another process may hold it). Its default routes
  are deleted the same way after it starts, and it listens only once they are gone: it reaches
  only its model and the host's end of its edge bridge (which the engine's port proxy connects
  from), and a LAN neighbour that routes the edge subnet through the host gets no answer back.

Both are hardened: every capability dropped, no-new-privileges, and the registry's container
settings (runners/backends/container_settings.py: read-only root with tmpfs scratch, pids,
memory and CPU limits, rotated logs).

Images are built from the registry's `build:` section when missing. Waiting for gRPC health is
the runner's job; `stop()` keeps each container's full log in the run's log folder, and every
start failure carries the container's last log lines.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import threading
from pathlib import Path

from ctbench.errors import PortInUse, ServerStartError
from ctbench.model_servers.sdk.auth import TOKEN_FILE_ENV, write_token_file
from ctbench.runners import channels
from ctbench.runners.backends.base import Backend, Endpoint, ServerSpec
from ctbench.runners.backends.container_settings import GATEWAY_SETTINGS, HELPER_SETTINGS
from ctbench.runners.backends.volume_view import VolumeView, build_volume_view

log = logging.getLogger(__name__)

GATEWAY_IMAGE = "ctbench/gateway:latest"
GATEWAY_BUILD = {"context": "..", "dockerfile": "dockerfiles/gateway.Dockerfile"}
DATA_MOUNT = "/data"
WEIGHTS_MOUNT = "/weights"
TOKEN_MOUNT = "/run/ctbench/server-token"
TOKEN_GID = 51051  # the group a model container joins to read its token file, and nothing else
LABEL = "org.ctbench"
PING_TIMEOUT_S = 5
STOP_GRACE_S = 5  # SIGTERM, then SIGKILL after this long
PORT_ATTEMPTS = 5  # a free port can be taken between choosing it and the engine binding it
HOST_CA_BUNDLE = Path(os.environ.get("HOST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
DROP_ROUTES = Path(__file__).with_name("drop_routes.py")
HELPER_TIMEOUT_S = 60
# The holder's only job is to keep a network namespace alive; it ends cleanly on SIGTERM.
HOLDER_COMMAND = ["-c", "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); signal.pause()"]


class DockerUnavailable(ServerStartError):
    """No Docker engine answers, or it refuses us."""


class ImageBuildError(ServerStartError):
    """An image could not be built; the message carries the build's last lines."""


def _client(timeout: int = PING_TIMEOUT_S):
    import docker

    return docker.from_env(timeout=timeout)


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def engine_available() -> tuple[bool, str]:
    """Whether a Docker engine answers here, and a sentence saying which (or why not).

    `bench run` calls this to pick the docker backend over the local-process one."""
    where = _engine_address()
    try:
        import docker  # noqa: F401
    except ImportError:
        return False, "the Python 'docker' package is not installed"
    try:
        client = _client()
        client.ping()
        version = client.version().get("Version", "?")
        client.close()
    except Exception as exc:
        return False, f"no usable Docker engine at {where}: {_reason(exc)}"
    return True, f"Docker engine {version} at {where}"


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "Permission denied" in str(exc):
        return "permission denied on the engine socket"
    if "FileNotFoundError" in str(exc) or "No such file" in str(exc) or "Connection refused" in str(exc):
        return "nothing listens there"
    return first[:300]


@contextlib.contextmanager
def build_secrets(context: Path):
    """Put the host's CA bundle where the Dockerfiles' builder stages look for it, for the length
    of one build (pip behind a TLS-intercepting proxy), then remove it."""
    folder = context / "dockerfiles" / "build-secrets"
    target = folder / "ca-certificates.crt"
    placed = folder.is_dir() and HOST_CA_BUNDLE.is_file() and not target.exists()
    if placed:
        shutil.copyfile(HOST_CA_BUNDLE, target)
    try:
        yield
    finally:
        if placed:
            target.unlink(missing_ok=True)


def host_has_gpu() -> bool:
    """An NVIDIA GPU on the engine's host (assumed for a remote engine: it is its host's call)."""
    if not _engine_address().startswith("unix://"):
        return True
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


def runnable_here(spec: ServerSpec) -> bool | str:
    """True, or the reason `spec` cannot run in a container on this host."""
    if not spec.image:
        return "has no image in the registry"
    if spec.gpu and not host_has_gpu():
        return "needs a GPU; this host has none (no /dev/nvidiactl, no nvidia-smi)"
    return True


CONTAINER_UID = 10001  # the non-root user of dockerfiles/base.Dockerfile


def check_readable_by_containers(data_root: Path) -> list[int]:
    """The supplementary groups the containers need to read `data_root` as it is.

    Containers run as uid 10001. A data root owned by that uid, or readable and searchable by
    everyone, needs none; one its group may read and search (say 0750, owned by another user)
    needs that group, which the model container then joins (`group_add`), so patient data never
    has to be made world-readable. Anything else fails inside the container with a confusing
    error: refuse it up front, saying what would do."""
    try:
        st = data_root.stat()
    except OSError as exc:
        raise ServerStartError(f"data root {data_root} cannot be read: {exc}") from None
    if st.st_uid == CONTAINER_UID or (st.st_mode & 0o005) == 0o005:
        return []
    if (st.st_mode & 0o050) == 0o050:
        return [st.st_gid]
    raise ServerStartError(
        f"data root {data_root} (mode {st.st_mode & 0o777:o}, uid {st.st_uid}, gid {st.st_gid}) is not "
        f"readable by the containers' user (uid {CONTAINER_UID}): give its group read and search "
        f"(chmod g+rx, and g+r on its files; the model container joins gid {st.st_gid}), or chown it "
        f"to uid {CONTAINER_UID}"
    )


def _port_taken(message: str) -> bool:
    return "port is already allocated" in message or "address already in use" in message


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DockerBackend(Backend):
    """Runs registry servers as containers. Use as a context manager: teardown is certain."""

    name = "docker"

    def __init__(
        self,
        client=None,
        *,
        project: str = "ctbench",
        run_id: str | None = None,
        compose_dir: Path | None = None,
        build: bool = True,
        gateway_image: str = GATEWAY_IMAGE,
        block_host_access: bool | None = None,
        weights_root: Path | None = None,
        require_token: bool = False,
    ):
        if client is None:
            ok, why = engine_available()
            if not ok:
                raise DockerUnavailable(
                    f"{why}. Start one (scripts/docker/engine.sh start) or use --backend local."
                )
            client = _client(timeout=120)
        self.client = client
        self.project = project
        self.run_id = run_id or secrets.token_hex(3)
        # `require_token`: the models require a per-run secret on every call but health (what the
        # runner asks for, as for local processes); see `_token_mount`.
        self._token = secrets.token_urlsafe(32) if require_token else None
        if compose_dir is None:  # build contexts are relative to the registry file's folder
            from ctbench.runners.compose_file import default_compose_file

            compose_dir = default_compose_file().resolve().parent
        self.compose_dir = Path(compose_dir)
        self.build = build
        self.gateway_image = gateway_image
        if block_host_access is None:
            block_host_access = os.environ.get("CTBENCH_BLOCK_HOST_ACCESS", "") == "1"
        self.block_host_access = block_host_access
        self._host_rules: dict[str, list[str]] = {}  # network key -> its iptables rule
        # <weights_root>/<server> mounts read-only at /weights, as compose does.
        if weights_root is None and os.environ.get("CTBENCH_WEIGHTS_ROOT"):
            weights_root = Path(os.environ["CTBENCH_WEIGHTS_ROOT"])
        self.weights_root = Path(weights_root) if weights_root is not None else None
        self.prefix = f"{project}-{self.run_id}"
        self._servers: dict[str, dict] = {}  # name -> {spec, model, gateway, endpoint, log_dir}
        self._networks: dict[str, object] = {}  # "<server>-models" and "<server>-edge" per server
        self._view: VolumeView | None = None  # one per run: the run's volumes, shared read-only
        # The runner starts servers from several threads: one lock for networks and the server
        # table, one per image so two servers never build the same image at once.
        self._lock = threading.RLock()
        self._image_locks: dict[str, threading.Lock] = {}

    def runnable(self, spec: ServerSpec) -> bool | str:
        """True if this backend can run `spec` here, else why not (for `--servers all`)."""
        return runnable_here(spec)

    # ---- images -------------------------------------------------------------------------
    def ensure_image(self, image: str, build: dict | None) -> None:
        """Use `image` if the engine has it; otherwise build it from the compose `build:`."""
        with self._lock:
            image_lock = self._image_locks.setdefault(image, threading.Lock())
        with image_lock:
            self._ensure_image(image, build)

    def _ensure_image(self, image: str, build: dict | None) -> None:
        import docker

        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        if not build or not self.build:
            raise ServerStartError(
                f"image {image} is not present and the registry gives no build section: build it "
                f"(scripts/docker/build-images.sh) or load it (docker load) first"
            )
        context = (self.compose_dir / build.get("context", ".")).resolve()
        dockerfile = build.get("dockerfile", "Dockerfile")
        log.info("building %s from %s (%s)", image, context, dockerfile)
        lines: list[str] = []
        try:
            with build_secrets(context):
                for chunk in self.client.api.build(
                    path=str(context),
                    dockerfile=dockerfile,
                    tag=image,
                    buildargs={k: str(v) for k, v in (build.get("args") or {}).items()},
                    rm=True,
                    forcerm=True,  # a failed step's container goes too
                    decode=True,
                ):
                    if "stream" in chunk:
                        lines.extend(chunk["stream"].rstrip("\n").splitlines())
                    if "error" in chunk:
                        tail = "\n".join(lines[-20:] + [chunk["error"].strip()])
                        hint = ""
                        if any(m in chunk["error"] for m in ("pull access denied", "not found", "registry", "dial tcp")):
                            hint = ("\n(a FROM image is neither here nor reachable: build the ctbench bases with "
                                    "scripts/docker/build-images.sh, or `docker load` the image)")
                        raise ImageBuildError(f"building {image} from {context / dockerfile} failed:\n{tail}{hint}")
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"building {image} from {context / dockerfile} failed: {exc.explanation or exc}") from exc

    # ---- networks -----------------------------------------------------------------------
    def _edge_network(self, server: str):
        """`server`'s gateway's own edge network: reachable through the published port, no
        masquerading out, nobody else on it."""
        return self._network(f"{server}-edge", internal=False,
                             options={"com.docker.network.bridge.enable_ip_masquerade": "false"})

    def _models_network(self, server: str):
        """`server`'s own internal network: its model container and its gateway, nothing else."""
        return self._network(f"{server}-models", internal=True)

    def _network(self, key: str, internal: bool, options: dict | None = None):
        with self._lock:
            if key in self._networks:
                return self._networks[key]
            network = self.client.networks.create(
                f"{self.prefix}-{key}",
                driver="bridge",
                internal=internal,
                options=options or {},
                labels={f"{LABEL}.project": self.project, f"{LABEL}.run": self.run_id},
            )
            self._networks[key] = network
            if self.block_host_access:
                self._block_host_access(key, network)
            return network

    def _block_host_access(self, key: str, network) -> None:
        """Drop new connections from a models or edge network to the host itself (services bound
        to 0.0.0.0 on the host are otherwise reachable through the bridge; the engine's port proxy
        connects the other way, so the gateway still answers it). Needs root, iptables,
        and an engine on this host; refuses to start otherwise rather than isolate less."""
        import subprocess

        if os.geteuid() != 0 or shutil.which("iptables") is None or not _engine_address().startswith("unix://"):
            raise ServerStartError(
                "CTBENCH_BLOCK_HOST_ACCESS=1 needs root, iptables and a local engine (unix socket)"
            )
        rule = ["INPUT", "-i", f"br-{network.id[:12]}", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]
        result = subprocess.run(["iptables", "-I", *rule], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise ServerStartError(f"could not add the host-access rule: {result.stderr.strip()}")
        self._host_rules[key] = rule

    # ---- Backend --------------------------------------------------------------------------
    def start(self, spec: ServerSpec, data_root: Path, log_dir: Path, volumes: list[str] | None = None) -> Endpoint:
        """Start `spec`'s container and its gateway. With `volumes` (paths relative to
        `data_root`: what the runner passes) the container's /data holds only those files;
        without, the whole `data_root` (for callers that stage files there while the server runs,
        such as the conformance kit)."""
        import docker

        with self._lock:
            if spec.name in self._servers:
                raise ServerStartError(f"server {spec.name} is already running in this run")
        reason = runnable_here(spec)
        if reason is not True:
            raise ServerStartError(f"server {spec.name} {reason}")
        entry_groups = check_readable_by_containers(Path(data_root))
        self.ensure_image(spec.image, spec.build)
        self.ensure_image(self.gateway_image, GATEWAY_BUILD)
        models, edge = self._models_network(spec.name), self._edge_network(spec.name)
        labels = {f"{LABEL}.project": self.project, f"{LABEL}.run": self.run_id, f"{LABEL}.server": spec.name}
        entry: dict = {"spec": spec, "log_dir": Path(log_dir), "data_root": Path(data_root),
                       "groups": entry_groups}
        with self._lock:
            self._servers[spec.name] = entry
        host_port = 0
        try:
            mounts = self._data_mounts(Path(data_root), volumes, Path(log_dir).parent)
            self._run_holder(entry, spec, models, labels)
            self._run_model(entry, spec, mounts, labels)
            host_port = self._run_gateway_on_a_free_port(entry, spec, models, edge, labels)
        except docker.errors.APIError as exc:
            message = exc.explanation or str(exc)
            tail = self.logs(spec.name)
            self.stop(spec.name)
            if _port_taken(message):
                raise PortInUse(
                    f"{spec.name}: no free 127.0.0.1 port after {PORT_ATTEMPTS} tries (last {host_port}): {message}"
                ) from exc
            raise ServerStartError(f"{spec.name}: the engine refused to start it: {message}\n{tail}") from exc
        except Exception:
            self.stop(spec.name)
            raise
        entry["endpoint"] = Endpoint(spec.name, f"127.0.0.1:{host_port}", data_root=DATA_MOUNT)
        if self._token is not None:
            channels.register_token(entry["endpoint"].address, self._token)
        return entry["endpoint"]

    def _token_mount(self, folder: Path) -> dict:
        """The run's token as a read-only file for one model container. The folder is the
        runner's alone (0700); the file is readable by its owner and by TOKEN_GID, a group the
        container joins (`group_add`), so any unprivileged image user reads it and no one else."""
        path = write_token_file(folder, self._token)
        os.chown(path, -1, TOKEN_GID)
        os.chmod(path, 0o440)
        return {str(path.resolve()): {"bind": TOKEN_MOUNT, "mode": "ro"}}

    def _data_mounts(self, data_root: Path, volumes: list[str] | None, run_folder: Path) -> dict:
        """The read-only mounts that make up a model container's /data."""
        if volumes is None:
            return {str(data_root.resolve()): {"bind": DATA_MOUNT, "mode": "ro"}}
        with self._lock:
            if self._view is None:
                self._view = build_volume_view(data_root, volumes, run_folder)
                if self._view.bind:
                    log.info("%d volume(s) could not be hard-linked into %s; bind-mounting them one by one",
                             len(self._view.bind), self._view.folder)
            view = self._view
        mounts = {str(view.folder): {"bind": DATA_MOUNT, "mode": "ro"}}
        for relative, source in view.bind.items():
            mounts[str(source)] = {"bind": f"{DATA_MOUNT}/{relative}", "mode": "ro"}
        return mounts

    def _run_gateway_on_a_free_port(self, entry: dict, spec: ServerSpec, models, edge, labels: dict) -> int:
        """Publish the gateway on a free loopback port; if another process takes the port before
        the engine binds it, try another."""
        import docker

        attempt = 1
        while True:
            host_port = free_loopback_port()
            try:
                self._run_gateway(entry, spec, host_port, models, edge, labels)
                return host_port
            except docker.errors.APIError as exc:
                if attempt == PORT_ATTEMPTS or not _port_taken(exc.explanation or str(exc)):
                    raise
                log.info("%s: 127.0.0.1:%d was taken meanwhile; trying another port", spec.name, host_port)
                entry.pop("gateway").remove(force=True)
                attempt += 1

    def _run_holder(self, entry: dict, spec: ServerSpec, models, labels: dict) -> None:
        """The model's network namespace: on its models network under the server's name, its
        default routes deleted before the model ever runs in it."""
        import docker

        container = self.client.containers.create(
            self.gateway_image,
            entrypoint=["python3"],
            command=HOLDER_COMMAND,
            name=f"{self.prefix}-{spec.name}-net",
            hostname=spec.name,
            user="65534:65534",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            **HELPER_SETTINGS.docker_kwargs(),
            labels={**labels, f"{LABEL}.role": "network"},
            network=models.name,
            # An alias on the internal network: the gateway finds the server by its registry name.
            networking_config={
                models.name: docker.types.EndpointConfig(self.client.api._version, aliases=[spec.name])
            },
        )
        entry["holder"] = container  # recorded before start: stop() removes it even if start fails
        container.start()
        self._drop_default_routes(container, labels)

    def _drop_default_routes(self, container, labels: dict) -> None:
        """Delete every default route of `container`'s network namespace (drop_routes.py, in a
        one-shot helper that joins it with CAP_NET_ADMIN and nothing else); raise if any is left."""
        helper = self.client.containers.create(
            self.gateway_image,
            entrypoint=["python3"],
            command=["-c", DROP_ROUTES.read_text(encoding="utf-8")],
            name=f"{container.name}-route",
            user="0:0",  # capabilities apply to root only; no-new-privileges, nothing else granted
            network_mode=f"container:{container.id}",
            cap_drop=["ALL"],
            cap_add=["NET_ADMIN"],
            security_opt=["no-new-privileges:true"],
            **HELPER_SETTINGS.docker_kwargs(),
            labels={**labels, f"{LABEL}.role": "route-helper"},
        )
        try:
            helper.start()
            status = helper.wait(timeout=HELPER_TIMEOUT_S)
            output = helper.logs().decode("utf-8", "replace").strip()
        finally:
            helper.remove(force=True)
        if status.get("StatusCode") != 0:
            raise ServerStartError(
                f"could not delete the default routes of {container.name} "
                f"(exit {status.get('StatusCode')}): {output}"
            )

    def _run_model(self, entry: dict, spec: ServerSpec, mounts: dict, labels: dict) -> None:
        import docker

        # Images build on dockerfiles/base.Dockerfile, whose entrypoint is `bench serve`: the
        # registry, not the image's default CMD, says which model and arguments run.
        command = [spec.model, "--host", "0.0.0.0", "--port", str(spec.container_port),
                   "--data-root", DATA_MOUNT, *spec.args]
        device_requests = []
        if spec.gpu:
            device_requests = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        volumes = dict(mounts)
        if self.weights_root is not None and (self.weights_root / spec.name).is_dir():
            volumes[str((self.weights_root / spec.name).resolve())] = {"bind": WEIGHTS_MOUNT, "mode": "ro"}
        environment = dict(spec.environment)
        groups = [str(g) for g in entry["groups"]]
        if self._token is not None:
            volumes.update(self._token_mount(entry["log_dir"].parent / "secrets" / spec.name))
            environment[TOKEN_FILE_ENV] = TOKEN_MOUNT
            groups.append(str(TOKEN_GID))
        container = self.client.containers.create(
            spec.image,
            command=command,
            name=f"{self.prefix}-{spec.name}",
            environment=environment,
            volumes=volumes,
            group_add=groups or None,  # reads a group-only data root, and the token
            device_requests=device_requests or None,
            shm_size="2g" if spec.gpu else None,  # data loaders in GPU stacks use shared memory
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            **spec.container.docker_kwargs(),
            labels={**labels, f"{LABEL}.role": "model"},
            # The holder's namespace: no default route, reached by the server's name.
            network_mode=f"container:{entry['holder'].id}",
        )
        entry["model"] = container  # recorded before start: stop() removes it even if start fails
        container.start()

    def _run_gateway(self, entry: dict, spec: ServerSpec, host_port: int, models, edge, labels: dict) -> None:
        container = self.client.containers.create(
            self.gateway_image,
            command=[f"{spec.container_port}={spec.name}:{spec.container_port}"],
            name=f"{self.prefix}-{spec.name}-gw",
            # It listens only once the helper below has deleted its default routes.
            environment={"CTBENCH_GATEWAY_AWAIT_NO_ROUTE": str(HELPER_TIMEOUT_S)},
            ports={f"{spec.container_port}/tcp": ("127.0.0.1", host_port)},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            **GATEWAY_SETTINGS.docker_kwargs(),
            labels={**labels, f"{LABEL}.role": "gateway"},
            network=edge.name,
        )
        entry["gateway"] = container
        models.connect(container)
        container.start()
        self._drop_default_routes(container, labels)

    def is_alive(self, name: str) -> bool:
        entry = self._servers.get(name)
        if not entry or "model" not in entry:
            return False
        try:
            for key in ("holder", "model", "gateway"):
                if key in entry:
                    entry[key].reload()
                    if entry[key].status != "running":
                        return False
        except Exception:
            return False
        return True

    def exit_code(self, name: str) -> int | None:
        """The model container's exit code once it has exited (None while it runs or when unknown)."""
        entry = self._servers.get(name)
        if not entry or "model" not in entry:
            return None
        try:
            entry["model"].reload()
        except Exception:
            return None
        state = entry["model"].attrs.get("State", {})
        code = state.get("ExitCode")
        return int(code) if state.get("Status") == "exited" and code is not None else None

    def exit_status(self, name: str) -> str:
        """The model container's state in words, e.g. 'exited with code 2' or 'running'."""
        entry = self._servers.get(name)
        if not entry or "model" not in entry:
            return "not started"
        try:
            entry["model"].reload()
        except Exception:
            return "removed"
        state = entry["model"].attrs.get("State", {})
        if state.get("Status") == "exited":
            extra = " (killed: out of memory)" if state.get("OOMKilled") else ""
            return f"exited with code {state.get('ExitCode')}{extra}"
        return state.get("Status", "unknown")

    def restart(self, name: str) -> Endpoint:
        entry = self._servers.get(name)
        if not entry:
            raise ServerStartError(f"server {name} was never started in this run")
        self._save_logs(name, suffix=".before-restart")
        labels = entry["model"].labels
        entry["holder"].reload()
        if entry["holder"].status != "running":  # a new namespace: its routes go again
            entry["holder"].start()
            self._drop_default_routes(entry["holder"], labels)
        entry["model"].restart(timeout=10)
        if "gateway" in entry:
            entry["gateway"].reload()
            if entry["gateway"].status != "running":
                entry["gateway"].start()
                self._drop_default_routes(entry["gateway"], labels)
        return entry["endpoint"]

    def logs(self, name: str, tail: int = 40) -> str:
        entry = self._servers.get(name)
        if not entry or "model" not in entry:
            return ""
        try:
            return entry["model"].logs(tail=tail).decode("utf-8", "replace")
        except Exception as exc:
            return f"(no logs: {exc})"

    def _save_logs(self, name: str, suffix: str = "") -> None:
        entry = self._servers.get(name)
        if not entry:
            return
        entry["log_dir"].mkdir(parents=True, exist_ok=True)
        for key, stem in (("model", name), ("gateway", f"{name}.gateway")):
            if key in entry:
                try:
                    text = entry[key].logs().decode("utf-8", "replace")
                except Exception:
                    continue
                with open(entry["log_dir"] / f"{stem}.docker{suffix}.log", "a", encoding="utf-8") as out:
                    out.write(text)

    def stop(self, name: str) -> None:
        entry = self._servers.get(name)
        if not entry:
            return
        status = self.exit_status(name)
        if status.startswith("exited") and "code 0" not in status:
            log.warning("%s %s; last log lines:\n%s", name, status, self.logs(name, tail=20))
        elif status == "running":
            try:  # SIGTERM first: the server drains its streams (the SDK's graceful shutdown)
                entry["model"].stop(timeout=STOP_GRACE_S)
            except Exception as exc:
                log.debug("stopping %s: %s", name, exc)
        self._save_logs(name)
        for key in ("gateway", "model", "holder"):
            if key in entry:
                try:
                    entry[key].remove(force=True)
                except Exception as exc:
                    log.debug("removing %s %s: %s", key, name, exc)
        if "endpoint" in entry and self._token is not None:
            channels.forget_token(entry["endpoint"].address)
        with self._lock:
            self._servers.pop(name, None)
            self._remove_network(f"{name}-models")
            self._remove_network(f"{name}-edge")
            if not self._servers:
                self._remove_networks()

    def _remove_network(self, key: str) -> None:
        import subprocess

        with self._lock:
            rule = self._host_rules.pop(key, None)
            if rule is not None:
                subprocess.run(["iptables", "-D", *rule], capture_output=True, timeout=30)
            network = self._networks.pop(key, None)
            if network is not None:
                try:
                    network.remove()
                except Exception as exc:
                    log.debug("removing network %s: %s", key, exc)

    def _remove_networks(self) -> None:
        with self._lock:
            for key in list(self._networks):
                self._remove_network(key)
            if self._view is not None:
                self._view.remove()
                self._view = None

    def running(self) -> list[str]:
        with self._lock:
            return list(self._servers)

    def stop_all(self) -> None:
        super().stop_all()
        self._remove_networks()

    def model_container(self, name: str):
        """The model container object (tests and fault injection use it)."""
        return self._servers[name]["model"]

    def network_container(self, name: str):
        """The container holding the model's network namespace: its addresses are the model's."""
        return self._servers[name]["holder"]


def remove_leftovers(client=None, project: str = "ctbench") -> int:
    """Remove containers and networks a crashed run left behind; returns how many."""
    client = client or _client()
    label = f"{LABEL}.project={project}"
    removed = 0
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
        removed += 1
    for network in client.networks.list(filters={"label": label}):
        network.remove()
        removed += 1
    return removed
