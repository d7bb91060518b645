"""The server registry: compose/compose.yaml, read into `ServerSpec`s.

The compose file is the one place a server is declared: `docker compose` reads its services;
the runner reads the same services plus their `x-ctbench` block (which model `bench serve`
runs, and whether it can run as a plain local process).
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from ctbench import project
from ctbench.errors import DatasetError, UnknownName
from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.container_settings import ContainerSettings

REGISTRY_ENV = "CTBENCH_REGISTRY"


def default_registry_path() -> Path:
    """$CTBENCH_REGISTRY, else ./compose/compose.yaml (a folder `bench init` wrote), else the
    project's own: the checkout's, or the copy an installed wheel carries."""
    if os.environ.get(REGISTRY_ENV):
        return Path(os.environ[REGISTRY_ENV])
    here = project.REGISTRY
    if here.is_file():
        return here
    return project.project_root() / project.REGISTRY


def load_registry(path: str | Path | None = None) -> dict[str, ServerSpec]:
    if path is None:
        try:
            path = default_registry_path()
        except FileNotFoundError as exc:
            raise DatasetError(str(exc)) from None
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"server registry not found (set ${REGISTRY_ENV} or pass --registry)", path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise DatasetError(f"malformed YAML: {exc}", path, None if line is None else line + 1) from None
    services = (doc or {}).get("services") or {}
    specs = {}
    for name, service in services.items():
        meta = service.get("x-ctbench") or {}
        if "model" not in meta:
            continue  # not a model server (e.g. a proxy)
        try:
            container = ContainerSettings.from_service(name, service)
        except ValueError as exc:
            raise DatasetError(str(exc), path) from None
        specs[name] = ServerSpec(
            name=name,
            model=str(meta["model"]),
            args=tuple(str(a) for a in meta.get("args", ())),
            image=service.get("image"),
            build=service.get("build"),
            container_port=int(meta.get("container_port", 50051)),
            host_port=int(meta["host_port"]) if meta.get("host_port") else _host_port(service.get("ports") or []),
            gpu="gpu" in (service.get("profiles") or []) or bool(meta.get("gpu", False)),
            profiles=tuple(service.get("profiles") or ()),
            environment=dict(service.get("environment") or {}) if isinstance(service.get("environment"), dict) else {},
            local=bool(meta.get("local", False)),
            container=container,
            slurm=dict(meta.get("slurm") or {}),
        )
    return specs


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
