"""Reading a run folder: its dataset (the denominator) and its prediction ledgers.

A ledger is JSONL, one line per answered item; the effective record of a question is the LAST
line with its question_id (resumed runs append). Lines without a question_id (the published
`{"image_path", "question", "answer", "prediction"}` subset) are joined to the dataset by
identity: volume name + question text, the k-th such line to the k-th such question. Nothing is
dropped silently: duplicates, unknown ids, unreadable lines and invalid predictions are counted
and kept in `LedgerIssues`. Lines are parsed by the runner's reader (`ctbench.runners.ledger`),
so scoring and resume agree on every line.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctbench.datasets.qa_items import Dataset, QAItem, load_dataset
from ctbench.errors import DatasetError
from ctbench.runners import ledger as run_ledger
from ctbench.runners.ledger import PredictionRecord

_VOLUME_SUFFIX = re.compile(r"(\.nii\.gz|\.nii|\.npy|\.npz|\.mha|\.mhd|\.nrrd|\.pt)$", re.I)


class PredictionsError(DatasetError):
    """A predictions file cannot be used at all (missing, not JSONL, no usable line)."""


@dataclass
class LedgerIssues:
    duplicates: int = 0  # lines superseded by a later line for the same question
    unknown_ids: list[str] = field(default_factory=list)  # question ids not in the dataset
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    invalid_predictions: int = 0  # status ok but prediction not a string

    def to_json(self) -> dict[str, Any]:
        return {
            "duplicates": self.duplicates,
            "unknown_ids": len(self.unknown_ids),
            "unknown_id_examples": self.unknown_ids[:5],
            "unreadable_lines": len(self.unreadable),
            "unreadable_examples": [f"line {n}: {why}" for n, why in self.unreadable[:5]],
            "invalid_predictions": self.invalid_predictions,
        }


@dataclass
class ServerPredictions:
    """One server's effective predictions: question_id -> record (last line wins)."""

    server: str
    source: str
    records: dict[str, PredictionRecord]
    issues: LedgerIssues


def volume_key(path_or_name: str) -> str:
    """`/x/valid_1000_a_1.npy` and `valid_1000_a_1.nii.gz` -> `valid_1000_a_1`."""
    name = str(path_or_name).replace("\\", "/").rsplit("/", 1)[-1]
    return _VOLUME_SUFFIX.sub("", name)


class IdentityIndex:
    """Finds a dataset question from (image path, question text), in occurrence order."""

    def __init__(self, items: Iterable[QAItem]):
        self._ids: dict[tuple[str, str], list[str]] = defaultdict(list)
        for item in items:
            self._ids[self.key(item.image_path or item.case_id, item.question)].append(item.question_id)
            if volume_key(item.case_id) != volume_key(item.image_path):
                self._ids[self.key(item.case_id, item.question)].append(item.question_id)

    @staticmethod
    def key(image: str, question: str) -> tuple[str, str]:
        return volume_key(image), " ".join(question.split())

    def new_cursor(self) -> _Cursor:
        return _Cursor(self._ids)


class _Cursor:
    def __init__(self, ids: dict[tuple[str, str], list[str]]):
        self._ids = ids
        self._used: dict[tuple[str, str], int] = defaultdict(int)

    def resolve(self, image: str, question: str) -> str | None:
        key = IdentityIndex.key(image, question)
        candidates = self._ids.get(key)
        if not candidates:
            return None
        k = self._used[key]
        self._used[key] += 1
        # more lines than questions: the extra line re-answers the last one (counted as duplicate)
        return candidates[min(k, len(candidates) - 1)]


def load_run_dataset(run_dir: str | Path) -> Dataset:
    path = Path(run_dir) / "dataset.jsonl"
    if not path.is_file():
        raise DatasetError(
            "run folder has no dataset.jsonl (the run's questions, the scoring denominator); "
            "pass --dataset to score loose prediction files",
            path,
        )
    dataset = load_dataset(path)
    record = _run_record(Path(run_dir) / "run.json")
    name = record.get("dataset", {}).get("name") if isinstance(record.get("dataset"), dict) else None
    dataset.name = name if isinstance(name, str) and name else Path(run_dir).resolve().name
    if isinstance(record.get("subset"), dict):
        dataset.extra["subset"] = record["subset"]
    if isinstance(record.get("dataset"), dict):
        dataset.extra["manifest"] = record["dataset"]
    if isinstance(record.get("attempts"), list):
        dataset.extra["attempts"] = [a for a in record["attempts"] if isinstance(a, dict)]
    if isinstance(record.get("volume_headers"), dict):
        dataset.extra["volume_headers"] = record["volume_headers"]
    return dataset


def _run_record(path: Path) -> dict[str, Any]:
    """run.json, or {} when there is none or it cannot be read (scoring still works)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def read_ledger(path: str | Path, dataset: Dataset, server: str | None = None) -> ServerPredictions:
    """Read one predictions file (ledger or published subset) against `dataset`, with the
    runner's reader (`ctbench.runners.ledger.read_ledger`): the same lines count as on resume."""
    path = Path(path)
    if not path.is_file():
        raise PredictionsError("predictions file not found", path)
    known = {item.question_id for item in dataset.items}
    cursor = IdentityIndex(dataset.items).new_cursor()

    def resolve(row: dict) -> str | None:
        image, question = row.get("image_path") or row.get("case_id"), row.get("question")
        if not isinstance(image, str) or not isinstance(question, str):
            return None
        return cursor.resolve(image, question)

    contents = run_ledger.read_ledger(path, resolve)
    issues = LedgerIssues(duplicates=contents.duplicates, unreadable=list(contents.bad_lines),
                          invalid_predictions=contents.invalid_predictions)
    for line_no, what in contents.unjoined:
        if what.startswith("no 'question_id'"):
            issues.unreadable.append((line_no, what))
        else:
            issues.unknown_ids.append(what)
    records: dict[str, PredictionRecord] = {}
    for qid, record in contents.records.items():
        if qid in known:
            records[qid] = record
        else:
            issues.unknown_ids.append(qid)
    issues.unreadable.sort()
    if not records and (issues.unreadable or issues.unknown_ids):
        if issues.unreadable:
            line, why = issues.unreadable[0]
        else:
            line, why = None, f"unknown question {issues.unknown_ids[0]!r}"
        raise PredictionsError(f"no usable prediction line (first problem: {why})", path, line)
    name = server or _server_name(path)
    return ServerPredictions(server=name, source=str(path), records=records, issues=issues)


def _server_name(path: Path) -> str:
    name = path.name
    for suffix in (".jsonl", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def run_ledgers(run_dir: str | Path) -> list[Path]:
    folder = Path(run_dir) / "predictions"
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
