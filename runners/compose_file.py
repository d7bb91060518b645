"""The server compose file, compose/compose.yaml, read into `ServerSpec`s and checked.

The compose file is the one place a server is declared: `docker compose` reads its services;
the runner reads the same services plus their `x-ctbench` block (which model `bench serve`
runs, and whether it can run as a plain local process). The parts each server repeats (the
model name and args in `command`, its gateway's route and published port) are checked against
the `x-ctbench` block in one place, `disagreements`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ctbench import project
from ctbench.errors import ComposeFileError, UnknownName
from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.container_settings import ContainerSettings

COMPOSE_FILE_ENV = "CTBENCH_REGISTRY"
#: The port a model server and its gateway listen on inside their containers.
CONTAINER_PORT = 50051


def default_compose_file() -> Path:
    """$CTBENCH_REGISTRY, else ./compose/compose.yaml (a folder `bench init` wrote), else the
    project's own: the checkout's, or the copy an installed wheel carries."""
    if os.environ.get(COMPOSE_FILE_ENV):
        return Path(os.environ[COMPOSE_FILE_ENV])
    here = project.REGISTRY
    if here.is_file():
        return here
    return project.project_root() / project.REGISTRY


def read_compose_file(path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The file's path and its `services` mapping; `ComposeFileError` naming the file (and line)
    when it is missing, not YAML, or not shaped like a compose file."""
    if path is None:
        try:
            path = default_compose_file()
        except FileNotFoundError as exc:
            raise ComposeFileError(str(exc)) from None
    path = Path(path)
    if not path.is_file():
        raise ComposeFileError(f"server registry not found (set ${COMPOSE_FILE_ENV} or pass --registry)", path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ComposeFileError(f"malformed YAML: {exc}", path, None if line is None else line + 1) from None
    if doc is not None and not isinstance(doc, dict):
        raise ComposeFileError(f"expected a mapping with 'services', got {type(doc).__name__}", path)
    services = (doc or {}).get("services") or {}
    if not isinstance(services, dict):
        raise ComposeFileError(f"'services' must be a mapping, got {type(services).__name__}", path)
    for name, service in services.items():
        if not isinstance(service, dict):
            raise ComposeFileError(f"expected a mapping, got {type(service).__name__}", path, service=str(name))
        if not isinstance(service.get("x-ctbench") or {}, dict):
            raise ComposeFileError("'x-ctbench' must be a mapping", path, service=str(name))
    return path, services


def load_compose_file(path: str | Path | None = None) -> dict[str, ServerSpec]:
    """Every model server the compose file declares (services with an `x-ctbench.model`), by name."""
    path, services = read_compose_file(path)
    specs = {}
    for name, service in services.items():
        meta = service.get("x-ctbench") or {}
        if "model" not in meta:
            continue  # not a model server (e.g. a proxy)
        try:
            container = ContainerSettings.from_service(name, service)
        except ValueError as exc:
            raise ComposeFileError(str(exc), path) from None
        specs[name] = ServerSpec(
            name=name,
            model=str(meta["model"]),
            args=tuple(str(a) for a in meta.get("args", ())),
            image=service.get("image"),
            build=service.get("build"),
            container_port=int(meta.get("container_port", CONTAINER_PORT)),
            host_port=int(meta["host_port"]) if meta.get("host_port") else _host_port(service.get("ports") or []),
            gpu="gpu" in (service.get("profiles") or []) or bool(meta.get("gpu", False)),
            profiles=tuple(service.get("profiles") or ()),
            environment=dict(service.get("environment") or {}) if isinstance(service.get("environment"), dict) else {},
            local=bool(meta.get("local", False)),
            container=container,
            slurm=dict(meta.get("slurm") or {}),
        )
    return specs


def disagreements(services: dict[str, Any]) -> list[str]:
    """Where a model service's repeated parts disagree with its `x-ctbench` block, one line each
    (empty when all agree). For each service with an `x-ctbench.model`:

    - `command` (what `docker compose` runs), if set, is `MODEL --host 0.0.0.0 --port PORT
      --data-root /data ARGS...`, the same MODEL and ARGS the runner's backends pass;
    - its gateway `<service>-gw` exists, shares its profiles, sits on `<service>-net` and
      `<service>-edge`, routes `50051=<service>:PORT` and publishes `127.0.0.1:HOST_PORT:50051`.
    """
    problems = []
    for name, service in services.items():
        meta = service.get("x-ctbench") or {}
        if "model" not in meta:
            continue
        where = f"service {name!r}"
        port = int(meta.get("container_port", CONTAINER_PORT))
        args = [str(a) for a in meta.get("args", ())]
        if "command" in service:
            runs = [str(meta["model"]), "--host", "0.0.0.0", "--port", str(port), "--data-root", "/data", *args]
            if service["command"] != runs:
                problems.append(f"{where}: command {service['command']} is not x-ctbench's model and args {runs}")
        gateway = services.get(f"{name}-gw")
        if not isinstance(gateway, dict):
            problems.append(f"{where}: no gateway service {name}-gw")
            continue
        checks = {
            "profiles": (gateway.get("profiles"), service.get("profiles")),
            "networks": (gateway.get("networks"), [f"{name}-net", f"{name}-edge"]),
            "command": (gateway.get("command"), [f"{CONTAINER_PORT}={name}:{port}"]),
        }
        if meta.get("host_port"):
            checks["ports"] = (gateway.get("ports"), [f"127.0.0.1:{meta['host_port']}:{CONTAINER_PORT}"])
        for key, (got, expected) in checks.items():
            if got != expected:
                problems.append(f"service '{name}-gw': {key} {got} should be {expected} (from {where})")
    return problems


def _host_port(ports: list) -> int | None:
    for entry in ports:
        parts = str(entry).split(":")
        if len(parts) >= 2 and parts[-2].isdigit():
            return int(parts[-2])
    return None


def select_servers(selection: str, registry: dict[str, ServerSpec], runnable=lambda spec: True) -> tuple[list[ServerSpec], dict[str, str]]:
    """`all` (every runnable server) or `a,b`. Returns the specs and, for `all`, the servers
    skipped with the reason. Unknown names raise `UnknownName` listing what exists."""
    skipped: dict[str, str] = {}
    if selection.strip() == "all":
        chosen = []
        for spec in registry.values():
            reason = runnable(spec)
            if reason is True:
                chosen.append(spec)
            else:
                skipped[spec.name] = str(reason)
        return chosen, skipped
    names = [n.strip() for n in selection.split(",") if n.strip()]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UnknownName(f"Unknown server {unknown[0]!r}. Available: {', '.join(sorted(registry))}")
    return [registry[n] for n in names], skipped
