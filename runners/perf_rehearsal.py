"""`bench perf rehearsal`: the real benchmark's shape, at N volumes, through `bench run` itself.

For each N and each transport (by reference, inline) one `bench run` (`run_benchmark`, in a
process of its own so its peak memory is its own) streams N distinct CT-sized phantom volumes
(`rehearsal_volumes.py`) with their questions to real server processes started by the local
backend: the baselines and tiny random-weight MedGemma / Lingshu (`bench selftest`'s builders).
Recorded per server: peak RSS (VmHWM, sampled every `SAMPLE_S` from /proc while it runs, so the
last moments before it exits can be missed), CPU seconds (sampled the same way), wall time per
volume and per question (the server's share of the run, start-up included), answered / errors /
missing; and the runner's peak RSS and CPU seconds. CPU per volume tells work that grows with N
from a machine that got busier.
Then the goals are checked, each PASS or FAIL with the figures behind it:

* memory flat in N: every peak RSS at the largest N within `RSS_TOLERANCE` of the second largest;
* nothing lost: every question has exactly one outcome (an answer or a typed error);
* wall time linear in N: seconds per volume at the largest N within `LINEAR_TOLERANCE` of the
  second largest (the fixed start-up cost makes small N look slower, never faster).

Linux only (reads /proc). The volumes of one N are written before its runs and deleted after.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ctbench.runners.process_usage import cpu_seconds, peak_rss_kb, read_usage
from ctbench.runners.rehearsal_volumes import PublishedQuestions, RehearsalVolumes

DEFAULT_SERVERS = ("chance", "blind", "geometric", "medgemma", "lingshu")
TINY_VLMS = ("medgemma", "lingshu")
TRANSPORTS = ("reference", "inline")
RSS_TOLERANCE = 0.20
LINEAR_TOLERANCE = 0.25
SAMPLE_S = 0.5
PUBLISHED_QUESTIONS = Path("shared/data/ct-spatialvqa/qa_pairs_with_categories.json")


@dataclass
class ServerFigures:
    server: str
    questions: int = 0
    answered: int = 0
    errors: int = 0
    missing: int = 0
    seconds: float = 0.0
    seconds_per_volume: float = 0.0
    seconds_per_question: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0  # user + system CPU of the server process (sampled, like the RSS)
    error_types: dict = field(default_factory=dict)


@dataclass
class RunFigures:
    volumes: int
    transport: str
    wall_seconds: float
    runner_peak_rss_mb: float
    servers: dict[str, ServerFigures]
    failure: str = ""
    runner_cpu_seconds: float = 0.0


def find_published_questions(start: Path | None = None) -> Path | None:
    """The shared CT-SpatialVQA questions (…/shared/data/ct-spatialvqa), looked for above `start`."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PUBLISHED_QUESTIONS
        if candidate.is_file():
            return candidate
    return None


def rehearsal_benchmark(
    volume_counts: tuple[int, ...] = (10, 50, 200),
    servers: tuple[str, ...] = DEFAULT_SERVERS,
    transports: tuple[str, ...] = TRANSPORTS,
    size: str = "ct-rate",
    published: Path | None = None,
    workdir: Path | None = None,
    announce=lambda message: None,
    deadline_s: float = 600.0,
    on_run=None,
) -> dict:
    """Run the rehearsal; returns the figures and the goals (JSON-ready). `on_run(figures)` is
    called after each run with the figures so far (a long rehearsal keeps what it measured)."""
    unknown = [t for t in transports if t not in TRANSPORTS]
    if unknown:
        raise ValueError(f"unknown transports {unknown}; known: {', '.join(TRANSPORTS)}")
    if not volume_counts or min(volume_counts) < 1:
        raise ValueError(f"volume counts must be positive, got {volume_counts}")
    questions = PublishedQuestions.load(published) if published is not None else None
    if questions is None:
        announce("CT-SpatialVQA questions not found: phantom questions only (pass --published)")
    volumes = RehearsalVolumes(size, questions)
    runs: list[RunFigures] = []
    with tempfile.TemporaryDirectory(prefix="ctbench-rehearsal-", dir=workdir) as tmp:
        root = Path(tmp)
        registry = _write_registry(root, servers, announce)
        data = root / "data"
        (data / "volumes").mkdir(parents=True)
        written = 0
        for n in sorted(volume_counts):  # the first n volumes of one growing set
            start = time.perf_counter()
            for index in range(written, n):
                volumes.write_volume(index, data / "volumes")
            announce(f"N={n}: {n - written} more volumes written in {time.perf_counter() - start:.0f}s")
            written = max(written, n)
            dataset = volumes.write_dataset(n, data / f"qa_pairs_n{n}.json")
            for transport in transports:
                run_dir = root / f"run-n{n}-{transport}"
                runs.append(_one_run(run_dir, dataset, registry, servers, transport, n, deadline_s))
                announce(_summary_line(runs[-1]))
                shutil.rmtree(run_dir, ignore_errors=True)
                if on_run is not None:
                    on_run(_figures(size, volumes, questions, servers, transports, volume_counts, runs))
        shutil.rmtree(data)
    return _figures(size, volumes, questions, servers, transports, volume_counts, runs)


def _figures(size, volumes, questions, servers, transports, volume_counts, runs) -> dict:
    return {
        "size": size, "shape_ijk": list(volumes.shape_ijk),
        "questions": {n: sum(len(volumes.questions(i)) for i in range(n)) for n in sorted(volume_counts)},
        "published_questions": questions.source if questions is not None else None,
        "servers": list(servers), "transports": list(transports), "volume_counts": sorted(volume_counts),
        "runs": [_run_dict(r) for r in runs],
        "goals": check_goals(runs),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def _write_registry(root: Path, servers: tuple[str, ...], announce) -> Path:
    """A server registry (compose format) of local processes; the tiny VLMs get their weights built."""
    from ctbench.model_servers.selftest import _call, tiny_model

    services = {}
    for name in servers:
        meta: dict = {"model": name, "local": True}
        if name in TINY_VLMS:
            spec = tiny_model(name)
            start = time.perf_counter()
            weights = _call(spec.builder)(root / "weights" / name)
            announce(f"{name}: tiny random weights built in {time.perf_counter() - start:.0f}s")
            options = {**spec.options, "weights": str(weights)}
            meta["args"] = [a for key, value in options.items() for a in ("--option", f"{key}={value}")]
        services[name] = {"x-ctbench": meta}
    path = root / "registry.json"  # JSON is YAML
    path.write_text(json.dumps({"services": services}, indent=1))
    return path


def _one_run(out: Path, dataset: Path, registry: Path, servers, transport: str, n: int, deadline_s: float) -> RunFigures:
    out.mkdir(parents=True)
    config = {"out_dir": str(out), "dataset": str(dataset), "registry": str(registry), "servers": ",".join(servers),
              "transport": transport, "deadline_s": deadline_s}
    (out.parent / f"{out.name}.config.json").write_text(json.dumps(config))
    peaks: dict[str, int] = {}
    cpu: dict[str, float] = {}
    done = threading.Event()
    sampler = threading.Thread(target=_sample_servers, args=(out / "logs", peaks, cpu, done), daemon=True)
    sampler.start()
    start = time.perf_counter()
    result_path = out.parent / f"{out.name}.result.json"
    process = subprocess.run(
        [sys.executable, "-m", "ctbench.runners.perf_rehearsal", str(out.parent / f"{out.name}.config.json"), str(result_path)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if not result_path.is_file():
        tail = (process.stderr or process.stdout)[-2000:]
        return RunFigures(n, transport, wall, 0.0, {}, failure=f"the runner exited with code {process.returncode}: {tail}")
    result = json.loads(result_path.read_text())
    figures = {}
    usage = {name: read_usage(out / "logs" / f"{name}.usage.json") for name in result["servers"]}
    for name, counts in result["servers"].items():
        ledger = _ledger_counts(out / "predictions" / f"{name}.jsonl")
        questions = counts["total"]
        seconds = counts["seconds"]
        figures[name] = ServerFigures(
            server=name, questions=questions, answered=ledger["ok"], errors=ledger["error"],
            missing=questions - ledger["ok"] - ledger["error"], seconds=seconds,
            seconds_per_volume=seconds / n, seconds_per_question=seconds / max(1, questions),
            peak_rss_mb=max(peaks.get(name, 0), usage[name].get("peak_rss_kb", 0)) / 1024,
            cpu_seconds=max(cpu.get(name, 0.0), usage[name].get("cpu_seconds", 0.0)), error_types=ledger["types"],
        )
    return RunFigures(n, transport, wall, result["runner_peak_rss_kb"] / 1024, figures, result.get("failure", ""),
                      result.get("runner_cpu_seconds", 0.0))


def _ledger_counts(path: Path) -> dict:
    """Effective outcomes per question (the one ledger reader): ok, error, and error types."""
    from ctbench.runners.ledger import read_ledger

    counts = {"ok": 0, "error": 0, "types": {}}
    if not path.is_file():
        return counts
    for record in read_ledger(path).records.values():
        if record.status == "ok":
            counts["ok"] += 1
        else:
            counts["error"] += 1
            kind = record.error.type if record.error is not None else "?"
            counts["types"][kind] = counts["types"].get(kind, 0) + 1
    return counts


def _sample_servers(logs: Path, peaks: dict[str, int], cpu: dict[str, float], done: threading.Event) -> None:
    while True:
        for pid_file in logs.glob("*.pid") if logs.is_dir() else ():
            try:
                pid = int(pid_file.read_text().strip())
                peak, seconds = peak_rss_kb(pid), cpu_seconds(pid)
            except (OSError, ValueError, IndexError):
                continue  # not written yet, or the process is gone
            name = pid_file.stem
            peaks[name] = max(peaks.get(name, 0), peak)
            cpu[name] = max(cpu.get(name, 0.0), seconds)
        if done.wait(SAMPLE_S):
            return




def check_goals(runs: list[RunFigures]) -> list[dict]:
    """PASS / FAIL per goal, comparing the two largest N of each transport."""
    goals = []
    lost = [f"N={r.volumes} {r.transport} {s.server}: {s.missing} missing of {s.questions}"
            for r in runs for s in r.servers.values() if s.missing]
    lost += [f"N={r.volumes} {r.transport}: {r.failure.splitlines()[0] if r.failure else 'no servers'}"
             for r in runs if r.failure or not r.servers]
    goals.append({"goal": "nothing lost (every question answered or a typed error)", "pass": not lost, "detail": lost})
    for transport in sorted({r.transport for r in runs}):
        by_n = sorted((r for r in runs if r.transport == transport and r.servers), key=lambda r: r.volumes)
        if len(by_n) < 2:
            continue
        small, large = by_n[-2], by_n[-1]
        detail, ok = [], True
        pairs = [("runner", small.runner_peak_rss_mb, large.runner_peak_rss_mb)]
        pairs += [(name, small.servers[name].peak_rss_mb, s.peak_rss_mb) for name, s in large.servers.items() if name in small.servers]
        for name, a, b in pairs:
            within = a > 0 and b <= a * (1 + RSS_TOLERANCE)
            ok &= within
            detail.append(f"{name}: {a:.0f} -> {b:.0f} MiB ({(b / a - 1) if a else 0:+.0%})")
        goals.append({"goal": f"peak RSS flat in N ({transport}: N={small.volumes} -> {large.volumes}, within {RSS_TOLERANCE:.0%})",
                      "pass": ok, "detail": detail})
        goals.append(_linear_goal(transport, by_n))
    return goals


def _linear_goal(transport: str, by_n: list[RunFigures]) -> dict:
    """Each further volume costs no more at the largest N than before: with three or more N the
    slope (seconds per added volume) of the last step against the step before it, so the fixed
    start-up cost cancels; with two N, seconds per volume."""
    if len(by_n) >= 3:
        (n0, w0), (n1, w1), (n2, w2) = [(r.volumes, r.wall_seconds) for r in by_n[-3:]]
        a, b = (w1 - w0) / (n1 - n0), (w2 - w1) / (n2 - n1)
        what = f"s per added volume N={n0}->{n1} against N={n1}->{n2}"
        detail = f"{a:.2f} -> {b:.2f} s per added volume (walls {w0:.0f}, {w1:.0f}, {w2:.0f} s)"
    else:
        (n1, w1), (n2, w2) = [(r.volumes, r.wall_seconds) for r in by_n[-2:]]
        a, b = w1 / n1, w2 / n2
        what = f"s per volume N={n1} -> {n2}"
        detail = f"{w1:.0f}s / {n1} = {a:.2f} -> {w2:.0f}s / {n2} = {b:.2f} s per volume"
    return {"goal": f"wall time linear in N ({transport}: {what}, within {LINEAR_TOLERANCE:.0%})",
            "pass": b <= a * (1 + LINEAR_TOLERANCE), "detail": [detail]}


def _run_dict(run: RunFigures) -> dict:
    return {**asdict(run), "servers": {name: asdict(s) for name, s in run.servers.items()}}


def _summary_line(run: RunFigures) -> str:
    if run.failure:
        return f"N={run.volumes} {run.transport}: FAILED {run.failure.splitlines()[0]}"
    parts = [f"{s.server} {s.answered}+{s.errors}e/{s.questions} {s.peak_rss_mb:.0f}MiB" for s in run.servers.values()]
    return f"N={run.volumes} {run.transport}: {run.wall_seconds:.0f}s, runner {run.runner_peak_rss_mb:.0f}MiB; " + ", ".join(parts)


def format_table(figures: dict) -> str:
    """The figures as a markdown table, then the goals."""
    lines = ["| N | transport | server | answered | errors | missing | peak RSS MiB | s / volume | s / question | CPU s / volume |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in figures["runs"]:
        for s in run["servers"].values():
            lines.append(f"| {run['volumes']} | {run['transport']} | {s['server']} | {s['answered']} | {s['errors']} | "
                         f"{s['missing']} | {s['peak_rss_mb']:.0f} | {s['seconds_per_volume']:.2f} | {s['seconds_per_question']:.3f} | "
                         f"{s['cpu_seconds'] / run['volumes']:.2f} |")
        lines.append(f"| {run['volumes']} | {run['transport']} | **runner** (wall {run['wall_seconds']:.0f} s) | | | | "
                     f"{run['runner_peak_rss_mb']:.0f} | {run['wall_seconds'] / run['volumes']:.2f} | | "
                     f"{run['runner_cpu_seconds'] / run['volumes']:.2f} |")
        if run["failure"]:
            lines.append(f"| {run['volumes']} | {run['transport']} | FAILED: {run['failure'].splitlines()[0]} | | | | | | | |")
    lines.append("")
    for goal in figures["goals"]:
        lines.append(f"- {'PASS' if goal['pass'] else 'FAIL'}: {goal['goal']}" + (f" — {'; '.join(goal['detail'])}" if goal["detail"] else ""))
    return "\n".join(lines)


def _runner_main(config_path: str, result_path: str) -> None:
    """The runner side: one `bench run`, then its counts and this process's peak RSS."""
    from ctbench.runners.run import RunConfig, run_benchmark

    config = json.loads(Path(config_path).read_text())
    failure = ""
    servers = {}
    try:
        result = run_benchmark(RunConfig(
            out_dir=Path(config["out_dir"]), dataset=config["dataset"], registry=Path(config["registry"]),
            servers=config["servers"], backend="local", transport=config["transport"], deadline_s=config["deadline_s"],
        ))
        servers = {name: {"total": r.total, "ok": r.ok, "errors": r.errors, "seconds": r.seconds, "failure": r.failure}
                   for name, r in result.servers.items()}
        failure = "; ".join(f"{name}: {r.failure}" for name, r in result.servers.items() if r.failure)
    except Exception as exc:  # reported as the run's failure, with what was counted
        failure = f"{type(exc).__name__}: {exc}"
    Path(result_path).write_text(json.dumps({"servers": servers, "failure": failure, "runner_peak_rss_kb": peak_rss_kb(),
                                             "runner_cpu_seconds": cpu_seconds(os.getpid())}))


if __name__ == "__main__":  # the runner side: python -m ctbench.runners.perf_rehearsal CONFIG RESULT
    _runner_main(sys.argv[1], sys.argv[2])
