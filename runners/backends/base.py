"""How the runner gets model servers running: one interface, several backends.

A backend turns a `ServerSpec` from the registry (compose/compose.yaml) into a reachable gRPC
`Endpoint` — a local process on a loopback port, a container with its port published on
127.0.0.1, or a server someone else already runs — and tears it down afterwards, whatever
happened. Waiting for gRPC health is the runner's job (runners/health.py), not the backend's.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

from ctbench.runners.backends.container_settings import ContainerSettings


@dataclass(frozen=True)
class ServerSpec:
    """One entry of the server registry."""

    name: str
    model: str  # the model-server registry name `bench serve MODEL` runs
    args: tuple[str, ...] = ()  # extra `bench serve` arguments
    image: str | None = None
    build: dict | None = None  # compose `build:` section (context, dockerfile, args)
    container_port: int = 50051
    host_port: int | None = None  # the 127.0.0.1 port compose publishes (the runner picks its own)
    gpu: bool = False
    profiles: tuple[str, ...] = ()
    environment: dict = field(default_factory=dict)
    local: bool = True  # can run as a plain local process on this host
    container: ContainerSettings = field(default_factory=ContainerSettings)  # confinement in Docker
    slurm: dict = field(default_factory=dict)  # sbatch resources (runners/backends/slurm_jobs.py)


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str  # host:port
    data_root: str | None = None  # where the server resolves by-reference paths; None: inline only
    replicas: tuple[str, ...] = ()  # host:port of each replica when several serve this server

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.replicas or (self.address,)


class Backend(abc.ABC):
    """Starts servers, reports whether they live, restarts and stops them."""

    name: str = "abstract"

    @abc.abstractmethod
    def start(self, spec: ServerSpec, data_root: Path, log_dir: Path, volumes: list[str] | None = None) -> Endpoint:
        """Start one server; return as soon as it is launched (health is awaited by the caller).

        `volumes` lists the run's volume files (relative to `data_root`); a backend that confines
        servers exposes only those to them.

        Raises `ServerStartError` (or `PortInUse`) with the server's last log lines when it
        cannot be launched."""

    def runnable(self, spec: ServerSpec) -> bool | str:
        """True if this backend can run `spec` on this host, else the reason why not."""
        return True

    @abc.abstractmethod
    def is_alive(self, name: str) -> bool: ...

    @abc.abstractmethod
    def restart(self, name: str) -> Endpoint: ...

    @abc.abstractmethod
    def logs(self, name: str, tail: int = 40) -> str: ...

    def exit_code(self, name: str) -> int | None:
        """The server's exit status once it has ended (None while it runs, or when unknown)."""
        return None

    @abc.abstractmethod
    def stop(self, name: str) -> None: ...

    def stop_all(self) -> None:
        for name in list(self.running()):
            self.stop(name)

    @abc.abstractmethod
    def running(self) -> list[str]: ...

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
