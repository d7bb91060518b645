"""Preflight and trial runs: nothing is streamed to a data root that lacks the volumes, a
stranger on an endpoint is refused, and --limit / --skip-missing-volumes run a labelled subset."""
from __future__ import annotations

import json

from click.testing import CliRunner
from runner_helpers import ledger_lines, write_qa

from ctbench.cli import main
from ctbench.evaluation import score_run
from ctbench.evaluation.tables import overall_table
from ctbench.runners.run import RunConfig, run_benchmark


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_data_root_without_the_volumes_stops_before_streaming_and_lists_them(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0", "v1", "v2"], present={"v0"})
    out = tmp_path / "run"
    result = invoke("run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "2 of 3 volumes cannot be read (4 of 6 questions)" in result.output
    assert "missing (2): " in result.output and str(tmp_path / "data" / "v1.nii.gz") in result.output
    assert "--skip-missing-volumes" in result.output
    assert ledger_lines(out, "chance") == []


def test_an_unreadable_volume_path_is_reported_with_the_missing_ones(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0", "loop"], present={"v0"})
    (tmp_path / "data" / "loop.nii.gz").symlink_to("loop.nii.gz")
    result = invoke("run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}", "--out", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert "unreadable (1): " in result.output and "symbolic links" in result.output


def test_skip_missing_volumes_runs_the_rest_and_scores_a_labelled_subset(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0", "v1", "v2"], present={"v0", "v2"})
    out = tmp_path / "run"
    result = invoke("run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}", "--out", str(out),
                    "--skip-missing-volumes")
    assert result.exit_code == 0, result.output
    assert "left out 1 of 3 volumes (2 questions) that cannot be read" in result.output and "v1.nii.gz" in result.output
    assert "subset: 4 of 6 questions" in result.output
    assert {line["question_id"] for line in ledger_lines(out, "chance")} == {"v0::0", "v0::1", "v2::0", "v2::1"}
    subset = json.loads((out / "run.json").read_text())["subset"]
    assert (subset["questions"], subset["of_questions"], subset["skipped_unreadable_volumes"], subset["skipped_questions"]) == (4, 6, 1, 2)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["subset"]["label"] == "subset: 4 of 6 questions" and summary["n_questions"] == 4
    assert all("subset: 4 of 6 questions" in row["note"] for row in summary["rows"])
    assert "subset: 4 of 6 questions" in overall_table(score_run(out)).title


def test_limit_takes_the_first_volumes_questions_in_dataset_order(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v2", "v0", "v1"])
    out = tmp_path / "run"
    result = run_benchmark(RunConfig(out_dir=out, dataset=str(dataset), endpoints={"chance": chance_endpoint}, limit=2))
    assert result.servers["chance"].ok == 4 and not result.servers["chance"].failure
    assert [line["question_id"] for line in ledger_lines(out, "chance")] == ["v2::0", "v2::1", "v0::0", "v0::1"]
    assert json.loads((out / "run.json").read_text())["subset"]["limit"] == 2
    assert score_run(out).subset_label == "subset: 4 of 6 questions"


def test_limit_with_skip_missing_volumes_counts_only_volumes_that_exist(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0", "v1", "v2", "v3"], present={"v0", "v2"})
    out = tmp_path / "run"
    result = run_benchmark(RunConfig(out_dir=out, dataset=str(dataset), endpoints={"chance": chance_endpoint}, limit=2,
                                     skip_missing_volumes=True))
    assert {line["question_id"] for line in ledger_lines(out, "chance")} == {"v0::0", "v0::1", "v2::0", "v2::1"}
    assert result.selection.left_out_volumes == ["v1.nii.gz"]  # v3 lies past the limit: not passed over
    assert result.selection.label == "subset: 4 of 8 questions"


def test_a_full_run_is_not_labelled_a_subset(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0"])
    out = tmp_path / "run"
    run_benchmark(RunConfig(out_dir=out, dataset=str(dataset), endpoints={"chance": chance_endpoint}, limit=5))
    assert "subset" not in json.loads((out / "run.json").read_text())
    assert score_run(out).subset_label == ""


def test_a_stranger_server_on_an_endpoint_is_refused(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0"])
    out = tmp_path / "run"
    result = invoke("run", "--dataset", str(dataset), "--endpoints", f"blind={chance_endpoint}", "--out", str(out),
                    "--no-score")
    assert result.exit_code == 2, result.output
    assert f"{chance_endpoint} answers as 'chance', not 'blind'" in result.output
    assert not [line for line in ledger_lines(out, "blind") if line["status"] == "ok"]


def test_a_dataset_that_does_not_validate_stops_before_streaming(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0"])
    rows = [json.loads(line) for line in dataset.read_text().splitlines()]
    rows[1]["answer"] = "   "
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke("run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}", "--out", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert "does not validate" in result.output and "v0::1: empty answer" in result.output
