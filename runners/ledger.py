"""The predictions ledger: one record type, one reader, one writer, one meaning of "settled".

A record (`PredictionRecord`) is an answer or an error record (`item_error.ItemError`, the
line's `error` object).

A ledger (RUN/predictions/<server>.jsonl) is append-only, one JSON line per outcome, flushed
as it arrives. The effective record of a question is the last good line with its id. The same
reader serves resume (which questions to ask again) and scoring (what each server answered):

- a line that cannot be a record (not UTF-8, not JSON, not an object, a question_id that is not
  a string, no status) is reported with its file and line and skipped, so its question is asked
  again;
- a line that says `ok` without a string prediction becomes a `DATA_LOSS` error record: scored
  as an error, and asked again on resume;
- a torn last line (the runner killed mid-write) is reported; `Ledger` cuts it off on open.

Lines without a question_id (the published `{"image_path", "question", "answer", "prediction"}`
subset) are records only when the caller can join them to a question (`resolve_id`); they carry
no status and count as `ok`.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ctbench.runners.item_error import ItemError

log = logging.getLogger("ctbench.runner")

STATUSES = ("ok", "error")


@dataclass(frozen=True)
class PredictionRecord:
    """One outcome of one question on one server: an answer (`ok`) or a typed error."""

    question_id: str
    prediction: str | None  # None unless status is "ok"
    status: str  # "ok" | "error"
    error: ItemError | None = None  # when status is "error"
    line: int = 0  # where it was read (0: not read from a file)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # everything else on the line

    def __post_init__(self) -> None:
        if isinstance(self.error, dict):  # given as its JSON object: read it as the ledger does
            object.__setattr__(self, "error", ItemError.from_json(self.error))

    def settled(self, retry_errors: bool = False) -> bool:
        """Whether a resumed run skips this question: answered, or an error of the item itself
        (unless `retry_errors`). Server-side failures and damaged lines are asked again
        (`ItemError.retryable`)."""
        if self.status == "ok":
            return True
        if retry_errors:
            return False
        return self.error is None or not self.error.retryable

    def to_json(self) -> dict[str, Any]:
        return {"question_id": self.question_id, **self.extra, "prediction": self.prediction,
                "status": self.status, "error": None if self.error is None else self.error.to_json()}

    @classmethod
    def from_json(cls, row: Any, line: int = 0, question_id: str | None = None) -> PredictionRecord:
        """A record from one parsed ledger line; `BadLine` says why it cannot be one.
        `question_id` is given for published-subset lines joined by identity (no status: ok)."""
        if not isinstance(row, dict):
            raise BadLine(f"expected an object, got {_json_type(row)}")
        if question_id is None:
            question_id = row.get("question_id")
            if not isinstance(question_id, str) or not question_id:
                raise BadLine(f"question_id is {_json_type(question_id)}, not a non-empty string")
            status = row.get("status")
            if status not in STATUSES:
                raise BadLine("no 'status'" if status is None else f"status {status!r} is not 'ok' or 'error'")
        else:
            status = row.get("status", "ok")
            if status not in STATUSES:
                raise BadLine(f"status {status!r} is not 'ok' or 'error'")
        extra = {k: v for k, v in row.items() if k not in ("question_id", "prediction", "status", "error")}
        prediction = row.get("prediction")
        if status == "error":
            return cls(question_id, None, "error", ItemError.from_json(row.get("error")), line, extra)
        if not isinstance(prediction, str):
            got = "missing" if "prediction" not in row else _json_type(prediction)
            error = ItemError.invalid_prediction(f"ledger line {line}: status ok but the prediction is {got}, not a string")
            return cls(question_id, None, "error", error, line, extra)
        return cls(question_id, prediction, "ok", None, line, extra)


class BadLine(ValueError):
    """A ledger line that cannot be a record; the message says why."""


@dataclass
class LedgerContents:
    """What one ledger file holds: the effective record per question and what was wrong."""

    path: Path
    records: dict[str, PredictionRecord] = field(default_factory=dict)  # question_id -> last good record
    lines_per_question: dict[str, int] = field(default_factory=dict)  # how many good lines each has
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    unjoined: list[tuple[int, str]] = field(default_factory=list)  # (line, what) lines resolve_id could not place
    invalid_predictions: int = 0  # `ok` lines without a string prediction
    duplicates: int = 0  # lines superseded by a later line for the same question

    def problems(self, limit: int = 5) -> list[str]:
        """`file:line: why` for the first bad lines, for the user."""
        return [f"{self.path}:{n}: {why}" for n, why in self.bad_lines[:limit]]


def read_ledger(path: Path, resolve_id: Callable[[dict], str | None] | None = None) -> LedgerContents:
    """Read a ledger (or a published predictions file). Never raises for a bad line.

    `resolve_id(row)` places a line without a question_id (returns None if it cannot); without
    it such lines are bad lines. Missing file: empty contents."""
    path = Path(path)
    contents = LedgerContents(path)
    if not path.is_file():
        return contents
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # after the last newline: b"" unless the tail is torn
    numbered = list(enumerate(lines, start=1))
    if torn.strip():
        numbered.append((len(lines) + 1, torn))
    for line_no, raw in numbered:
        if not raw.strip():
            continue
        is_tail = line_no == len(lines) + 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            contents.bad_lines.append((line_no, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"))
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            why = "torn last line (an interrupted write)" if is_tail else f"malformed JSON ({exc.msg})"
            contents.bad_lines.append((line_no, why))
            continue
        except RecursionError:
            contents.bad_lines.append((line_no, "JSON nested too deeply"))
            continue
        joined = None
        if isinstance(row, dict) and "question_id" not in row and resolve_id is not None:
            joined = resolve_id(row)
            if joined is None:
                contents.unjoined.append((line_no, _describe_unjoined(row)))
                continue
        try:
            record = PredictionRecord.from_json(row, line_no, joined)
        except BadLine as exc:
            contents.bad_lines.append((line_no, str(exc)))
            continue
        if record.status == "error" and row.get("status", "ok") == "ok":  # ok without a string prediction
            contents.invalid_predictions += 1
        if record.question_id in contents.records:
            contents.duplicates += 1
        contents.records[record.question_id] = record
        contents.lines_per_question[record.question_id] = contents.lines_per_question.get(record.question_id, 0) + 1
    return contents


def _describe_unjoined(row: dict) -> str:
    image, question = row.get("image_path") or row.get("case_id"), row.get("question")
    if not isinstance(image, str) or not isinstance(question, str):
        return "no 'question_id', and no 'image_path' + 'question' to join on"
    return f"{image}: {question[:60]}"


def _json_type(value: Any) -> str:
    return {type(None): "null", list: "a list", dict: "an object", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def effective_records(path: Path) -> dict[str, dict[str, Any]]:
    """question_id -> its effective record as JSON (for scripts that compare runs)."""
    return {qid: record.to_json() for qid, record in read_ledger(path).records.items()}


def _is_record(raw: bytes) -> bool:
    try:
        PredictionRecord.from_json(json.loads(raw.decode("utf-8")))
    except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError and BadLine are ValueErrors
        return False
    return True


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
            if _is_record(data[keep:]):  # complete but for its newline: read_ledger counted it, keep it
                handle.seek(0, os.SEEK_END)
                handle.write(b"\n")
                return
            handle.truncate(keep)
            log.warning("%s: cut a torn last line (%d bytes) left by an interrupted run", self.path, len(data) - keep)

    def append(self, record: PredictionRecord) -> None:
        row = record.to_json()
        row.setdefault("ts", datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
        line = json.dumps(row, ensure_ascii=False) + "\n"
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
