"""`bench conformance --image IMAGE`: start the image the way the runner would (internal network,
data read-only at /data, loopback gateway), check it, and tear it down."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ctbench.runners.conformance.checks import run_conformance
from ctbench.runners.conformance.report import ConformanceReport
from ctbench.runners.conformance.session import ConformanceOptions


def run_conformance_in_container(image: str, model: str, options: ConformanceOptions,
                                 gpu: bool = False, args: tuple[str, ...] = (),
                                 log_dir: Path | None = None) -> ConformanceReport:
    """Start `image` as server `model` with the docker backend, run the checks, always stop it.

    Without `options.data_root` a fresh, world-readable temporary folder is mounted at /data.
    A server that never turns healthy gives a report whose health check says why, with the
    container's last log lines."""
    from ctbench.errors import ServerStartError
    from ctbench.runners.backends.base import ServerSpec
    from ctbench.runners.backends.docker_backend import DockerBackend
    from ctbench.runners.health import wait_until_serving
    from ctbench.runners.conformance.report import FAIL, SKIP, CheckResult
    from ctbench.runners.conformance.checks import CHECKS

    with tempfile.TemporaryDirectory(prefix="ctbench-conformance-") as scratch:
        scratch_path = Path(scratch)
        data_root = options.data_root
        if data_root is None:
            data_root = scratch_path / "data"
            data_root.mkdir()
            data_root.chmod(0o755)
            options = ConformanceOptions(data_root=data_root, timeout_s=options.timeout_s,
                                         health_timeout_s=options.health_timeout_s, only=options.only)
        spec = ServerSpec(name=model, model=model, image=image, gpu=gpu, args=tuple(args))
        with DockerBackend() as backend:
            endpoint = backend.start(spec, Path(data_root), log_dir or scratch_path / "logs")
            try:
                wait_until_serving(endpoint.address, options.health_timeout_s, model,
                                   lambda: backend.is_alive(model), lambda: backend.logs(model))
            except ServerStartError as exc:
                report = ConformanceReport(f"{image} ({endpoint.address})")
                report.results.append(CheckResult("health", CHECKS["health"][0], FAIL, "", [str(exc)]))
                for name, (title, _) in list(CHECKS.items())[1:]:
                    report.results.append(CheckResult(name, title, SKIP, "the server never turned healthy"))
                return report
            report = run_conformance(endpoint.address, options)
            report.address = f"{image} ({endpoint.address})"
            return report
