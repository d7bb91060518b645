"""`qa validate`: export a review sheet, import filled sheets, agreement and the reviewed set."""
from __future__ import annotations

import csv
import json

import pytest

from ctbench.datasets.qa import review
from ctbench.errors import DatasetError


@pytest.fixture
def qa_file(tmp_path):
    path = tmp_path / "qa.json"
    pairs = [{"question": f"Where is finding {i}?", "answer": "Left."} for i in range(4)]
    path.write_text(json.dumps({"valid_1_a_1.nii.gz": {"qa_pairs": pairs}}))
    return path


def _fill(sheet, out, reviewer, verdicts, edits=None):
    rows = list(csv.DictReader(sheet.open()))
    for row, verdict in zip(rows, verdicts):
        row["verdict"], row["reviewer"] = verdict, reviewer
    for index, answer in (edits or {}).items():
        rows[index]["corrected_answer"] = answer
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=review.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_round_trip_gives_agreement_and_the_reviewed_set(qa_file, tmp_path):
    sheet = tmp_path / "sheet.csv"
    assert review.export_review(qa_file, sheet) == 4
    a = _fill(sheet, tmp_path / "a.csv", "dr_a", ["accept", "accept", "reject", "edit"], {3: "Right."})
    b = _fill(sheet, tmp_path / "b.csv", "dr_b", ["accept", "reject", "reject", "accept"])
    summary = review.apply_reviews(qa_file, review.import_reviews([a, b]), tmp_path / "reviewed.jsonl")
    assert summary["items_reviewed"] == 4 and summary["items_with_2plus_reviews"] == 4
    assert summary["all_reviewers_agree"] == 0.75
    assert summary["pairwise"]["dr_a vs dr_b"]["agreement"] == 0.75
    assert summary["consensus_keep_rate"] == 0.5  # ties (pair 1) are not kept
    rows = [json.loads(line) for line in (tmp_path / "reviewed.jsonl").read_text().splitlines()]
    assert [r["question_id"] for r in rows] == ["valid_1_a_1.nii.gz::0", "valid_1_a_1.nii.gz::3"]
    assert rows[1]["answer"] == "Right."


def test_sample_is_seeded(qa_file, tmp_path):
    review.export_review(qa_file, tmp_path / "s1.csv", sample=2, seed=3)
    review.export_review(qa_file, tmp_path / "s2.csv", sample=2, seed=3)
    assert (tmp_path / "s1.csv").read_text() == (tmp_path / "s2.csv").read_text()


@pytest.mark.parametrize(
    "verdicts, message",
    [(["maybe"], "verdict 'maybe' is not one of"), (["edit"], "verdict .edit. needs a corrected_question or corrected_answer")],
)
def test_bad_sheets_name_the_line(qa_file, tmp_path, verdicts, message):
    sheet = tmp_path / "sheet.csv"
    review.export_review(qa_file, sheet)
    filled = _fill(sheet, tmp_path / "bad.csv", "x", verdicts)
    with pytest.raises(DatasetError, match=f"bad.csv:2: {message}"):
        review.import_reviews([filled])


def test_reviews_of_unknown_questions_are_refused(qa_file, tmp_path):
    reviews = [review.Review("other::0", "x", "accept")]
    with pytest.raises(DatasetError, match="not in the QA set"):
        review.apply_reviews(qa_file, reviews, tmp_path / "out.jsonl")
