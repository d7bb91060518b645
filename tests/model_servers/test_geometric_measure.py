"""`geometric` on measured questions: decided from the words, declined with a typed error when it
does not segment what the question names."""
from __future__ import annotations

import pytest

from ctbench.datasets.measure.templates import TEMPLATES, match_question
from ctbench.errors import UnsupportedQuestion
from ctbench.model_servers.baselines.geometric_measure import answer_measured


def test_every_template_round_trips_through_its_pattern():
    for template in TEMPLATES:
        text = template.render("left kidney", "renal cyst" if template.scope == "pair" else None)
        matched = match_question(text)
        assert matched is not None and matched[0] == template, text
        assert matched[1] == "left kidney" and matched[2] == ("renal cyst" if template.scope == "pair" else None)


def test_phantom_questions_are_not_measured_ones():
    assert answer_measured("Which lung contains the pulmonary nodule?") is None


def test_a_structure_it_does_not_segment_is_declined_by_name():
    with pytest.raises(UnsupportedQuestion, match="pancreas"):
        answer_measured("What is the volume of the pancreas in mL?")


def test_a_structure_missing_from_the_volume_is_declined_when_answered():
    rule = answer_measured("What is the volume of the renal cyst in mL?")
    with pytest.raises(UnsupportedQuestion, match="could not find the renal cyst"):
        rule(None)
