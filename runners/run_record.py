"""RUN/run.json: what the run is (its dataset, once) and every attempt that worked on it.

An attempt is one `bench run` on the folder: when it started and finished, the command line,
ctbench's version and git commit (from a checkout), the host, Python and key package versions,
the backend, and per server its counts, the model card it reported and the capabilities the runner
and the server negotiated (`compatibility.py`: sdk_version, what is used, notes and refusals). Resuming appends an
attempt and never rewrites an earlier one, so the first attempt's cards survive every resume.
The top level keeps the latest backend, and per server the latest known card and counts, for
readers that want one view.
"""
from __future__ import annotations

import copy
import json
import platform
import shlex
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import ctbench
from ctbench import project

KEY_PACKAGES = ("grpcio", "protobuf", "numpy", "SimpleITK", "torch", "transformers")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_commit() -> dict[str, Any] | None:
    """{"commit", "dirty"} when ctbench runs from a git checkout, else None."""
    root = project.checkout_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode != 0:
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def new_attempt(backend: str, command: list[str] | None = None) -> dict[str, Any]:
    return {
        "started_at": now(),
        "finished_at": None,
        "command": shlex.join(command if command is not None else ["bench", *sys.argv[1:]]),
        "ctbench_version": ctbench.__version__,
        "git": git_commit(),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "backend": backend,
        "servers": {},
        "volume_reads": 0,
    }


class RunRecord:
    """run.json, read once at the start of an attempt and rewritten (atomically) as it goes."""

    def __init__(self, path: Path, dataset: dict[str, Any], subset: dict[str, Any] | None, skipped: dict[str, str]):
        self.path = path
        self.data = _read(path)
        self.data["dataset"] = dataset
        if subset is not None:
            self.data["subset"] = subset
        else:
            self.data.pop("subset", None)
        self.data["skipped"] = skipped
        self.data.setdefault("attempts", [])
        self.data.setdefault("servers", {})

    @property
    def attempts(self) -> list[dict[str, Any]]:
        return self.data["attempts"]

    def begin(self, backend: str, command: list[str] | None = None) -> dict[str, Any]:
        attempt = new_attempt(backend, command)
        self.attempts.append(attempt)
        self.data["backend"] = backend  # the latest attempt's, for readers that want one view
        self.write()
        return attempt

    def finish(self, attempt: dict[str, Any], servers: dict[str, dict[str, Any]], volume_reads: int) -> None:
        attempt["finished_at"] = now()
        attempt["servers"] = servers
        attempt["volume_reads"] = volume_reads
        for name, summary in servers.items():
            known = self.data["servers"].get(name, {})
            card = summary.get("card") or known.get("card") or {}
            compatibility = summary.get("compatibility") or known.get("compatibility")
            self.data["servers"][name] = {**summary, "card": card, "compatibility": compatibility}
        self.data["volume_reads"] = sum(a.get("volume_reads", 0) for a in self.attempts)
        self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def _read(path: Path) -> dict[str, Any]:
    """The record so far; a run.json from before attempts were kept becomes the first attempt."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    if "attempts" not in data and "started_at" in data:
        first = {key: data.pop(key) for key in ("started_at", "finished_at", "ctbench_version", "backend")
                 if key in data}
        first["servers"] = copy.deepcopy(data.get("servers", {}))
        first["volume_reads"] = data.get("volume_reads", 0)
        data["attempts"] = [first]
    return data
