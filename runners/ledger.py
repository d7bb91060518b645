"""The append-only predictions ledger: one JSON line per answered item, flushed as it arrives.

The effective record of a question is the last line with its id. On open, a torn last line
(the runner killed mid-write) is cut off and reported, so resuming never sees half a record.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("ctbench.runner")

# Statuses worth asking again on resume: the server, not the item, was the problem.
RETRYABLE_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "ABORTED"}


def read_ledger(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.endswith("\n"):
                return  # torn tail; Ledger.open repairs it
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s:%d: unreadable ledger line skipped", path, line_no)


def effective_records(path: Path) -> dict[str, dict[str, Any]]:
    """question_id -> its last record."""
    return {record["question_id"]: record for record in read_ledger(path) if "question_id" in record}


def is_settled(record: dict[str, Any], retry_errors: bool = False) -> bool:
    """Whether a resumed run should skip this question."""
    if record.get("status") == "ok":
        return True
    if retry_errors:
        return False
    return (record.get("error") or {}).get("code") not in RETRYABLE_CODES


class Ledger:
    """Thread-safe appender for one server's ledger."""

    def __init__(self, path: Path, fsync_every: int = 64):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._since_sync = 0
        self.fsync_every = fsync_every
        self.written = 0

    def _repair_tail(self) -> None:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            data = self.path.read_bytes()
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)
            log.warning("%s: cut a torn last line (%d bytes) left by an interrupted run", self.path, len(data) - keep)

    def append(self, record: dict[str, Any]) -> None:
        record.setdefault("ts", datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()
            self.written += 1
            self._since_sync += 1
            if self._since_sync >= self.fsync_every:
                os.fsync(self._handle.fileno())
                self._since_sync = 0

    def close(self) -> None:
        with self._lock:
            if not self._handle.closed:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
