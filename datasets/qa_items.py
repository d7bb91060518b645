"""QA items and the loader for CT-SpatialVQA-style datasets (JSON or JSONL).

Accepted forms:

* JSON ``{volume_name: {"qa_pairs": [{"question", "answer", ...}, ...]}, ...}`` — the published
  ``qa_pairs.json`` shape. Image paths are ``volume_name`` unless a pair (or the volume entry)
  carries ``image_path``.
* JSONL, one ``{"case_id", "image_path", "question", "answer", ...}`` per line — the published
  per-question shape.

Optional per-pair fields: ``options`` (list of answer options), ``question_type``, ``category``
(a string or a list of the spatial categories), ``question_id``. A question's stable id is
``<volume name>::<index of the pair within that volume>``, as in the published benchmark.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ctbench.errors import DatasetError


@dataclass(frozen=True)
class QAItem:
    question_id: str
    case_id: str
    image_path: str
    question: str
    answer: str
    options: tuple[str, ...] = ()
    question_type: str = ""
    categories: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = list(self.options)
        d["categories"] = list(self.categories)
        return d


@dataclass
class Dataset:
    """Items plus where their image paths are rooted."""

    items: list[QAItem]
    data_root: Path
    source: str = ""
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def by_volume(self) -> dict[str, list[QAItem]]:
        """image_path -> its items, in first-seen order."""
        groups: dict[str, list[QAItem]] = {}
        for item in self.items:
            groups.setdefault(item.image_path, []).append(item)
        return groups

    def volume_path(self, image_path: str) -> Path:
        path = Path(image_path)
        return path if path.is_absolute() else self.data_root / path


def load_dataset(path: str | Path, data_root: str | Path | None = None) -> Dataset:
    """Load a JSON or JSONL QA file. Raises `DatasetError` naming the file and line on bad input."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("dataset file not found", path)
    root = Path(data_root) if data_root is not None else path.parent
    if path.suffix == ".jsonl":
        items = list(_items_from_jsonl(path))
    else:
        items = list(_items_from_json(path))
    if not items:
        raise DatasetError("dataset has no questions", path)
    _check_unique(items, path)
    return Dataset(items=items, data_root=root.resolve(), source=str(path), name=path.stem)


def _items_from_json(path: Path) -> Iterator[QAItem]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DatasetError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path, line) from None
    data = _parse_json(text, path, None)
    if not isinstance(data, dict):
        raise DatasetError(
            f"expected an object of volume_name -> {{'qa_pairs': [...]}}, got {type(data).__name__}", path
        )
    for volume_name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("qa_pairs"), list):
            raise DatasetError(f"volume {volume_name!r}: expected {{'qa_pairs': [...]}}", path)
        for index, pair in enumerate(entry["qa_pairs"]):
            where = f"volume {volume_name!r}, pair {index}"
            if not isinstance(pair, dict):
                raise DatasetError(f"{where}: expected an object, got {type(pair).__name__}", path)
            image_path = pair.get("image_path") or entry.get("image_path") or volume_name
            yield _make_item(pair, volume_name, index, image_path, path, None, where)


def _items_from_jsonl(path: Path) -> Iterator[QAItem]:
    counters: dict[str, int] = {}
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(f"not UTF-8 text ({exc.reason} at column {exc.start + 1})", path, line_no) from None
            if not line.strip():
                continue
            row = _parse_json(line, path, line_no)
            if not isinstance(row, dict):
                raise DatasetError(f"expected an object, got {type(row).__name__}", path, line_no)
            image_path = row.get("image_path")
            case_id = row.get("case_id") or (Path(image_path).name if isinstance(image_path, str) else None)
            if not isinstance(case_id, str) or not case_id:
                raise DatasetError("row has neither 'case_id' nor 'image_path'", path, line_no)
            index = counters.get(case_id, 0)
            counters[case_id] = index + 1
            yield _make_item(row, case_id, index, image_path or case_id, path, line_no, "row")


def _parse_json(text: str, path: Path, line: int | None) -> Any:
    """`json.loads`, with a syntax error or nesting too deep to parse as a `DatasetError`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"malformed JSON: {exc.msg} (column {exc.colno})", path, line or exc.lineno) from None
    except RecursionError:
        raise DatasetError("JSON nested too deeply to parse", path, line) from None


def _make_item(row: dict, case_id: str, index: int, image_path: Any, path: Path, line: int | None, where: str) -> QAItem:
    for key in ("question", "answer"):
        if not isinstance(row.get(key), str):
            got = "missing" if key not in row else type(row[key]).__name__
            raise DatasetError(f"{where}: field {key!r} must be a string ({got})", path, line)
    if not isinstance(image_path, str) or not image_path:
        raise DatasetError(f"{where}: 'image_path' must be a non-empty string", path, line)
    options = row.get("options") or ()
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
        raise DatasetError(f"{where}: 'options' must be a list of strings", path, line)
    categories = row.get("category", row.get("categories")) or ()
    if isinstance(categories, str):
        categories = (categories,)
    if not isinstance(categories, (list, tuple)) or not all(isinstance(c, str) for c in categories):
        raise DatasetError(
            f"{where}: 'category' must be a string or a list of strings, got {categories!r:.60}", path, line
        )
    for key in ("question_id", "question_type"):
        if row.get(key) is not None and not isinstance(row[key], (str, int)):
            raise DatasetError(f"{where}: {key!r} must be a string, got {type(row[key]).__name__}", path, line)
    return QAItem(
        question_id=str(row.get("question_id") or f"{case_id}::{index}"),
        case_id=case_id,
        image_path=image_path,
        question=row["question"],
        answer=row["answer"],
        options=tuple(options),
        question_type=str(row.get("question_type") or ""),
        categories=tuple(categories),
    )


def _check_unique(items: Iterable[QAItem], path: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.question_id in seen:
            raise DatasetError(f"duplicate question id {item.question_id!r}", path)
        seen.add(item.question_id)
