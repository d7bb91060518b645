"""The summary row: one (server, group, metric) figure with its interval and counts.

Every scorer (`scoring.py`, `text_scoring.py`, `jury_scoring.py`, `numeric_scoring.py`) builds
`SummaryRow`s; `ScoreResult.write` writes them as summary.csv (columns `SummaryRow.FIELDS`) and
summary.json (`rows`), and `read_summary_rows` reads either back. Rows are read by key as well
as by attribute (`row["value"]`, `row.value`), as the JSON form spells them.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from ctbench.errors import DatasetError
from ctbench.evaluation.intervals import clustered_proportion_ci
from ctbench.evaluation.metric_registry import METRICS


@dataclass(frozen=True)
class SummaryRow:
    server: str
    group_kind: str  # all | category | question_type
    group: str
    metric: str
    higher_is_better: bool
    value: float | None  # None: the metric was unavailable (the note says why)
    ci_low: float | None
    ci_high: float | None
    n: int  # questions in the group (the denominator)
    answered: int | None
    errors: int | None
    missing: int | None
    correct: float | None
    scored: int | None
    n_volumes: int | None
    note: str = ""

    FIELDS: ClassVar[tuple[str, ...]]

    def __getitem__(self, key: str) -> Any:
        if key not in self.FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.FIELDS else default

    def keys(self) -> tuple[str, ...]:
        return self.FIELDS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def with_note(self, text: str) -> SummaryRow:
        """This row with `text` appended to its note ('; '-separated)."""
        return replace(self, note=f"{self.note}; {text}" if self.note else text)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str | Path | None = None) -> SummaryRow:
        if not isinstance(data, dict):
            raise DatasetError(f"a summary row must be an object, got {type(data).__name__}", where)
        absent = [k for k in cls.FIELDS if k not in data]
        if absent:
            raise DatasetError(f"summary row lacks {', '.join(absent)}", where)
        return cls(**{k: data[k] for k in cls.FIELDS})

    @classmethod
    def figure(cls, server: str, kind: str, group: str, metric: str, value: float | None, *, n: int,
               ci_low: float | None = None, ci_high: float | None = None, answered: int | None = None,
               errors: int | None = None, missing: int | None = None, correct: float | None = None,
               scored: int | None = None, n_volumes: int | None = None, note: str = "") -> SummaryRow:
        """A figure of `metric`, whose direction is the metric's declaration (`metric_registry.py`)."""
        return cls(server=server, group_kind=kind, group=group, metric=metric,
                   higher_is_better=METRICS.get(metric).higher_is_better, value=value,
                   ci_low=ci_low, ci_high=ci_high, n=n, answered=answered, errors=errors, missing=missing,
                   correct=correct, scored=scored, n_volumes=n_volumes, note=note)

    @classmethod
    def proportion(cls, server: str, kind: str, group: str, metric: str, values: Sequence[float],
                   clusters: Sequence[str], **counts: Any) -> SummaryRow:
        """A proportion (or mean of [0, 1] values) with its clustered Wilson interval (a `figure`);
        `counts` gives n, answered, errors, missing, scored, correct, note (n defaults to
        len(values), scored to n, correct to the sum of values)."""
        ci = clustered_proportion_ci([float(v) for v in values], list(clusters))
        n = counts.pop("n", len(values))
        counts.setdefault("correct", int(sum(values)))
        counts.setdefault("scored", n)
        return cls.figure(server, kind, group, metric, ci.estimate, n=n, ci_low=ci.low, ci_high=ci.high,
                          n_volumes=ci.n_clusters, **counts)


SummaryRow.FIELDS = tuple(f.name for f in fields(SummaryRow))


def write_summary_csv(rows: Iterable[SummaryRow], path: str | Path) -> Path:
    out = Path(path)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SummaryRow.FIELDS)
        writer.writeheader()
        writer.writerows(row.to_json() for row in rows)
    return out


_INTS = {"n", "answered", "errors", "missing", "scored", "n_volumes"}
_FLOATS = {"value", "ci_low", "ci_high", "correct"}


def _from_csv_cell(key: str, text: str) -> Any:
    if key in _INTS or key in _FLOATS:
        if text == "":
            return None
        number = float(text)
        return int(number) if key in _INTS or (key == "correct" and number.is_integer()) else number
    if key == "higher_is_better":
        return text == "True"
    return text


def read_summary_rows(path: str | Path) -> list[SummaryRow]:
    """The rows of a summary.json (its `rows`) or summary.csv."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read summary: {exc.strerror or exc}", source) from None
    if source.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        absent = [k for k in SummaryRow.FIELDS if k not in (reader.fieldnames or ())]
        if absent:
            raise DatasetError(f"summary.csv lacks columns {', '.join(absent)}", source)
        return [SummaryRow(**{k: _from_csv_cell(k, r[k]) for k in SummaryRow.FIELDS}) for r in reader]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"summary is not JSON: {exc.msg} (line {exc.lineno})", source) from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise DatasetError("summary has no 'rows' list", source)
    return [SummaryRow.from_json(r, f"{source} row {i + 1}") for i, r in enumerate(rows)]
