from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from ctbench.cli import main
from ctbench.errors import DatasetError
from ctbench.evaluation import score_run
from ctbench.evaluation.intervals import clustered_proportion_ci


def test_every_question_is_in_the_denominator(small_run):
    result = score_run(small_run)
    good = result.overall("good")
    assert (good["n"], good["answered"], good["errors"], good["missing"]) == (5, 5, 0, 0)
    assert good["correct"] == 5  # "liver" == "The liver." after normalization
    flaky = result.overall("flaky")
    assert (flaky["n"], flaky["answered"], flaky["errors"], flaky["missing"]) == (5, 2, 1, 2)
    assert flaky["correct"] == 1 and flaky["value"] == pytest.approx(0.2)


def test_last_ledger_line_wins_and_duplicates_are_counted(small_run):
    result = score_run(small_run)
    item = next(it for it in result.items if it.server == "good" and it.question_id == "v1::0")
    assert item.correct and item.option_index == 0
    assert result.issues["good"].duplicates == 1


def test_groups_per_category_and_question_type(small_run):
    result = score_run(small_run)
    rows = {(r["server"], r["group_kind"], r["group"], r["metric"]): r for r in result.rows}
    lat = rows[("good", "category", "Laterality & Bilateral Symmetry", "accuracy")]
    assert lat["n"] == 3 and lat["value"] == 1.0  # "Laterality" canonicalised into the six
    assert rows[("flaky", "question_type", "laterality", "accuracy")]["value"] == 0.0
    assert rows[("good", "all", "all", "option_match")]["n"] == 4
    for r in result.rows:
        assert r["ci_low"] <= r["value"] <= r["ci_high"]


def test_summary_files_written(small_run):
    result = score_run(small_run)
    paths = result.write(small_run)
    rows = list(csv.DictReader(paths[0].open()))
    assert {r["server"] for r in rows} == {"good", "flaky"}
    matrix = list(csv.reader(paths[2].open()))
    assert paths[2].name == "correctness_accuracy.csv" and matrix[0] == ["question_id", "flaky", "good"]
    assert len(matrix) == 6 and matrix[1] == ["v1::0", "0", "1"]  # ledgers are read in name order
    summary = json.loads(paths[1].read_text())
    assert summary["n_questions"] == 5 and summary["protocol"]["denominator"]


def test_bad_ledger_lines_are_reported_not_fatal(tmp_path, kit):
    ok, write_run = kit.ok, kit.write_run
    items = [{"question_id": "v::0", "case_id": "v", "question": "q", "answer": "a"},
             {"question_id": "v::1", "case_id": "v", "question": "q2", "answer": "b"}]
    run = write_run(tmp_path / "r", items, {"s": [ok("v::0", "a"), '{"question_id": "v::1", "predic',
                                                  ok("nope::9", "x"), ok("v::1", 7)]})
    result = score_run(run)
    issues = result.issues["s"]
    assert len(issues.unreadable) == 1 and issues.unknown_ids == ["nope::9"]
    assert issues.invalid_predictions == 1
    row = result.overall("s")
    assert (row["n"], row["answered"], row["errors"], row["correct"]) == (2, 1, 1, 1)


def test_published_subset_joined_by_identity_not_position(tmp_path, kit):
    write_run = kit.write_run
    items = [{"question_id": "valid_1_a_1.nii.gz::0", "case_id": "valid_1_a_1.nii.gz", "question": "Q one", "answer": "yes"},
             {"question_id": "valid_1_a_1.nii.gz::1", "case_id": "valid_1_a_1.nii.gz", "question": "Q two", "answer": "no"}]
    run = write_run(tmp_path / "r", items, {})
    extra = tmp_path / "m.jsonl"
    extra.write_text("\n".join(json.dumps(r) for r in [
        {"image_path": "/x/valid_1_a_1.npy", "question": "Q two", "answer": "no", "prediction": "No"},
        {"image_path": "/x/valid_1_a_1.npy", "question": "Q one", "answer": "yes", "prediction": "no"},
    ]) + "\n")
    result = score_run(run, [extra])
    assert result.overall("m")["correct"] == 1
    assert {it.question_id: it.correct for it in result.items} == {
        "valid_1_a_1.nii.gz::0": False, "valid_1_a_1.nii.gz::1": True}


def test_run_without_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="dataset.jsonl"):
        score_run(tmp_path)


def test_cluster_interval_is_wider_when_volumes_agree_internally():
    values = [1.0] * 10 + [0.0] * 10
    independent = clustered_proportion_ci(values, [str(i) for i in range(20)])
    clustered = clustered_proportion_ci(values, ["a"] * 10 + ["b"] * 10 + [])
    assert independent.estimate == clustered.estimate == 0.5
    assert clustered.high - clustered.low > independent.high - independent.low
    assert clustered.design_effect > 1


def test_bench_score_cli_prints_table_and_writes_summaries(small_run):
    res = CliRunner().invoke(main, ["score", str(small_run)])
    assert res.exit_code == 0, res.output
    assert "good" in res.output and "flaky" in res.output
    assert (small_run / "summary.csv").is_file() and (small_run / "summary.json").is_file()


def test_bench_score_cli_reports_library_errors(tmp_path):
    res = CliRunner().invoke(main, ["score", str(tmp_path)])
    assert res.exit_code == 1 and "dataset.jsonl" in res.output


def test_reference_folder_found_through_ctbench_shared(tmp_path, monkeypatch):
    from ctbench.evaluation.reference import load_reference_runs, locate_reference

    root = tmp_path / "shared" / "data" / "ct-spatialvqa"
    (root / "reference-runs" / "predictions").mkdir(parents=True)
    (root / "qa_pairs.json").write_text(json.dumps({"v.nii.gz": {"qa_pairs": [{"question": "q", "answer": "a"}]}}))
    monkeypatch.setenv("CTBENCH_SHARED", str(tmp_path / "shared"))
    assert locate_reference() == root.resolve()
    monkeypatch.setenv("CTBENCH_SHARED", str(root))
    assert load_reference_runs().dataset.items[0].question_id == "v.nii.gz::0"


def test_missing_reference_folder_is_a_clear_error(tmp_path, monkeypatch):
    from ctbench.evaluation.reference import load_reference_runs

    with pytest.raises(DatasetError, match="CTBENCH_SHARED"):
        load_reference_runs(tmp_path / "nowhere")
