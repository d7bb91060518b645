"""How tightly a server's container is confined: read from its compose service, hardened by default.

The registry (compose/compose.yaml) states these with compose's own keys, so `docker compose`
and the runner's docker backend apply the same settings to the same service; a service that
leaves a key out gets the default below. Always on, whatever the registry says: every
capability dropped and no-new-privileges (see `DockerBackend`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerSettings:
    read_only: bool = True  # read-only root filesystem; scratch space is the tmpfs mounts
    tmpfs: tuple[str, ...] = ("/tmp:size=1g,mode=1777",)  # compose's "PATH:OPTIONS" entries
    pids_limit: int = 256
    mem_limit: str = "4g"
    cpus: float = 2.0
    log_max_size: str = "10m"  # json-file log rotation
    log_max_file: int = 3

    @classmethod
    def from_service(cls, name: str, service: dict) -> ContainerSettings:
        """The settings of compose service `name`; keys it omits keep the hardened default.
        Raises `ValueError` naming the service on a value of the wrong kind."""
        default = cls()
        options = ((service.get("logging") or {}).get("options")) or {}
        tmpfs = service.get("tmpfs", default.tmpfs)
        try:
            return cls(
                read_only=bool(service.get("read_only", default.read_only)),
                tmpfs=(tmpfs,) if isinstance(tmpfs, str) else tuple(str(t) for t in tmpfs),
                pids_limit=int(service.get("pids_limit", default.pids_limit)),
                mem_limit=str(service.get("mem_limit", default.mem_limit)),
                cpus=float(service.get("cpus", default.cpus)),
                log_max_size=str(options.get("max-size", default.log_max_size)),
                log_max_file=int(options.get("max-file", default.log_max_file)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"service {name!r}: bad container setting: {exc}") from None

    def tmpfs_mounts(self) -> dict[str, str]:
        """{container path: mount options}, as the Docker API takes them."""
        mounts = {}
        for entry in self.tmpfs:
            path, _, options = entry.partition(":")
            mounts[path] = options
        return mounts

    def docker_kwargs(self) -> dict:
        """Keyword arguments for docker-py's `containers.create`."""
        from docker.types import LogConfig

        return {
            "read_only": self.read_only,
            "tmpfs": self.tmpfs_mounts() or None,
            "pids_limit": self.pids_limit,
            "mem_limit": self.mem_limit,
            "nano_cpus": int(self.cpus * 1e9),
            "log_config": LogConfig(type="json-file",
                                    config={"max-size": self.log_max_size, "max-file": str(self.log_max_file)}),
        }


# The gateway only relays bytes: a small share of the host is plenty.
GATEWAY_SETTINGS = ContainerSettings(tmpfs=(), pids_limit=64, mem_limit="256m", cpus=1.0)

# The network holder and the one-shot route helper run a few lines of Python.
HELPER_SETTINGS = ContainerSettings(tmpfs=(), pids_limit=16, mem_limit="64m", cpus=0.5)
