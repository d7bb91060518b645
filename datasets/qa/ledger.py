"""The append-only ledger each QA pipeline step writes: one JSON line per unit of work.

A unit (a report, or one volume's pairs) is done when its last line has ``status == "ok"`` and
was made by the same model and prompt (``fingerprint``); anything else is redone on the next run.
Lines are flushed as they are written, so an interrupted step loses at most the unit in flight.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Ledger:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.last: dict[str, dict] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by an interruption
                if isinstance(row, dict) and "key" in row:
                    self.last[row["key"]] = row

    def done(self, key: str, fingerprint: dict) -> dict | None:
        row = self.last.get(key)
        if row and row.get("status") == "ok" and all(row.get(k) == v for k, v in fingerprint.items()):
            return row
        return None

    def append(self, row: dict) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                handle.flush()
            self.last[row["key"]] = row
