"""The label table: what each value of a label map stands for.

Two file forms, the same content (one row per label value; value 0 is background and never listed):

* JSON ``{"labels": [{"value": 1, "name": "left kidney", "laterality": "left", "kind": "organ"}, ...]}``
  (a bare list of those objects is accepted too);
* CSV with the header ``value,name,laterality,kind``.

``name`` is how questions name the structure ("left kidney", "renal cyst"); ``laterality`` is
``left``, ``right``, ``midline`` or empty; ``kind`` is ``organ``, ``lesion`` or ``other`` and
decides which pairs are asked about (`templates.py`). Names and values are unique.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ctbench.errors import DatasetError

KINDS = ("organ", "lesion", "other")
LATERALITIES = ("left", "right", "midline", "")
LABEL_TABLE_SCHEMA = "ctbench.label_table/1"


@dataclass(frozen=True)
class Structure:
    value: int
    name: str
    laterality: str = ""
    kind: str = "organ"

    def to_json(self) -> dict:
        return asdict(self)


def _repeated(seen: Sequence[object]) -> list[str]:
    """The entries of `seen` that occur more than once, as sorted strings."""
    return sorted({str(v) for v in seen if seen.count(v) > 1})


@dataclass(frozen=True)
class LabelTable:
    structures: tuple[Structure, ...]

    def __post_init__(self) -> None:
        values = [s.value for s in self.structures]
        names = [s.name for s in self.structures]
        for what, duplicates in (("value", _repeated(values)), ("name", _repeated(names))):
            if duplicates:
                raise DatasetError(f"duplicate label {what}(s) {', '.join(duplicates)}")

    def by_value(self, value: int) -> Structure:
        for s in self.structures:
            if s.value == value:
                return s
        raise KeyError(value)

    def by_name(self, name: str) -> Structure:
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_json(self) -> dict:
        return {"schema": LABEL_TABLE_SCHEMA, "labels": [s.to_json() for s in self.structures]}

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return path


def structure_from_row(row: dict, path: Path, where: str) -> Structure:
    """One row of a label table, checked; `DatasetError` naming the file and row otherwise."""
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected an object, got {type(row).__name__}", path)
    raw_value = row.get("value")
    try:
        value = int(str(raw_value).strip())
    except ValueError:
        raise DatasetError(f"{where}: 'value' must be an integer label value, got {raw_value!r}", path) from None
    if value <= 0:
        raise DatasetError(f"{where}: 'value' must be positive (0 is background), got {value}", path)
    name = str(row.get("name") or "").strip()
    if not name:
        raise DatasetError(f"{where}: 'name' is missing or empty", path)
    laterality = str(row.get("laterality") or "").strip().lower()
    if laterality not in LATERALITIES:
        raise DatasetError(f"{where}: 'laterality' must be one of left/right/midline or empty, got {laterality!r}", path)
    kind = str(row.get("kind") or "organ").strip().lower()
    if kind not in KINDS:
        raise DatasetError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}", path)
    return Structure(value, name, laterality, kind)


def load_label_table(path: str | Path) -> LabelTable:
    """Read a label table (JSON or CSV, by suffix); `DatasetError` saying what and where."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("label table not found", path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        missing = {"value", "name"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"CSV header must have value,name[,laterality,kind]; missing {sorted(missing)}", path)
        rows = [(row, f"row {n}") for n, row in enumerate(reader, start=2)]
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"malformed JSON: {exc.msg}", path, exc.lineno) from None
        entries = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise DatasetError("expected {'labels': [...]} or a list of labels", path)
        rows = [(row, f"label {n}") for n, row in enumerate(entries)]
    if not rows:
        raise DatasetError("label table lists no labels", path)
    structures = tuple(structure_from_row(row, path, where) for row, where in rows)
    try:
        return LabelTable(structures)
    except DatasetError as exc:
        raise DatasetError(str(exc), path) from None
