"""SummaryRow: summary.csv and summary.json read back to the rows that were written."""
import json

import pytest

from ctbench.errors import DatasetError
from ctbench.evaluation.grouping import groups
from ctbench.evaluation.summary_row import SummaryRow, read_summary_rows, write_summary_csv


def _rows():
    a = SummaryRow.proportion("m", "all", "all", "accuracy", [1, 0, 1], ["v1", "v1", "v2"],
                              answered=3, errors=0, missing=0)
    b = SummaryRow(server="m", group_kind="all", group="all", metric="bleu", higher_is_better=True,
                   value=None, ci_low=None, ci_high=None, n=3, answered=3, errors=0, missing=0,
                   correct=None, scored=0, n_volumes=2, note="unavailable: no sacrebleu")
    c = SummaryRow.proportion("m", "all", "all", "mra", [0.5, 0.25], ["v1", "v2"])
    return [a, b, c]


def test_csv_and_json_round_trip(tmp_path):
    rows = _rows()
    write_summary_csv(rows, tmp_path / "summary.csv")
    (tmp_path / "summary.json").write_text(json.dumps({"rows": [r.to_json() for r in rows]}))
    assert read_summary_rows(tmp_path / "summary.json") == rows
    back = read_summary_rows(tmp_path / "summary.csv")
    assert [r.metric for r in back] == ["accuracy", "bleu", "mra"]
    assert back[0].correct == 2 and back[0].n_volumes == 2 and back[1].value is None
    assert back[0].value == pytest.approx(rows[0].value)


def test_rows_are_frozen_and_read_by_key():
    row = _rows()[0]
    assert row["value"] == row.value and row.get("absent", 7) == 7
    with pytest.raises(KeyError):
        row["absent"]
    with pytest.raises(AttributeError):
        row.value = 1.0  # type: ignore[misc]
    assert row.with_note("subset: 3 of 9 questions").note == "subset: 3 of 9 questions"


def test_bad_summary_says_where(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"rows": [{"server": "m"}]}))
    with pytest.raises(DatasetError, match="row 1.*lacks group_kind"):
        read_summary_rows(path)
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="not JSON"):
        read_summary_rows(path)


class _Q:
    def __init__(self, cats, qtype):
        self.categories, self.question_type = cats, qtype


def test_groups_all_then_categories_then_types():
    a, b, c = _Q(["Laterality"], "yes_no"), _Q(["laterality", "Size"], ""), _Q([], "open")
    out = groups([a, b, c], categories=lambda q: list(dict.fromkeys(x.lower() for x in q.categories)))
    assert [(k, g) for k, g, _ in out] == [("all", "all"), ("category", "laterality"), ("category", "size"),
                                           ("question_type", "open"), ("question_type", "yes_no")]
    assert out[1][2] == [a, b] and out[0][2] == [a, b, c]


def test_every_summary_metric_is_declared(small_run):
    from ctbench.errors import UnknownName
    from ctbench.evaluation.metric_registry import METRICS
    from ctbench.evaluation.scoring import score_run

    result = score_run(small_run)
    for row in result.rows:
        assert METRICS.get(row.metric).higher_is_better == row.higher_is_better
    with pytest.raises(UnknownName, match="Available"):
        METRICS.get("accuracyy")
