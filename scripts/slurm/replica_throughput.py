"""Questions per second of one server with 1 and 2 replicas on the SLURM cluster, side by side.

    SLURM_CONF=... PYTHONPATH=tests/support .venv/bin/python scripts/slurm/replica_throughput.py [--volumes 24] [--rounds 2]

Each round runs the phantom benchmark through `geometric` (CPU-bound: both emulated nodes share
this machine's cores) and through an echo server that sleeps 100 ms per batch of <= 4 (a stand-in
for a model whose work happens on the node's GPU), with K = 1 and K = 2. Two figures: answered questions over the wall time from first submission
to the last answer (queueing and job start included), and over the time from the last replica
listening (its endpoint file written) to the last answer (the ledger's last write).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from ctbench.runners.run import RunConfig, run_benchmark

ECHO = {"services": {"echo": {"x-ctbench": {"model": "ctbench_test_models:EchoModel", "local": True,
                                             "args": ["--option", "delay_ms=100"], "slurm": {"gpus": 2}}}}}
GEOMETRIC = {"services": {"geometric": {"x-ctbench": {"model": "geometric", "local": True, "slurm": {"gpus": 2}}}}}


def questions_per_second(work: Path, registry: dict, server: str, k: int, volumes: int) -> tuple[float, float]:
    path = work / f"{server}.yaml"
    path.write_text(yaml.safe_dump(registry))
    out = Path(tempfile.mkdtemp(dir=work))
    started = time.monotonic()
    result = run_benchmark(RunConfig(out_dir=out, backend="slurm", servers=server, registry=path,
                                     phantom_volumes=volumes, replicas={server: k} if k > 1 else {}))
    seconds = time.monotonic() - started
    summary = result.servers[server]
    if summary.failure or summary.ok != result.n_questions:
        raise SystemExit(f"{server} K={k}: {summary.ok}/{result.n_questions} answered; {summary.failure}")
    listening = max(path.stat().st_mtime for path in (out / "endpoints").glob("*.port"))
    streaming = (out / "predictions" / f"{server}.jsonl").stat().st_mtime - listening
    return summary.ok / seconds, summary.ok / streaming


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for round_ in range(1, args.rounds + 1):
            for server, registry in (("geometric", GEOMETRIC), ("echo", ECHO)):
                (wall1, stream1), (wall2, stream2) = (questions_per_second(work, registry, server, k, args.volumes) for k in (1, 2))
                print(f"round {round_} {server}: wall K=1 {wall1:.1f} q/s, K=2 {wall2:.1f} q/s, ratio {wall2 / wall1:.2f}; "
                      f"after listening K=1 {stream1:.1f} q/s, K=2 {stream2:.1f} q/s, ratio {stream2 / stream1:.2f}")


if __name__ == "__main__":
    main()
