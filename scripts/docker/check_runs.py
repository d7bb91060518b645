#!/usr/bin/env python3
"""Check a finished `bench run` folder, and that two runs made the same predictions.

    check_runs.py RUN_DIR [--same-as OTHER_RUN_DIR] [--backend docker] [--min-accuracy geometric=0.95]

RUN_DIR: every server's ledger answers every question of RUN/dataset.jsonl with status ok, the
run record names the expected backend, summary.json (when the run was scored) holds every
server, and accuracy from the ledger (exact match) reaches each --min-accuracy floor. With
--same-as: for every server both runs have, and every question, the effective prediction and
status are identical.
Exits 1 with one line per problem.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ctbench.evaluation.summary_row import read_summary_rows
from ctbench.runners.ledger import effective_records


def question_ids(run: Path) -> list[str]:
    with (run / "dataset.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line)["question_id"] for line in handle if line.strip()]


def check_run(run: Path, backend: str | None, min_accuracy: dict[str, float]) -> list[str]:
    problems = []
    record = json.loads((run / "run.json").read_text())
    if backend and backend.lower() not in record.get("backend", "").lower():
        problems.append(f"{run}: backend is {record.get('backend')!r}, expected {backend}")
    ids = question_ids(run)
    if len(ids) != record["dataset"]["n_questions"]:
        problems.append(f"{run}: dataset.jsonl has {len(ids)} questions, run.json says {record['dataset']['n_questions']}")
    for server in record["servers"]:
        ledger = effective_records(run / "predictions" / f"{server}.jsonl")
        missing = [q for q in ids if q not in ledger]
        not_ok = [q for q in ids if q in ledger and ledger[q]["status"] != "ok"]
        if missing:
            problems.append(f"{server}: {len(missing)} questions missing from the ledger (first: {missing[0]})")
        if not_ok:
            problems.append(f"{server}: {len(not_ok)} questions not ok (first: {ledger[not_ok[0]]})")
    summary_path = run / "summary.json"
    if summary_path.is_file():
        scored = {row.server for row in read_summary_rows(summary_path)}
        for server in record["servers"]:
            if server not in scored:
                problems.append(f"{server}: no score in summary.json")
    for server, floor in min_accuracy.items():
        accuracy = _accuracy(run, server)
        if accuracy is None:
            problems.append(f"{server}: no ledger to compute accuracy from")
        elif accuracy < floor:
            problems.append(f"{server}: accuracy {accuracy:.3f} below {floor}")
    return problems


def _accuracy(run: Path, server: str) -> float | None:
    """Accuracy from the ledger itself (prediction == answer, case-insensitive)."""
    ledger = effective_records(run / "predictions" / f"{server}.jsonl")
    if not ledger:
        return None
    right = sum(1 for r in ledger.values() if str(r.get("prediction", "")).strip().lower() == str(r.get("answer", "")).strip().lower())
    return right / len(ledger)


def compare_runs(a: Path, b: Path) -> list[str]:
    problems = []
    servers_a = set(json.loads((a / "run.json").read_text())["servers"])
    servers_b = set(json.loads((b / "run.json").read_text())["servers"])
    if not servers_a & servers_b:
        problems.append(f"no server in common: {sorted(servers_a)} vs {sorted(servers_b)}")
    for server in sorted(servers_a & servers_b):
        left = effective_records(a / "predictions" / f"{server}.jsonl")
        right = effective_records(b / "predictions" / f"{server}.jsonl")
        if set(left) != set(right):
            problems.append(f"{server}: question sets differ ({len(left)} vs {len(right)})")
        differing = [q for q in left if q in right and
                     (left[q]["prediction"], left[q]["status"]) != (right[q]["prediction"], right[q]["status"])]
        if differing:
            q = differing[0]
            problems.append(f"{server}: {len(differing)} predictions differ (first {q}: "
                            f"{left[q]['prediction']!r} vs {right[q]['prediction']!r})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--same-as", type=Path)
    parser.add_argument("--backend")
    parser.add_argument("--min-accuracy", action="append", default=[], metavar="SERVER=FLOOR")
    args = parser.parse_args()
    floors = {k: float(v) for k, v in (item.split("=") for item in args.min_accuracy)}
    problems = check_run(args.run, args.backend, floors)
    if args.same_as:
        problems += compare_runs(args.run, args.same_as)
    for problem in problems:
        print(f"check_runs: {problem}", file=sys.stderr)
    if not problems:
        what = f" and identical to {args.same_as}" if args.same_as else ""
        print(f"check_runs: {args.run} complete{what}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
