"""Volume-control scoring without servers: the paired interval and mirror consistency."""
from __future__ import annotations

import pytest

from ctbench.datasets.qa_items import QAItem
from ctbench.evaluation.control_scores import mirror_consistency
from ctbench.evaluation.intervals import clustered_mean_ci, paired_difference_ci
from ctbench.evaluation.ledger import PredictionRecord
from ctbench.evaluation.scoring import score_item
from ctbench.runners.controls.prepare import mirrored_item

CLUSTERS = [f"v{i // 10}" for i in range(120)]  # 12 volumes of 10 questions


@pytest.mark.parametrize("value, low, high", [(0.0, -0.2425, 0.2425), (1.0, 0.7575, 1.0), (-1.0, -1.0, -0.7575)])
def test_a_paired_difference_without_spread_counts_volumes_not_a_zero_width_interval(value, low, high):
    ci = paired_difference_ci([value] * 120, CLUSTERS)
    assert ci.estimate == value
    assert ci.low == pytest.approx(low, abs=1e-3) and ci.high == pytest.approx(high, abs=1e-3)


def test_a_paired_difference_with_spread_is_the_clustered_interval():
    diffs = [1.0 if i % 3 == 0 else 0.0 for i in range(120)]
    assert paired_difference_ci(diffs, CLUSTERS) == clustered_mean_ci(diffs, CLUSTERS)


def _pair(question, answer, real_prediction, mirrored_prediction, options=(), case="v0"):
    real_item = QAItem(f"{case}::{question}", case, f"{case}.nii.gz", question, answer, tuple(options))
    mirrored = mirrored_item(real_item)
    real = score_item(real_item, PredictionRecord(real_item.question_id, real_prediction, "ok"), "m")
    control = score_item(mirrored, PredictionRecord(real_item.question_id, mirrored_prediction, "ok"), "m")
    return (real, control, mirrored), real_item


@pytest.mark.parametrize("real_prediction, mirrored_prediction, flipped", [
    ("The right lower lobe.", "In the left lower lobe", True),  # open answers: the sides named, not the wording
    ("The right lower lobe.", "The right lower lobe.", False),
    ("The right lower lobe.", "Both lower lobes, left and right", False),
    ("I cannot tell.", "left", False),  # a real answer naming no side cannot flip
])
def test_an_open_answer_flips_when_it_names_the_other_side(real_prediction, mirrored_prediction, flipped):
    pair, item = _pair("Where is the nodule?", "Right lower lobe", real_prediction, mirrored_prediction)
    result = mirror_consistency([pair], {item.question_id: item})
    assert result["flip"]["n"] == 1 and result["flip"]["count"] == int(flipped)
    assert result["stay"]["n"] == 0


def test_an_answer_that_should_not_change_counts_as_staying_when_the_same_option_is_picked():
    stays, item_a = _pair("Upper or lower?", "upper", "upper", "Upper.", options=["upper", "lower"])
    moves, item_b = _pair("Anterior or posterior?", "anterior", "anterior", "posterior", options=["anterior", "posterior"], case="v1")
    result = mirror_consistency([stays, moves], {item_a.question_id: item_a, item_b.question_id: item_b})
    assert (result["stay"]["n"], result["stay"]["count"], result["flip"]["n"]) == (2, 1, 0)


def test_an_unanswered_pair_is_counted_apart():
    (real, _control, item), real_item = _pair("Which lung?", "left", "left", "right", options=["left", "right"])
    failed = score_item(item, PredictionRecord(item.question_id, None, "error", {"code": "INTERNAL"}), "m")
    result = mirror_consistency([(real, failed, item)], {real_item.question_id: real_item})
    assert result["not_answered"] == 1 and result["flip"]["n"] == 0
