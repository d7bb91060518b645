"""`bench run`: stream a dataset to every selected server and keep every answer.

dataset -> (per server) backend starts it -> health -> Describe -> Answer stream -> ledger.
Servers run concurrently, each in its own thread with its own ledger. Re-running with the same
--out resumes: settled questions are skipped, so a killed server or runner loses nothing and
duplicates nothing. A server that dies is restarted (up to --restarts times) and its remaining
questions re-sent; if it stays down they are recorded as UNAVAILABLE errors, which a later
resume retries. Teardown happens whatever happens.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import grpc

from ctbench import __version__
from ctbench.datasets.manifest import dataset_manifest
from ctbench.datasets.qa_items import Dataset, QAItem, load_dataset
from ctbench.errors import CtbenchError, DatasetError, ServerStartError
from ctbench.runners.backends.base import Backend, Endpoint, ServerSpec
from ctbench.runners.client import Outcome, ServerStream, VolumeGroup, describe
from ctbench.runners.health import wait_until_serving
from ctbench.runners.ledger import Ledger, is_settled, read_ledger
from ctbench.runners.registry import load_registry, select_servers
from ctbench.runners.sharding import stream_replicas
from ctbench.runners.volume_source import VolumeSource

log = logging.getLogger("ctbench.runner")


@dataclass
class RunConfig:
    out_dir: Path
    servers: str = "all"
    dataset: str = "synthetic"
    data_root: Path | None = None
    backend: str = "auto"  # auto | local | docker | slurm
    slurm: dict[str, str] = field(default_factory=dict)  # --slurm KEY=VALUE: sbatch resources for every server
    replicas: dict[str, int] = field(default_factory=dict)  # --replicas NAME=K (slurm): K jobs share the volumes
    endpoints: dict[str, str] = field(default_factory=dict)  # name -> host:port, already running
    registry: Path | None = None
    transport: str = "auto"  # auto | inline | reference
    deadline_s: float = 600.0
    restarts: int = 1
    retry_errors: bool = False
    health_timeout_s: float = 180.0
    phantom_volumes: int = 12
    phantom_size: str = "small"
    phantom_seed: int = 0


@dataclass
class ServerResult:
    name: str
    total: int = 0
    already_done: int = 0
    ok: int = 0
    errors: int = 0
    restarts: int = 0
    seconds: float = 0.0
    failure: str = ""
    card: dict = field(default_factory=dict)


@dataclass
class RunResult:
    out_dir: Path
    backend: str
    servers: dict[str, ServerResult]
    skipped: dict[str, str]
    volume_reads: int
    n_questions: int


# --- dataset --------------------------------------------------------------------------------
def resolve_dataset(config: RunConfig) -> Dataset:
    if config.dataset == "synthetic":
        from ctbench.datasets.phantom.generate import PhantomConfig, ensure_phantom

        qa_path = ensure_phantom(
            config.out_dir / "data",
            PhantomConfig(n_volumes=config.phantom_volumes, size=config.phantom_size, seed=config.phantom_seed),
        )
        dataset = load_dataset(qa_path)
        dataset.name = "phantom"
        return dataset
    return load_dataset(config.dataset, config.data_root)


def record_dataset(dataset: Dataset, out_dir: Path) -> None:
    """Write RUN/dataset.jsonl (the denominator); refuse a run folder made for other questions."""
    lines = "".join(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in dataset.items)
    path = out_dir / "dataset.jsonl"
    if path.is_file():
        if path.read_text(encoding="utf-8") != lines:
            raise DatasetError(
                "this run folder was made for a different dataset; resume with the same dataset or use a new --out",
                path,
            )
    else:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(lines, encoding="utf-8")
        tmp.replace(path)


# --- backends -------------------------------------------------------------------------------
def choose_backend(name: str, registry: Path | None = None, slurm: dict | None = None, replicas: dict | None = None) -> tuple[Backend, str]:
    """The backend to use and a sentence saying why. Docker resolves build contexts against the
    registry file's folder."""
    from ctbench.runners.backends.local import LocalProcessBackend

    if replicas and name != "slurm":
        raise ServerStartError("--replicas needs --backend slurm")
    if name == "local":
        return LocalProcessBackend(), "local processes (--backend local)"
    if name == "slurm":
        from ctbench.runners.backends.slurm import slurm_backend

        return slurm_backend(slurm, replicas)
    compose_dir = Path(registry).resolve().parent if registry is not None else None
    try:
        from ctbench.runners.backends import docker_backend
    except ImportError:
        docker_backend = None
    if name == "docker":
        if docker_backend is None:
            raise ServerStartError("the docker backend is not installed in this build of ctbench")
        return docker_backend.DockerBackend(compose_dir=compose_dir), "Docker containers (--backend docker)"
    if docker_backend is not None:
        available, why = docker_backend.engine_available()
        if available:
            return docker_backend.DockerBackend(compose_dir=compose_dir), f"Docker containers ({why})"
        return LocalProcessBackend(), f"local processes (no Docker engine: {why})"
    return LocalProcessBackend(), "local processes"


# --- the run --------------------------------------------------------------------------------
def run_benchmark(
    config: RunConfig,
    progress: Callable[[str, int, int], None] | None = None,
    announce: Callable[[str], None] = lambda message: None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Run (or resume) a benchmark into config.out_dir. `progress(server, done, total)` is
    called as answers arrive; `announce` gets one-line status messages for the user."""
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    dataset = resolve_dataset(config)
    record_dataset(dataset, out)

    if config.endpoints:
        backend, why = None, "already-running endpoints (--endpoints)"
        specs = [ServerSpec(name=name, model=name) for name in config.endpoints]
        skipped: dict[str, str] = {}
    else:
        registry = load_registry(config.registry)
        backend, why = choose_backend(config.backend, config.registry, config.slurm, config.replicas)
        runnable = backend.runnable
        specs, skipped = select_servers(config.servers, registry, runnable)
        if config.servers.strip() != "all":
            for spec in specs:
                reason = runnable(spec)
                if reason is not True:
                    raise ServerStartError(f"server {spec.name!r} {reason}")
    announce(f"backend: {why}")
    for reason, names in _by_reason(skipped).items():
        announce(f"skipping {', '.join(names)}: {reason}")
    if not specs:
        raise ServerStartError("no server to run: none selected can run with this backend")

    source = VolumeSource()
    results = {spec.name: ServerResult(spec.name) for spec in specs}
    run_record = {
        "ctbench_version": __version__,
        "started_at": _now(),
        "dataset": {
            **{k: v for k, v in dataset_manifest(dataset).items() if k != "per_volume"},
            "data_root": str(dataset.data_root),
        },
        "backend": why,
        "servers": {},
        "skipped": skipped,
    }
    _write_json(out / "run.json", run_record)
    threads = []
    try:
        for spec in specs:
            thread = threading.Thread(
                target=_run_server,
                args=(spec, config, dataset, backend, source, results[spec.name], progress, announce, stop),
                name=f"ctbench-{spec.name}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        announce("interrupted: stopping servers; what was answered is kept, re-run to resume")
        for thread in threads:
            thread.join(15)
        raise
    finally:
        if backend is not None:
            backend.stop_all()
        run_record["finished_at"] = _now()
        run_record["volume_reads"] = source.reads
        run_record["servers"] = {name: _summary(r) for name, r in results.items()}
        _write_json(out / "run.json", run_record)
    return RunResult(out, why, results, skipped, source.reads, len(dataset.items))


def _run_server(spec, config, dataset, backend, source, result: ServerResult, progress, announce, stop) -> None:
    started = time.monotonic()
    ledger_path = config.out_dir / "predictions" / f"{spec.name}.jsonl"
    previous: dict[str, dict] = {}  # question_id -> its last record
    attempts: dict[str, int] = {}
    for record in read_ledger(ledger_path):
        qid = record.get("question_id", "")
        previous[qid] = record
        attempts[qid] = attempts.get(qid, 0) + 1
    pending = [item for item in dataset.items if not (item.question_id in previous and is_settled(previous[item.question_id], config.retry_errors))]
    result.total = len(dataset.items)
    result.already_done = result.total - len(pending)
    done = result.already_done
    if progress:
        progress(spec.name, done, result.total)
    if not pending:
        announce(f"{spec.name}: all {result.total} questions already answered (resumed)")
        return
    ledger = Ledger(ledger_path)
    lock = threading.Lock()
    settled_now: set[str] = set()

    def on_outcome(outcome: Outcome) -> None:
        nonlocal done
        item = outcome.item
        attempts[item.question_id] = attempts.get(item.question_id, 0) + 1
        settled_now.add(item.question_id)
        ledger.append(_record(item, outcome, spec.name, attempts[item.question_id]))
        with lock:
            done += 1
            if outcome.error is None:
                result.ok += 1
            else:
                result.errors += 1
        if progress:
            progress(spec.name, done, result.total)

    def record_all(items: list[QAItem], code: str, type_name: str, message: str) -> None:
        for item in items:
            on_outcome(Outcome(item, "", {"code": code, "type": type_name, "message": message}))

    try:
        endpoint = _start(spec, config, dataset, backend, result)
        remaining = pending

        def make_stream(address: str) -> ServerStream:  # one per replica of the current endpoint
            return ServerStream(
                address, source, on_outcome,
                use_reference=_use_reference(config, endpoint, result.card),
                window=min(max(2 * int(result.card.get("max_batch_size", 1) or 1), 4), 128),
                deadline_s=config.deadline_s, stop=stop,
            )

        while remaining and not stop.is_set():
            remaining = stream_replicas(endpoint.addresses, _groups(remaining, dataset), make_stream, spec.name)
            if not remaining or stop.is_set():
                break
            died = backend is not None and _exits_within(backend, spec.name, 3.0)
            what = "died" if died else "broke the stream"
            if backend is None or result.restarts >= config.restarts:
                tail = backend.logs(spec.name) if backend is not None else ""
                result.failure = f"server {what}; {len(remaining)} questions not answered"
                announce(f"{spec.name}: {result.failure}" + (f"\n{tail}" if tail else ""))
                record_all(remaining, "UNAVAILABLE", "ServerUnavailable", f"server {spec.name} {what} before answering; re-run to retry")
                remaining = []
                break
            result.restarts += 1
            announce(f"{spec.name}: server {what}; restarting ({result.restarts}/{config.restarts}), {len(remaining)} questions left")
            endpoint = backend.restart(spec.name)
            for address in endpoint.addresses:
                wait_until_serving(address, config.health_timeout_s, spec.name, lambda: backend.is_alive(spec.name), lambda: backend.logs(spec.name))
    except CtbenchError as exc:
        result.failure = str(exc)
        announce(f"{spec.name}: {exc}")
        record_all([item for item in pending if item.question_id not in settled_now], exc.code, exc.type_name, str(exc).splitlines()[0])
    except Exception as exc:  # untyped: a bug; say so (exit 2) and leave the questions to a resume
        log.exception("%s: unexpected error", spec.name)
        result.failure = f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        announce(f"{spec.name}: {result.failure}")
    finally:
        ledger.close()
        if backend is not None and spec.name in backend.running():
            backend.stop(spec.name)
        result.seconds = time.monotonic() - started


def _by_reason(skipped: dict[str, str]) -> dict[str, list[str]]:
    """One line per reason: eight VLMs that all need a GPU are one line, not eight."""
    out: dict[str, list[str]] = {}
    for name, reason in skipped.items():
        out.setdefault(reason, []).append(name)
    return out


def _exits_within(backend: Backend, name: str, seconds: float) -> bool:
    """Whether the server's process is gone (a broken stream usually means it died; give the
    kernel a moment to reap it before saying so)."""
    deadline = time.monotonic() + seconds
    while backend.is_alive(name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _start(spec, config, dataset, backend, result: ServerResult) -> Endpoint:
    if backend is None:
        endpoint = Endpoint(spec.name, config.endpoints[spec.name], data_root=None)
        wait_until_serving(endpoint.address, config.health_timeout_s, spec.name)
    else:
        endpoint = backend.start(spec, dataset.data_root, config.out_dir / "logs")
        for address in endpoint.addresses:
            wait_until_serving(address, config.health_timeout_s, spec.name, lambda: backend.is_alive(spec.name), lambda: backend.logs(spec.name))
    try:
        result.card = describe(endpoint.address)
    except grpc.RpcError as exc:
        raise ServerStartError(f"server {spec.name!r} is healthy but Describe failed: {exc.code().name} {exc.details()}") from None
    return endpoint


def _use_reference(config: RunConfig, endpoint: Endpoint, card: dict) -> bool:
    if config.transport == "inline":
        return False
    supports = "VOLUME_TRANSPORT_REFERENCE" in card.get("transports", [])
    if config.transport == "reference":
        if not supports or endpoint.data_root is None:
            raise ServerStartError(f"server {endpoint.name!r} does not accept volumes by reference")
        return True
    return supports and endpoint.data_root is not None


def _groups(items: list[QAItem], dataset: Dataset) -> list[VolumeGroup]:
    groups: dict[str, VolumeGroup] = {}
    root = dataset.data_root.resolve()
    for item in items:
        group = groups.get(item.image_path)
        if group is None:
            path = dataset.volume_path(item.image_path).resolve()
            relative = str(path.relative_to(root)) if path.is_relative_to(root) else None
            group = groups[item.image_path] = VolumeGroup(path, relative, [])
        group.items.append(item)
    return list(groups.values())


def _record(item: QAItem, outcome: Outcome, server: str, attempt: int) -> dict:
    return {
        "question_id": item.question_id,
        "case_id": item.case_id,
        "image_path": item.image_path,
        "question": item.question,
        "answer": item.answer,
        "prediction": outcome.prediction,
        "status": "ok" if outcome.error is None else "error",
        "error": outcome.error,
        "timings": outcome.timings,
        "server": server,
        "model_version": outcome.model_version,
        "options": list(item.options),
        "question_type": item.question_type,
        "categories": list(item.categories),
        "attempt": attempt,
    }


def _summary(result: ServerResult) -> dict:
    return {
        "total": result.total, "already_done": result.already_done, "ok": result.ok, "errors": result.errors,
        "restarts": result.restarts, "seconds": round(result.seconds, 3), "failure": result.failure, "card": result.card,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
