"""`bench run`: stream a dataset to every selected server and keep every answer.

lock the run folder -> dataset -> preflight (volumes readable, dataset valid; --limit,
--skip-missing-volumes) -> NIfTI headers (sform/qform disagreement: warn or refuse) -> volume controls (`--control`: their questions and derived volumes,
once, under RUN/controls/) -> (per server) backend starts it -> health -> Describe (the card must
name the server asked for) -> compatibility (`compatibility.py`: what the runner and the card both
support; what the server cannot be asked is said here, before streaming) -> Answer stream -> ledger; run.json records each attempt.
Servers run concurrently, each in its own thread with its own ledgers: the real volumes first,
then each control, on the same server process. Re-running with the same
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ctbench.compatibility import Negotiation, Wants, negotiate
from ctbench.datasets.manifest import dataset_manifest
from ctbench.datasets.qa_items import Dataset, QAItem, load_dataset
from ctbench.errors import CtbenchError, DatasetError, InvalidVolume, ServerStartError, UnsupportedTransport
from ctbench.runners.backends.base import Backend, Endpoint, ServerSpec
from ctbench.runners.client import Outcome, ServerStream, VolumeGroup, describe
from ctbench.runners.compose_file import load_compose_file, select_servers
from ctbench.runners.controls import ControlSet, prepare_controls
from ctbench.runners.health import wait_until_serving
from ctbench.runners.item_error import ItemError
from ctbench.runners.ledger import Ledger, read_ledger
from ctbench.runners.preflight import Selection, check_identity, select_questions
from ctbench.runners.run_lock import RunFolderLock
from ctbench.runners.run_record import RunRecord
from ctbench.runners.sharding import stream_replicas
from ctbench.runners.volume_headers import check_volume_headers
from ctbench.runners.volume_source import DEFAULT_INLINE_BUFFER_BYTES, VolumeSource

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
    limit: int | None = None  # only the first N volumes' questions (dataset order)
    skip_missing_volumes: bool = False  # run the questions whose volumes can be read, record the subset
    command: list[str] | None = None  # recorded in run.json (default: this process's command line)
    inline_buffer_bytes: int = DEFAULT_INLINE_BUFFER_BYTES  # volume bytes the runner keeps for inline uploads
    controls: list[str] = field(default_factory=list)  # volume controls (`runners/controls/`), asked after the real volumes
    control_seed: int = 0  # the shuffle's assignment and the noise
    conflicted_headers: str = "warn"  # NIfTI sform/qform disagreement: warn (and record) | refuse (`volume_headers.py`)


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
    negotiation: Negotiation | None = None  # what the runner and this server use together (after Describe)


@dataclass
class RunResult:
    out_dir: Path
    backend: str
    servers: dict[str, ServerResult]
    skipped: dict[str, str]
    volume_reads: int
    n_questions: int
    selection: Selection | None = None


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
                "this run folder was made for other questions; resume with the same dataset, --limit and "
                "--skip-missing-volumes (and the same volumes present), or use a new --out",
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
        return LocalProcessBackend(require_token=True), "local processes (--backend local)"
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
        return docker_backend.DockerBackend(compose_dir=compose_dir, require_token=True), "Docker containers (--backend docker)"
    if docker_backend is not None:
        available, why = docker_backend.engine_available()
        if available:
            return docker_backend.DockerBackend(compose_dir=compose_dir, require_token=True), f"Docker containers ({why})"
        return LocalProcessBackend(require_token=True), f"local processes (no Docker engine: {why})"
    return LocalProcessBackend(require_token=True), "local processes"


# --- the run --------------------------------------------------------------------------------
def run_benchmark(
    config: RunConfig,
    progress: Callable[[str, int, int], None] | None = None,
    announce: Callable[[str], None] = lambda message: None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Run (or resume) a benchmark into config.out_dir. `progress(server, done, total)` is
    called as answers arrive; `announce` gets one-line status messages for the user. The run
    folder is locked for the whole run: a second runner on it raises `RunFolderLocked`."""
    config.out_dir.mkdir(parents=True, exist_ok=True)
    with RunFolderLock(config.out_dir):
        return _run_locked(config, progress, announce, stop or threading.Event())


def _run_locked(config: RunConfig, progress, announce, stop: threading.Event) -> RunResult:
    out = config.out_dir
    full = resolve_dataset(config)
    selection = select_questions(full, config.limit, config.skip_missing_volumes)
    dataset = selection.dataset
    headers = check_volume_headers(dataset, config.conflicted_headers)
    record_dataset(dataset, out)
    controls = prepare_controls(config.controls, dataset, out, config.control_seed)
    for control in controls:
        record_dataset(control.dataset, control.folder)

    if config.endpoints:
        backend, why = None, "already-running endpoints (--endpoints)"
        specs = [ServerSpec(name=name, model=name) for name in config.endpoints]
        skipped: dict[str, str] = {}
    else:
        registry = load_compose_file(config.registry)
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
    for note in selection.notes():
        announce(note)
    for note in headers.notes():
        announce(note)
    for control in controls:
        note = f"control {control.name}: {len(control.dataset.items)} questions"
        if control.left_out:
            note += f" ({len(control.left_out)} left out: the question names a side, the answer does not)"
        if control.failed:
            note += f"; {len(control.failed)} volume(s) could not be derived, first: {next(iter(control.failed.values()))}"
        announce(note)
    if not specs:
        raise ServerStartError("no server to run: none selected can run with this backend")

    source = VolumeSource(config.inline_buffer_bytes)
    results = {spec.name: ServerResult(spec.name) for spec in specs}
    manifest = {k: v for k, v in dataset_manifest(full).items() if k != "per_volume"}
    record = RunRecord(out / "run.json", {**manifest, "data_root": str(full.data_root)}, selection.to_json(), skipped)
    record.data["volume_headers"] = headers.to_json()
    attempt = record.begin(why, config.command)
    threads = []
    try:
        for spec in specs:
            thread = threading.Thread(
                target=_run_server_guarded,
                args=(spec, config, dataset, controls, backend, source, results[spec.name], progress, announce, stop),
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
        record.finish(attempt, {name: _summary(r) for name, r in results.items()}, source.reads)
    for result in results.values():
        unaccounted = result.total - result.already_done - result.ok - result.errors
        if unaccounted > 0 and not result.failure and not stop.is_set():
            result.failure = f"{unaccounted} questions got no outcome"
            announce(f"{result.name}: {result.failure}")
    return RunResult(out, why, results, skipped, source.reads, len(dataset.items), selection)


def _run_server_guarded(spec, config, dataset, controls, backend, source, result: ServerResult, progress, announce, stop) -> None:
    """_run_server, and whatever kills it is the server's failure (the run then exits non-zero)."""
    try:
        _run_server(spec, config, dataset, controls, backend, source, result, progress, announce, stop)
    except BaseException as exc:
        log.exception("%s: the runner thread died", spec.name)
        result.failure = f"runner thread died: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        announce(f"{spec.name}: {result.failure}")


def _pending(spec, config, dataset, ledger_path: Path, announce) -> tuple[list[QAItem], dict[str, int]]:
    """The questions still to ask, and how many good ledger lines each question has so far."""
    contents = read_ledger(ledger_path)
    if contents.bad_lines:
        announce(f"{ledger_path}: {len(contents.bad_lines)} bad ledger line(s) skipped, their questions are asked again: "
                 + "; ".join(contents.problems(3)))
    if contents.invalid_predictions:
        announce(f"{ledger_path}: {contents.invalid_predictions} ledger line(s) say ok without a prediction; asked again")
    records = contents.records
    pending = [item for item in dataset.items
               if not (item.question_id in records and records[item.question_id].settled(config.retry_errors))]
    return pending, dict(contents.lines_per_question)


@dataclass
class _Pass:
    """One ledger's worth of a server's questions: the real volumes (label "") or one control."""

    label: str
    dataset: Dataset
    ledger_path: Path
    by_reference: bool = True  # False: the control's derived volumes, sent inline
    failed: dict[str, str] = field(default_factory=dict)  # image path -> why its volume could not be derived
    pending: list[QAItem] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    ledger: Ledger | None = None

    @classmethod
    def of(cls, control: ControlSet, server: str) -> _Pass:
        return cls(control.name, control.dataset, control.ledger(server), control.by_reference, control.failed)


def _run_server(spec, config, dataset, controls, backend, source, result: ServerResult, progress, announce, stop) -> None:
    started = time.monotonic()
    passes = [_Pass("", dataset, config.out_dir / "predictions" / f"{spec.name}.jsonl")]
    passes += [_Pass.of(control, spec.name) for control in controls]
    result.total = sum(len(p.dataset.items) for p in passes)
    lock = threading.Lock()
    settled_now: set[tuple[str, str]] = set()
    current = passes[0]
    done = 0

    def on_outcome(outcome: Outcome, where: _Pass | None = None) -> None:
        nonlocal done
        where = where or current
        item = outcome.item
        where.attempts[item.question_id] = where.attempts.get(item.question_id, 0) + 1
        settled_now.add((where.label, item.question_id))
        record = outcome.to_record(spec.name, where.attempts[item.question_id])
        if where.label:
            record.extra["control"] = where.label
        where.ledger.append(record)
        with lock:
            done += 1
            if outcome.error is None:
                result.ok += 1
            else:
                result.errors += 1
        if progress:
            progress(spec.name, done, result.total)

    def record_all(where: _Pass, items: list[QAItem], error: ItemError) -> None:
        for item in items:
            on_outcome(Outcome(item, "", error), where)

    try:
        for p in passes:
            p.pending, p.attempts = _pending(spec, config, p.dataset, p.ledger_path, announce)
        result.already_done = result.total - sum(len(p.pending) for p in passes)
        done = result.already_done
        if progress:
            progress(spec.name, done, result.total)
        if not any(p.pending for p in passes):
            announce(f"{spec.name}: all {result.total} questions already answered (resumed)")
            return
        for p in passes:
            if p.pending:
                p.ledger = Ledger(p.ledger_path)
        endpoint: Endpoint | None = None
        for p in passes:
            if not p.pending or stop.is_set():
                continue
            current = p
            for item in p.pending:
                if item.image_path in p.failed:
                    on_outcome(Outcome(item, "", ItemError.of(InvalidVolume(p.failed[item.image_path]))))
            remaining = [item for item in p.pending if item.image_path not in p.failed]
            if not remaining:
                continue
            if result.failure:
                record_all(p, remaining, ItemError.not_asked(f"not asked: {spec.name}: {result.failure}; re-run to retry"))
                continue
            if endpoint is None:
                endpoint = _start(spec, config, dataset, backend, result)
                result.negotiation = _negotiate(spec, config, endpoint, passes, result.card, announce)
            if p.by_reference and "volumes" in result.negotiation.refused:
                raise ServerStartError(result.negotiation.refused["volumes"])
            refused = result.negotiation.refused.get(f"control {p.label}")
            if refused is not None:
                record_all(p, remaining, ItemError.of(UnsupportedTransport(refused)))
                continue
            endpoint = _ask(spec, config, p, remaining, endpoint, backend, source, result, on_outcome, record_all, announce, stop)
    except CtbenchError as exc:
        result.failure = str(exc)
        announce(f"{spec.name}: {exc}")
        for p in passes:
            if p.ledger is not None:
                record_all(p, [item for item in p.pending if (p.label, item.question_id) not in settled_now],
                           ItemError.of(exc, str(exc).splitlines()[0]))
    except Exception as exc:  # untyped: a bug or the file system; say so (exit 2), leave the questions to a resume
        log.exception("%s: unexpected error", spec.name)
        result.failure = f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        announce(f"{spec.name}: {result.failure}")
    finally:
        for p in passes:
            if p.ledger is not None:
                p.ledger.close()
        if backend is not None and spec.name in backend.running():
            backend.stop(spec.name)
        result.seconds = time.monotonic() - started


def _ask(spec, config, p: _Pass, remaining: list[QAItem], endpoint: Endpoint, backend, source, result: ServerResult,
         on_outcome, record_all, announce, stop) -> Endpoint:
    """Stream one pass's questions, restarting a server that dies (up to --restarts in all);
    returns the endpoint the server ends on."""
    what_pass = f" (control {p.label})" if p.label else ""
    def make_stream(address: str) -> ServerStream:  # one per replica of the current endpoint
        return ServerStream(
            address, source, on_outcome,
            use_reference=p.by_reference and result.negotiation.transport == "reference",
            window=min(max(2 * int(result.card.get("max_batch_size", 1) or 1), 4), 128),
            deadline_s=config.deadline_s, stop=stop,
            hash_follows=result.negotiation is not None and "inline_hash_follows" in result.negotiation.usable,
        )

    while remaining and not stop.is_set():
        remaining = stream_replicas(endpoint.addresses, _groups(remaining, p.dataset), make_stream, spec.name)
        if not remaining or stop.is_set():
            break
        died = backend is not None and _exits_within(backend, spec.name, 3.0)
        what = "died" if died else "broke the stream"
        if backend is None or result.restarts >= config.restarts:
            tail = backend.logs(spec.name) if backend is not None else ""
            result.failure = f"server {what}{what_pass}; {len(remaining)} questions not answered"
            announce(f"{spec.name}: {result.failure}" + (f"\n{tail}" if tail else ""))
            record_all(p, remaining, ItemError.not_asked(f"server {spec.name} {what} before answering; re-run to retry"))
            break
        result.restarts += 1
        announce(f"{spec.name}: server {what}{what_pass}; restarting ({result.restarts}/{config.restarts}), {len(remaining)} questions left")
        endpoint = backend.restart(spec.name)
        for address in endpoint.addresses:
            wait_until_serving(address, config.health_timeout_s, spec.name, lambda: backend.is_alive(spec.name), lambda: backend.logs(spec.name))
    return endpoint


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
        endpoint = backend.start(spec, dataset.data_root, config.out_dir / "logs", volumes=_relative_volumes(dataset))
        for address in endpoint.addresses:
            wait_until_serving(address, config.health_timeout_s, spec.name, lambda: backend.is_alive(spec.name), lambda: backend.logs(spec.name))
    try:
        result.card = describe(endpoint.address)
    except grpc.RpcError as exc:
        raise ServerStartError(f"server {spec.name!r} is healthy but Describe failed: {exc.code().name} {exc.details()}") from None
    check_identity(spec, endpoint.address, result.card)
    return endpoint


def _negotiate(spec, config: RunConfig, endpoint: Endpoint, passes: list[_Pass], card: dict, announce) -> Negotiation:
    """What this server and the runner use together, said once, before anything is streamed:
    notes (a newer or unversioned server) and refusals (what it cannot be asked)."""
    wants = Wants(transport=config.transport, reference_reachable=endpoint.data_root is not None,
                  inline_controls=tuple(p.label for p in passes if p.label and not p.by_reference and p.pending))
    negotiation = negotiate(spec.name, card, wants)
    for problem in negotiation.notes + [why for what, why in negotiation.refused.items() if what != "volumes"]:
        announce(problem)
    return negotiation  # a refusal of the volumes themselves fails the server, and is said then


def _relative_volumes(dataset: Dataset) -> list[str]:
    """The run's volume files under the data root, relative to it (what a confined server may see;
    volumes elsewhere travel inline)."""
    root = dataset.data_root.resolve()
    relative = []
    for image_path in dataset.by_volume():
        path = dataset.volume_path(image_path).resolve()
        if path.is_relative_to(root):
            relative.append(path.relative_to(root).as_posix())
    return relative


def _groups(items: list[QAItem], dataset: Dataset) -> list[VolumeGroup]:
    """Questions grouped by volume. A path that cannot even be resolved (a symlink loop, a NUL
    byte) still makes a group: reading it fails its own questions, not the server's run."""
    groups: dict[str, VolumeGroup] = {}
    root = dataset.data_root.resolve()
    for item in items:
        group = groups.get(item.image_path)
        if group is None:
            path = dataset.volume_path(item.image_path)
            try:
                path = path.resolve()
                relative = str(path.relative_to(root)) if path.is_relative_to(root) else None
            except (OSError, RuntimeError, ValueError):
                relative = None
            group = groups[item.image_path] = VolumeGroup(path, relative, [])
        group.items.append(item)
    return list(groups.values())


def _summary(result: ServerResult) -> dict:
    return {
        "total": result.total, "already_done": result.already_done, "ok": result.ok, "errors": result.errors,
        "restarts": result.restarts, "seconds": round(result.seconds, 3), "failure": result.failure, "card": result.card,
        "compatibility": result.negotiation.to_json() if result.negotiation is not None else None,
    }
