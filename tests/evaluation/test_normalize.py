from __future__ import annotations

import pytest

from ctbench.evaluation.categories import CATEGORIES, canonical_category
from ctbench.evaluation.normalize import exact_match, match_option, normalize_answer


@pytest.mark.parametrize("text, expected", [
    ("The Left kidney.", "left kidney"),
    ("  an   apple, a pear ", "apple pear"),
    ("RIGHT!!", "right"),
    ("Anterior\u2013posterior", "anterior posterior"),
    ("", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_punctuation_articles():
    assert exact_match("the Left.", "left")
    assert not exact_match("left side", "left")


OPTIONS = ["left", "right", "left and right"]


@pytest.mark.parametrize("prediction, expected", [
    ("Left", 0),
    ("It is on the right side.", 1),
    ("Both: left and right.", 2),       # the longer option wins over its parts
    ("(B)", 1),                          # bare option letter
    ("b.", 1),
    ("left, or maybe right", None),      # two options mentioned: ambiguous
    ("unsure", None),                    # none mentioned
    ("", None),
    ("leftward", None),                  # whole words only
])
def test_match_option_picks_exactly_one(prediction, expected):
    assert match_option(prediction, OPTIONS) == expected


def test_match_option_letter_not_used_when_an_option_is_a_letter():
    assert match_option("a", ["a", "b"]) is None or match_option("B", ["A", "B"]) == 1


@pytest.mark.parametrize("label", ["Medial-Lateral Orientation", "medial lateral orientation (centricity)"])
def test_near_miss_category_labels_are_canonicalised(label):
    assert canonical_category(label) == CATEGORIES[3]


def test_unknown_category_label_is_kept():
    assert canonical_category(" size comparison ") == "size comparison"
