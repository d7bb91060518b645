"""Measured questions end to end: phantom label maps -> `bench data qa measure` -> `bench run`
with real `geometric` and `blind` servers -> `bench score` with numeric scoring."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctbench.cli import main
from ctbench.datasets.measure.build import build_measured_dataset
from ctbench.datasets.phantom.generate import PhantomConfig, generate
from ctbench.evaluation import score_run
from ctbench.runners.run import RunConfig, run_benchmark

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("measured")
    phantom = generate(root / "phantom", PhantomConfig(n_volumes=4)).parent
    build_measured_dataset(phantom / "volumes", phantom / "labels", phantom / "labels" / "label_table.json", root / "data")
    out = root / "run"
    result = run_benchmark(RunConfig(out_dir=out, servers="geometric,blind", backend="local",
                                     dataset=str(root / "data" / "dataset.jsonl"), data_root=phantom / "volumes"))
    assert all(r.ok == r.total and r.total > 0 for r in result.servers.values()), result.servers
    return out


def test_geometric_answers_measured_questions_and_blind_does_not(measured_run):
    scores = score_run(measured_run)
    accuracy = {s: scores.overall(s)["value"] for s in ("geometric", "blind")}
    assert accuracy["geometric"] >= 0.97, accuracy
    assert accuracy["blind"] <= 0.6, accuracy
    numeric = {s: scores.overall(s, "numeric_accuracy")["value"] for s in ("geometric", "blind")}
    mra = {s: scores.overall(s, "mra")["value"] for s in ("geometric", "blind")}
    assert numeric["geometric"] >= 0.95 and mra["geometric"] >= 0.9, (numeric, mra)
    assert numeric["blind"] == 0.0 and mra["blind"] == 0.0, (numeric, mra)


def test_unparseable_predictions_are_listed_and_count_as_wrong(measured_run):
    scores = score_run(measured_run)
    unparseable = scores.extra["numeric"]["unparseable"]
    n_numeric = scores.overall("blind", "numeric_accuracy")["n"]
    assert len(unparseable["blind"]) == n_numeric  # "No significant abnormality." has no number
    assert unparseable["blind"][0]["reason"] == "no number"
    assert "geometric" not in unparseable


def test_bench_score_and_report_show_the_numeric_rows(measured_run):
    res = CliRunner().invoke(main, ["score", str(measured_run)])
    assert res.exit_code == 0, res.output
    summary = json.loads((measured_run / "summary.json").read_text())
    metrics = {row["metric"] for row in summary["rows"]}
    assert {"numeric_accuracy", "mra"} <= metrics
    res = CliRunner().invoke(main, ["report", str(measured_run)])
    assert res.exit_code == 0, res.output
    markdown = next(measured_run.glob("**/report.md")).read_text(encoding="utf-8")
    assert "Numeric answers" in markdown and "MRA" in markdown
