"""`bench score RUN --log mlflow|wandb`, offline: MLflow's file store and W&B's offline mode,
each read back to check the run's config, summary metrics and per-question table arrived."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from runner_helpers import bench

from ctbench.cli import main
from ctbench.evaluation.tracking import metric_key, run_params

CARD = {"name": "good", "version": "good-1+authors", "weights": "m at 127.0.0.1:8000",
        "input": {"name": "lingshu", "variant": "authors"}, "generation": {"temperature": "0.0"}}


@pytest.fixture
def tracked_run(small_run: Path) -> Path:
    """The small run plus the run.json a runner writes (categories with characters trackers refuse)."""
    record = {"ctbench_version": "0.1.0", "backend": "local processes", "started_at": "2026-01-01T00:00:00+00:00",
              "dataset": {"name": "small", "sha256": "ab" * 32, "n_questions": 5,
                          "per_category": {"Laterality & Bilateral Symmetry": 2}, "per_volume": {"v1": 2}},
              "servers": {"good": {"ok": 6, "card": CARD}, "flaky": {"ok": 2, "card": {"name": "flaky"}}}}
    (small_run / "run.json").write_text(json.dumps(record))
    return small_run


def summary_value(run: Path, server: str, metric: str = "accuracy") -> float:
    rows = json.loads((run / "summary.json").read_text())["rows"]
    (row,) = [r for r in rows if (r["server"], r["group_kind"], r["metric"]) == (server, "all", metric)]
    return row["value"]


def check_table(rows: list[dict]) -> None:
    assert len(rows) == 10  # 2 servers x 5 questions, failed and missing ones included
    good = {r["question_id"]: r for r in rows if r["server"] == "good"}
    assert good["v1::0"]["prediction"] == "It is on the LEFT." and str(good["v1::0"]["correct"]) == "True"
    assert good["v1::0"]["question"] == "Which side?" and good["v1::0"]["answer"] == "Left"
    flaky = {r["question_id"]: r for r in rows if r["server"] == "flaky"}
    assert (flaky["v1::1"]["status"], flaky["v1::1"]["error_type"]) == ("error", "InvalidVolume")
    assert flaky["v3::0"]["status"] == "missing"


def test_mlflow_file_store_gets_config_metrics_and_the_question_table(tracked_run, tmp_path):
    pytest.importorskip("mlflow", reason="needs mlflow: pip install -e .[mlflow]")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_EXPERIMENT_NAME": "ctbench-test"}
    result = CliRunner().invoke(main, ["score", str(tracked_run), "--log", "mlflow"], env=env)
    assert result.exit_code == 0, result.output
    assert "logged to mlflow run" in result.output
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ctbench-test").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    params, metrics = run.data.params, run.data.metrics
    assert params["dataset.name"] == "small" and params["dataset.sha256"] == "ab" * 32
    assert params["dataset.per_category.Laterality_Bilateral_Symmetry"] == "2"
    assert "dataset.per_volume.v1" not in params
    assert params["run.backend"] == "local processes" and params["server.good.version"] == "good-1+authors"
    assert params["server.good.input"] == "lingshu/authors" and params["server.good.generation.temperature"] == "0.0"
    assert metrics["good/accuracy"] == pytest.approx(summary_value(tracked_run, "good"))
    assert metrics["flaky/accuracy"] == pytest.approx(summary_value(tracked_run, "flaky"))
    assert metrics["flaky/errors"] == 1 and metrics["flaky/missing"] == 2
    assert metrics["good/category/Laterality_Bilateral_Symmetry/accuracy"] == 1.0
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
        "run.json", "summary.csv", "summary.json", "per_question.csv"}
    table = Path(client.download_artifacts(run.info.run_id, "per_question.csv", str(tmp_path / "down")))
    with table.open(encoding="utf-8") as handle:
        check_table(list(csv.DictReader(handle)))


def test_wandb_offline_run_gets_config_summary_table_and_artifacts(tracked_run, tmp_path):
    pytest.importorskip("wandb", reason="needs wandb: pip install -e .[wandb]")
    from wandb_offline import offline_run

    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true", "WANDB_PROJECT": "ctbench-test",
           **{f"WANDB_{kind}_DIR": str(tmp_path / kind.lower()) for kind in ("CACHE", "DATA", "CONFIG", "ARTIFACT")}}
    process = bench("score", str(tracked_run), "--log", "wandb", env=env, cwd=tmp_path)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "logged to wandb run" in output and "offline" in output
    logged = offline_run(tmp_path)
    assert logged["config"]["dataset.name"] == "small" and logged["config"]["server.good.version"] == "good-1+authors"
    assert logged["summary"]["good/accuracy"] == pytest.approx(summary_value(tracked_run, "good"))
    assert logged["summary"]["flaky/errors"] == 1
    scores = [a for a in logged["artifacts"] if a["type"] == "ctbench-scores"]
    assert scores and set(scores[0]["files"]) >= {"run.json", "summary.csv", "summary.json", "per_question.csv"}
    (table_file,) = (logged["files"] / "media" / "table").glob("per_question_*.table.json")
    table = json.loads(table_file.read_text())
    check_table([dict(zip(table["columns"], row)) for row in table["data"]])


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_a_missing_extra_is_one_line_before_any_scoring(tracker, tracked_run, monkeypatch):
    monkeypatch.setitem(sys.modules, tracker, None)  # import fails as if not installed
    result = CliRunner().invoke(main, ["score", str(tracked_run), "--log", tracker])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: --log {tracker} needs the {tracker} package: install ctbench[{tracker}] " \
                                    f"(pip install 'ctbench[{tracker}]')"
    assert not (tracked_run / "summary.csv").exists()


def test_a_tracker_failure_says_the_scores_are_written(tracked_run, tmp_path):
    pytest.importorskip("mlflow", reason="needs mlflow: pip install -e .[mlflow]")
    env = {"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "false"}
    result = CliRunner().invoke(main, ["score", str(tracked_run), "--log", "mlflow"], env=env)
    assert result.exit_code == 1 and "the scores are written, but mlflow did not record them" in result.output
    assert (tracked_run / "summary.csv").exists()


def test_log_does_not_apply_to_the_reference_reproduction():
    result = CliRunner().invoke(main, ["score", "--reference", "--log", "mlflow"])
    assert result.exit_code == 2 and "--reference" in result.output


@pytest.mark.parametrize("parts, key", [
    (("good", "accuracy"), "good/accuracy"),
    (("m", "category", "Laterality & Bilateral Symmetry", "accuracy"), "m/category/Laterality_Bilateral_Symmetry/accuracy"),
    (("a/b", "question_type", "x (y)", "exact_match"), "a_b/question_type/x_y/exact_match"),
])
def test_metric_names_keep_only_what_both_trackers_accept(parts, key):
    assert metric_key(*parts) == key


def test_params_come_from_the_latest_attempt_when_run_json_keeps_attempts():
    record = {"dataset": {"name": "d"}, "attempts": [
        {"backend": "docker", "servers": {"s": {"card": {"version": "1"}}}},
        {"backend": "local", "servers": {"s": {"card": {"version": "2"}}}}]}
    params = run_params(record)
    assert params["run.attempts"] == "2" and params["run.backend"] == "local"
    assert params["server.s.version"] == "2" and params["dataset.name"] == "d"
