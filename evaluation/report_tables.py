"""What the report's sections and figures share: the headline metric, the leaderboard rows, and
one way of writing a figure (percent, with its 95% interval)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ctbench.evaluation.metric_registry import METRICS, declared
from ctbench.evaluation.scoring import ScoreResult

#: The leaderboard's columns beside the headline (the jury as published, text metrics), in
#: declaration order; each one's header and scale are its declaration's (`metric_registry.py`).
LEADERBOARD_METRICS = tuple(spec.name for spec in declared() if spec.leaderboard)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]
    text: bool = False  # cells hold prose (questions, answers, messages): left-aligned, wrapped


@dataclass
class Section:
    """One section of the report, rendered alike to HTML and markdown."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # figure stems shown here, when they were drawn


def headline_metric(result: ScoreResult) -> str:
    """The jury where every server was judged, else accuracy (a leaderboard ranks one metric)."""
    judged = {r["server"] for r in result.rows if r["metric"] == "jury_accuracy" and r["group_kind"] == "all"}
    return "jury_accuracy" if judged and judged >= set(result.servers) else "accuracy"


def headline_label(result: ScoreResult) -> str:
    return METRICS.get(headline_metric(result)).label


def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v: Any, scale: float = 100.0) -> str:
    """A 0-1 fraction (or a value on another scale, times `scale`) as a percentage with one decimal."""
    return "–" if missing(v) else f"{scale * v:.1f}"


def pct_ci(row: dict[str, Any], scale: float = 100.0) -> str:
    """'value [low, high]' in percent; a value without an interval (corpus BLEU) alone."""
    if missing(row.get("value")):
        return "–"
    if missing(row.get("ci_low")) or missing(row.get("ci_high")):
        return pct(row["value"], scale)
    return f"{pct(row['value'], scale)} [{pct(row['ci_low'], scale)}, {pct(row['ci_high'], scale)}]"


def leaderboard_rows(result: ScoreResult) -> list[dict[str, Any]]:
    """Per server: the headline row's value and interval, plain accuracy and the counts, best first."""
    metric = headline_metric(result)
    out = []
    for s in result.servers:
        h = result.value(s, metric)
        acc = result.value(s, "accuracy")
        row = {"server": s, "headline": h["value"], "ci_low": h["ci_low"], "ci_high": h["ci_high"],
               "headline_row": h, "accuracy": acc["value"], "accuracy_row": acc, "n": acc["n"],
               "answered": acc["answered"], "errors": acc["errors"], "missing": acc["missing"]}
        for m in LEADERBOARD_METRICS:
            try:
                row[m] = result.value(s, m)
            except KeyError:
                pass
        out.append(row)
    return sorted(out, key=lambda r: -(r["headline"] or 0))
