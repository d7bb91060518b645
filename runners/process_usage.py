"""What a process has used so far, read from /proc (Linux): peak resident memory and CPU seconds.

One place for the perf commands (`bench perf memory`, `bench perf rehearsal`) and for the local
backend, which writes a server's figures to RUN/logs/<name>.usage.json as it stops it, so a
server that lived shorter than a sampling interval is measured too.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def peak_rss_kb(pid: int | str = "self") -> int:
    """The process's peak resident set size (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise OSError(f"no VmHWM for process {pid}")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of the process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_usage(pid: int, path: Path) -> None:
    """Record the process's figures in `path` (JSON); nothing when /proc no longer has them."""
    try:
        usage = {"peak_rss_kb": peak_rss_kb(pid), "cpu_seconds": cpu_seconds(pid)}
    except (OSError, ValueError, IndexError):
        return
    path.write_text(json.dumps(usage))


def read_usage(path: Path) -> dict:
    """What `write_usage` recorded, or {} when nothing was."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
