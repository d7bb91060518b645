"""The offline spatial filter and category tagger, and their agreement with the published LLM."""
from __future__ import annotations

import pytest

from ctbench.datasets import categories as C
from ctbench.datasets.qa import agreement, rules


@pytest.mark.parametrize(
    "question, answer",
    [
        ("Which side shows the pleural effusion?", "The right side."),
        ("Where is the nodule located?", "In the left lung lower lobe posterobasal segment."),
        ("Are the consolidations unilateral or bilateral?", "Bilateral."),
        ("Are there enlarged lymph nodes in the prevascular region?", "No enlarged lymph nodes were detected."),
        ("What is the vertical position of the atelectasis?", "In the lower lobes."),
    ],
)
def test_spatial_pairs_are_kept(question, answer):
    assert rules.spatial_filter(question, answer).value is True


@pytest.mark.parametrize(
    "question, answer",
    [
        ("Is there any pericardial effusion?", "No pericardial effusion was detected."),
        ("Are the bilateral adrenal glands normal?", "Yes, they are normal."),
        ("Are there lytic or destructive lesions in the bones?", "No lytic-destructive lesions were detected."),
        ("What is the condition of the trachea?", "The trachea is open."),
    ],
)
def test_non_spatial_pairs_are_removed(question, answer):
    assert rules.spatial_filter(question, answer).value is False


def test_filter_says_why():
    decision = rules.spatial_filter("Where is the nodule?", "In the right upper lobe.")
    assert "location-question" in decision.reasons


@pytest.mark.parametrize(
    "question, answer, expected",
    [
        ("Which side is the effusion on?", "Left.", {C.LATERALITY}),
        ("Which lobe holds the nodule?", "The upper lobe.", {C.LONGITUDINAL}),
        ("Is the lesion anterior or posterior?", "Posterior.", {C.DEPTH}),
        ("Is the emphysema central or peripheral?", "Peripheral.", {C.CENTRICITY}),
        ("What lies adjacent to the fissure?", "A nodule.", {C.ADJACENCY}),
        ("How far does the mass extend?", "It extends diffusely.", {C.EXTENT}),
    ],
)
def test_tagger_finds_each_category(question, answer, expected):
    assert expected <= set(rules.tag_categories(question, answer).value)


def test_split_is_stable_and_about_thirty_percent():
    names = [f"valid_{i}_a_1.nii.gz" for i in range(2000)]
    held = sum(agreement.split_of(n) == "heldout" for n in names)
    assert 0.25 < held / len(names) < 0.35
    assert agreement.split_of("valid_1000_a_1.nii.gz") == agreement.split_of("valid_1000_a_1.nii.gz")


def test_agreement_counts_are_exact_on_a_small_table():
    pairs = [agreement.LabelledPair("v", q, "a", label) for q, label in [("k1", True), ("k2", True), ("r1", False), ("r2", False)]]
    result = agreement.evaluate_filter(pairs, lambda q, a: q in ("k1", "r1"), split="all")
    kept, removed = result["decisions"]
    assert (kept["tp"], kept["fp"], kept["fn"], kept["tn"]) == (1, 1, 1, 1)
    assert kept["precision"] == kept["recall"] == 0.5 and removed["f1"] == 0.5


def test_published_labels_and_held_out_agreement(published_dir):
    labels = agreement.filter_labels(published_dir / "qa_pairs_unfiltered.json", published_dir / "qa_pairs.json")
    assert sum(p.label for p in labels) == 9077  # every published pair is a kept pair
    held = agreement.evaluate_filter(labels, lambda q, a: rules.spatial_filter(q, a).value, "heldout")
    assert held["n_pairs"] > 4000
    # Loose floors: a regression guard, not the reported figure (see BENCHMARKS.md).
    assert held["accuracy"] > 0.85
    cats = agreement.evaluate_categories(
        agreement.category_labels(published_dir / "qa_pairs_with_categories.json"),
        lambda q, a: rules.tag_categories(q, a).value, "heldout",
    )
    assert cats["micro"]["f1"] > 0.8
