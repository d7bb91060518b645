"""Helpers for the runner tests: registries, ledgers, subprocess runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml


def write_registry(path: Path, services: dict[str, dict]) -> Path:
    """A compose-style registry. services: name -> {"model": ..., "args": [...]}"""
    doc = {"services": {name: {"x-ctbench": {"local": True, **meta}} for name, meta in services.items()}}
    path.write_text(yaml.safe_dump(doc))
    return path


def write_qa(root: Path, volumes: list[str], present: set[str] | None = None, per_volume: int = 2) -> Path:
    """A JSONL dataset over `volumes` (names without suffix), `per_volume` two-option questions
    each, with tiny NIfTI files for the volumes in `present` (default: all). Returns its path."""
    import numpy as np

    from ctbench.preprocess.volume import Volume, save_volume

    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in volumes:
        if present is None or name in present:
            save_volume(Volume(np.zeros((6, 6, 6), np.int16)), root / f"{name}.nii.gz")
        for k in range(per_volume):
            rows.append({"case_id": name, "image_path": f"{name}.nii.gz", "question": f"Is finding {k} on the left?",
                         "answer": "yes", "options": ["yes", "no"]})
    path = root / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ledger_lines(run_dir: Path, server: str) -> list[dict]:
    path = run_dir / "predictions" / f"{server}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def dataset_ids(run_dir: Path) -> list[str]:
    return [json.loads(line)["question_id"] for line in (run_dir / "dataset.jsonl").read_text().splitlines()]


def assert_complete_once(out: Path, server: str) -> None:
    """Every dataset question's effective record is ok, and no question was answered ok twice."""
    ids = dataset_ids(out)
    lines = ledger_lines(out, server)
    effective = {line["question_id"]: line for line in lines}
    assert set(effective) == set(ids), f"lost: {set(ids) - set(effective)}; extra: {set(effective) - set(ids)}"
    assert all(effective[q]["status"] == "ok" for q in ids)
    ok_counts = Counter(line["question_id"] for line in lines if line["status"] == "ok")
    assert max(ok_counts.values()) == 1, [q for q, n in ok_counts.items() if n > 1]


def bench(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ctbench", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", env={**os.environ, **(env or {})}, **kwargs,
    )


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return status != "Z"
    except OSError:
        return False


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


