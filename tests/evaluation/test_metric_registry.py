"""Every metric declared once (`metric_registry.py`), and everything that describes a metric read
from there: text metrics by name, the report's columns and scales, the terminal's table, the
jury's notes, `bench score --metrics offline`, check_runs' reading of summary.json."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from ctbench.errors import UnknownName
from ctbench.evaluation.metric_registry import METRICS, TEXT_METRICS, declared, register_metric
from ctbench.evaluation.report_tables import LEADERBOARD_METRICS
from ctbench.evaluation.tables import TEXT_METRIC_ORDER
from ctbench.evaluation.text_metrics import ALL_TEXT_METRICS, OFFLINE_TEXT_METRICS, Bleu, Rouge, TextMetric, metrics

REPO = Path(__file__).resolve().parents[2]


def test_each_text_metric_is_its_figures_declarations():
    assert ALL_TEXT_METRICS == ("bleu", "meteor", "rouge", "sbert", "alignscore")
    assert OFFLINE_TEXT_METRICS == ("bleu", "meteor", "rouge", "sbert")  # alignscore needs its venv
    for name in ALL_TEXT_METRICS:
        cls = metrics.get(name)
        assert issubclass(cls, TextMetric) and TEXT_METRICS.name_of(cls) == name
        for output in TEXT_METRICS.outputs(name):
            assert METRICS.get(output).text_metric == name
    assert Rouge().outputs == ("rouge1_f", "rouge2_f", "rougeL_f") and Bleu().outputs == ("bleu",)
    with pytest.raises(UnknownName, match="Available: alignscore, bleu, meteor, rouge, sbert"):
        metrics.get("rouge1_f")  # a figure, not a text metric


def test_a_class_derived_from_a_text_metric_is_that_metric():
    class QuietBleu(Bleu):
        def unavailable(self):
            return "not here"

    assert (QuietBleu().name, QuietBleu().outputs) == ("bleu", ("bleu",))


def test_the_report_and_terminal_columns_come_from_the_declarations():
    assert LEADERBOARD_METRICS == ("jury_accuracy_published", "bleu", "meteor", "rougeL_f", "sbert_cosine", "alignscore")
    assert [METRICS.get(m).label for m in LEADERBOARD_METRICS] == [
        "jury % (as published)", "BLEU (0–100)", "METEOR ×100", "ROUGE-L F1 ×100", "SBERT cosine ×100", "AlignScore ×100"]
    assert [METRICS.get(m).report_factor for m in LEADERBOARD_METRICS] == [100.0, 1.0, 100.0, 100.0, 100.0, 100.0]
    assert TEXT_METRIC_ORDER == ("jury_accuracy", "jury_accuracy_published", "bleu", "meteor", "rouge1_f", "rouge2_f",
                                 "rougeL_f", "sbert_cosine", "alignscore")
    assert {s.name for s in declared() if s.table == "numeric"} == {"numeric_accuracy", "mra"}


def test_a_declaration_names_a_known_scale_and_one_class_per_text_metric():
    with pytest.raises(ValueError, match="scale"):
        register_metric("percent_thing", scale="percent", label="x", protocol="x")
    with pytest.raises(ValueError, match="two classes"):
        register_metric("rouge3_f", scale="mean in [0, 1]", label="x", protocol="x", text_metric="rouge",
                        implementation="ctbench.evaluation.text_metrics:Bleu")
    assert "percent_thing" not in METRICS and "rouge3_f" not in METRICS


def test_jury_rows_take_direction_and_note_from_the_declarations(tmp_path, kit):
    from ctbench.evaluation.scoring import score_run

    items = [{"question_id": f"v{i}::0", "case_id": f"v{i}", "question": "Which side?", "answer": "left"}
             for i in range(3)]
    run = kit.write_run(tmp_path / "run", items, {"m": [kit.ok(it["question_id"], "left") for it in items]})
    judges = run / "judges"
    judges.mkdir()
    for judge in ("a", "b", "c"):  # published format: a JSON list, joined by position
        rows = [{"question": it["question"], "answer": it["answer"], "prediction": "left", "is_correct": True}
                for it in items]
        (judges / f"m.{judge}.json").write_text(json.dumps(rows))
    result = score_run(run)
    for metric in ("jury_accuracy", "jury_accuracy_published"):
        row = result.value("m", metric)
        assert row.note == METRICS.get(metric).protocol and row.higher_is_better is METRICS.get(metric).higher_is_better


def _check_runs():
    spec = importlib.util.spec_from_file_location("check_runs", REPO / "scripts" / "docker" / "check_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_runs_reads_the_summary_through_the_summary_reader(tmp_path, kit):
    from ctbench.evaluation.scoring import score_run

    items = [{"question_id": "v::0", "case_id": "v", "question": "Which side?", "answer": "left"}]
    run = kit.write_run(tmp_path / "run", items, {"a": [kit.ok("v::0", "left", answer="left")], "b": [kit.ok("v::0", "left", answer="left")]})
    (run / "run.json").write_text(json.dumps({"backend": "local processes", "servers": ["a", "b"],
                                              "dataset": {"n_questions": 1}}))
    score_run(run).write(run)
    check = _check_runs()
    assert check.check_run(run, "local", {"a": 1.0}) == []
    summary = json.loads((run / "summary.json").read_text())
    summary["rows"] = [r for r in summary["rows"] if r["server"] != "b"]  # "b" still named in servers and sources
    (run / "summary.json").write_text(json.dumps(summary))
    assert check.check_run(run, "local", {}) == ["b: no score in summary.json"]
