"""Scoring of questions whose answer is a number with a unit (the measured question types).

Per item: the prediction's quantity (`numeric_parse.parse_quantity`, in the reference's kind of
unit) against the reference's, as a relative error |p - r| / r.

* **numeric accuracy**: relative error within `DEFAULT_TOLERANCE` (10%); this is also the
  item's headline `correct` in `bench score` (`scoring.score_item`).
* **MRA** (mean relative accuracy, as VSI-Bench scores numeric answers): the fraction of the
  thresholds θ = 0.50, 0.55, ..., 0.95 at which the relative error is below 1 - θ.

An unparseable prediction, an error or a missing answer scores 0 on both, and the unparseable
ones are listed in summary.json (``numeric.unparseable``) with the reason.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ctbench.datasets.measure.templates import NUMERIC_QUESTION_TYPES
from ctbench.datasets.qa_items import QAItem
from ctbench.evaluation.metric_registry import MRA_THRESHOLDS, NUMERIC_TOLERANCE
from ctbench.evaluation.numeric_parse import UnparseableNumber, parse_quantity, reference_quantity
from ctbench.evaluation.summary_row import SummaryRow

DEFAULT_TOLERANCE = NUMERIC_TOLERANCE  # 10%, as `numeric_accuracy` and `accuracy` are declared


def is_numeric(item: QAItem) -> bool:
    """A question scored as a number: a measured open question type, no options."""
    return item.question_type in NUMERIC_QUESTION_TYPES and not item.options


@dataclass(frozen=True)
class NumericScore:
    relative_error: float | None  # None: unparseable, error or missing
    within_tolerance: bool
    mra: float
    reason: str = ""  # why the prediction could not be read


def relative_error(prediction: float, reference: float) -> float:
    if reference == 0:
        return 0.0 if prediction == 0 else math.inf
    return abs(prediction - reference) / abs(reference)


def mean_relative_accuracy(error: float, thresholds: Sequence[float] = MRA_THRESHOLDS) -> float:
    return sum(error < 1.0 - t for t in thresholds) / len(thresholds)


def score_numeric(prediction: str | None, answer: str, tolerance: float = DEFAULT_TOLERANCE) -> NumericScore:
    """One prediction against a measured reference answer ("152.3 mL")."""
    if prediction is None:
        return NumericScore(None, False, 0.0, "no answer")
    reference = reference_quantity(answer)
    try:
        predicted = parse_quantity(prediction, reference.kind)
    except UnparseableNumber as exc:
        return NumericScore(None, False, 0.0, str(exc))
    error = relative_error(predicted.value, reference.value)
    return NumericScore(error, error <= tolerance + 1e-12, mean_relative_accuracy(error))


def numeric_rows(items, questions: dict[str, QAItem], servers: Sequence[str], tolerance: float = DEFAULT_TOLERANCE) -> tuple[list[SummaryRow], dict[str, Any]]:
    """Rows `numeric_accuracy` and `mra` per server (of `ItemScore`s `items`), overall and per
    question type, over the numeric questions; and the JSON section (protocol, unparseable
    predictions per server). MRA's interval is the clustered Wilson interval applied to a mean of
    values in [0, 1]: an approximation."""
    from ctbench.evaluation.scoring import _row, item_groups

    rows: list[SummaryRow] = []
    unparseable: dict[str, list[dict[str, str]]] = {}
    for server in servers:
        mine = [it for it in items if it.server == server and is_numeric(questions[it.question_id])]
        if not mine:
            continue
        scores = {}
        for it in mine:
            answered = it.prediction if it.status == "ok" else None
            scores[it.question_id] = score_numeric(answered, questions[it.question_id].answer, tolerance)
            if it.status == "ok" and scores[it.question_id].relative_error is None:
                unparseable.setdefault(server, []).append(
                    {"question_id": it.question_id, "prediction": answered or "", "reason": scores[it.question_id].reason})
        for kind, group, members in item_groups(mine):
            if kind == "category":
                continue
            rows.append(_row(server, kind, group, "numeric_accuracy", members,
                             [scores[it.question_id].within_tolerance for it in members]))
            mra = _row(server, kind, group, "mra", members, [scores[it.question_id].mra for it in members])
            rows.append(replace(mra, correct=sum(scores[it.question_id].mra for it in members)))
    section = {
        "tolerance_relative": tolerance, "mra_thresholds": list(MRA_THRESHOLDS),
        "question_types": sorted(NUMERIC_QUESTION_TYPES), "unparseable": unparseable,
    }
    return rows, section
