"""`bench conformance --image IMAGE`: start the image the way the runner would (internal network,
data read-only at /data, loopback gateway), check it, and tear it down."""
from __future__ import annotations

from pathlib import Path

from ctbench.conformance.report import ConformanceReport
from ctbench.conformance.session import ConformanceOptions
from ctbench.conformance.started_server import run_conformance_started


def run_conformance_in_container(image: str, model: str, options: ConformanceOptions,
                                 gpu: bool = False, args: tuple[str, ...] = (),
                                 log_dir: Path | None = None, progress=None) -> ConformanceReport:
    """Start `image` as server `model` with the docker backend, run the checks, always stop it.

    Without `options.data_root` a fresh, world-readable temporary folder is mounted at /data.
    A server that never turns healthy, or dies during a check, is reported with the
    container's last log lines."""
    from ctbench.runners.backends.base import ServerSpec
    from ctbench.runners.backends.docker_backend import DockerBackend

    spec = ServerSpec(name=model, model=model, image=image, gpu=gpu, args=tuple(args))
    return run_conformance_started(DockerBackend(), spec, options, image, "container", log_dir, progress)
