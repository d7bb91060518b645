"""Conformance of a server the checker starts itself: `bench conformance --serve MODEL` (a local
`bench serve` process) or `--image IMAGE` (container.py). The backend that started it is watched,
so a server that dies is reported with its exit code and the last lines of its log."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ctbench.conformance.checks import CHECKS, run_conformance
from ctbench.conformance.report import FAIL, SKIP, CheckResult, ConformanceReport
from ctbench.conformance.session import ConformanceOptions, ServerWatch


def watch_of(backend, name: str, what: str) -> ServerWatch:
    return ServerWatch(alive=lambda: backend.is_alive(name), logs=lambda: backend.logs(name, tail=30),
                       exit_code=lambda: backend.exit_code(name), what=what)


def run_conformance_started(backend, spec, options: ConformanceOptions, label: str, what: str,
                            log_dir: Path | None = None, progress=None) -> ConformanceReport:
    """Start `spec` with `backend`, wait for health, run the checks, always stop it.

    Without `options.data_root` a fresh, world-readable temporary folder is the data root."""
    from ctbench.errors import ServerStartError
    from ctbench.runners.health import wait_until_serving

    with tempfile.TemporaryDirectory(prefix="ctbench-conformance-") as scratch:
        scratch_path = Path(scratch)
        if options.data_root is None:
            data_root = scratch_path / "data"
            data_root.mkdir()
            data_root.chmod(0o755)
            options = ConformanceOptions(**{**options.__dict__, "data_root": data_root})
        with backend:
            try:
                endpoint = backend.start(spec, Path(options.data_root), log_dir or scratch_path / "logs")
                wait_until_serving(endpoint.address, options.health_timeout_s, spec.name,
                                   lambda: backend.is_alive(spec.name), lambda: backend.logs(spec.name))
            except ServerStartError as exc:
                code = backend.exit_code(spec.name)
                return never_healthy(label, (f"exit code {code}: " if code is not None else "") + str(exc))
            report = run_conformance(endpoint.address, options, progress, watch=watch_of(backend, spec.name, what))
            report.address = f"{label} ({endpoint.address})"
            return report


def never_healthy(label: str, why: str) -> ConformanceReport:
    report = ConformanceReport(label)
    report.results.append(CheckResult("health", CHECKS["health"][0], FAIL, "", [why]))
    for name, (title, _) in list(CHECKS.items())[1:]:
        report.results.append(CheckResult(name, title, SKIP, "the server never turned healthy"))
    return report


def run_conformance_serving(model: str, args: tuple[str, ...], options: ConformanceOptions,
                            log_dir: Path | None = None, progress=None) -> ConformanceReport:
    """`bench serve MODEL ARGS...` as a local process (as `bench run --backend local` starts it)."""
    from ctbench.runners.backends.base import ServerSpec
    from ctbench.runners.backends.local import LocalProcessBackend

    backend = LocalProcessBackend(start_timeout_s=options.health_timeout_s)
    spec = ServerSpec(name=model, model=model, args=tuple(args))
    return run_conformance_started(backend, spec, options, f"bench serve {model}", "server process", log_dir, progress)
