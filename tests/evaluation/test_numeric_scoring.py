"""Numeric answers: number + unit from free text, accuracy within a tolerance, and MRA."""
from __future__ import annotations

import pytest

from ctbench.evaluation.numeric_parse import LENGTH, VOLUME, UnparseableNumber, parse_quantity, reference_quantity
from ctbench.evaluation.numeric_scoring import MRA_THRESHOLDS, mean_relative_accuracy, score_numeric


@pytest.mark.parametrize("text, kind, value", [
    ("41.0 mm", LENGTH, 41.0),
    ("about 3.5 cm", LENGTH, 35.0),
    ("Approximately 12-14 mm in diameter.", LENGTH, 13.0),
    ("3 to 4 cm", LENGTH, 35.0),
    ("between 3 and 4 cm", LENGTH, 35.0),
    ("3 – 4 centimetres", LENGTH, 35.0),
    ("~12", LENGTH, 12.0),  # a bare number takes the question's unit
    ("3,5 cm", LENGTH, 35.0),
    ("approximately 40 cc", VOLUME, 40.0),
    ("40 cm³", VOLUME, 40.0),
    ("40 cm^3", VOLUME, 40.0),
    ("roughly 1,502 mL", VOLUME, 1502.0),
    ("2500 mm3", VOLUME, 2.5),
    ("1.2 litres", VOLUME, 1200.0),
    ("The lesion is 2 cm long and measures 5 mL.", VOLUME, 5.0),  # the first quantity of the wanted kind
    ("roughly 12 milliliters", VOLUME, 12.0),
])
def test_numbers_and_units_are_read_from_free_text(text, kind, value):
    assert parse_quantity(text, kind).value == pytest.approx(value)


@pytest.mark.parametrize("text, kind, reason", [
    ("No significant abnormality.", LENGTH, "no number"),
    ("", VOLUME, "no number"),
    ("3 cm", VOLUME, "only length units"),
    ("40 mL", LENGTH, "only volume units"),
])
def test_unreadable_predictions_say_why(text, kind, reason):
    with pytest.raises(UnparseableNumber, match=reason):
        parse_quantity(text, kind)


def test_reference_answers_need_exactly_one_number_with_a_unit():
    assert reference_quantity("152.3 mL").kind == VOLUME
    with pytest.raises(UnparseableNumber):
        reference_quantity("left")


def test_mra_is_the_fraction_of_thresholds_passed():
    assert MRA_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    assert mean_relative_accuracy(0.0) == 1.0
    assert mean_relative_accuracy(0.32) == pytest.approx(0.4)  # below 1 - θ for θ = 0.50 ... 0.65
    assert mean_relative_accuracy(0.5) == 0.0
    assert mean_relative_accuracy(0.04) == pytest.approx(1.0)
    assert mean_relative_accuracy(0.07) == pytest.approx(0.9)  # misses θ = 0.95 only


@pytest.mark.parametrize("prediction, answer, within, mra", [
    ("4.4 cm", "41.0 mm", True, 0.9),  # 7.3% off: within 10%
    ("about 45 mm", "41.0 mm", True, 0.9),
    ("50 mm", "41.0 mm", False, 0.6),  # 22% off
    ("10 mL", "10.0 mL", True, 1.0),
    ("10 mm", "10.0 mL", False, 0.0),  # wrong kind of unit: unparseable
    (None, "10.0 mL", False, 0.0),
])
def test_score_numeric(prediction, answer, within, mra):
    score = score_numeric(prediction, answer)
    assert score.within_tolerance is within
    assert score.mra == pytest.approx(mra)
