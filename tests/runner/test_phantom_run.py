"""`bench run --servers all` on the phantom benchmark: real server processes, real gRPC."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from runner_helpers import dataset_ids, ledger_lines

from ctbench.evaluation import score_run
from ctbench.runners.run import RunConfig, run_benchmark

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("run")
    result = run_benchmark(RunConfig(out_dir=out, servers="all", backend="local", phantom_volumes=12))
    return out, result


def test_every_question_has_exactly_one_prediction_per_server(phantom_run):
    out, result = phantom_run
    ids = dataset_ids(out)
    assert len(ids) == 120
    assert set(result.servers) == {"chance", "blind", "geometric"}
    for server in result.servers:
        lines = ledger_lines(out, server)
        counts = Counter(line["question_id"] for line in lines)
        assert set(counts) == set(ids)
        assert max(counts.values()) == 1
        assert all(line["status"] == "ok" for line in lines)


def test_geometric_reads_the_volume_and_the_controls_stay_at_chance(phantom_run):
    out, _ = phantom_run
    scores = score_run(out)
    accuracy = {server: scores.overall(server)["value"] for server in ("geometric", "blind", "chance")}
    assert accuracy["geometric"] >= 0.95, accuracy
    chance_level = 0.5  # every phantom question has two options, balanced across the set
    assert accuracy["blind"] <= chance_level + 0.1, accuracy
    assert accuracy["chance"] <= chance_level + 0.1, accuracy


def test_each_volume_is_read_once_per_run(phantom_run):
    out, result = phantom_run
    assert result.volume_reads == 12
    assert json.loads((out / "run.json").read_text())["volume_reads"] == 12


def test_ledger_records_carry_the_published_fields_and_timings(phantom_run):
    out, _ = phantom_run
    line = ledger_lines(out, "geometric")[0]
    for key in ("question_id", "case_id", "image_path", "question", "answer", "prediction", "status", "error", "timings", "server", "model_version"):
        assert key in line
    assert line["question_id"].startswith(line["case_id"] + "::")
    assert {"queue_ms", "preprocess_ms", "inference_ms", "roundtrip_ms"} <= set(line["timings"])


def test_rerunning_a_finished_run_asks_nothing_again(phantom_run):
    out, _ = phantom_run
    before = {s: len(ledger_lines(out, s)) for s in ("chance", "blind", "geometric")}
    result = run_benchmark(RunConfig(out_dir=out, servers="all", backend="local", phantom_volumes=12))
    assert all(r.already_done == 120 and r.ok == 0 for r in result.servers.values())
    assert {s: len(ledger_lines(out, s)) for s in before} == before


def test_inline_and_reference_transport_give_identical_predictions(phantom_run, tmp_path):
    out, _ = phantom_run
    result = run_benchmark(RunConfig(out_dir=tmp_path, servers="geometric", backend="local", transport="inline", phantom_volumes=12))
    assert result.servers["geometric"].ok == 120
    by_ref = {l["question_id"]: l["prediction"] for l in ledger_lines(out, "geometric")}
    inline = {l["question_id"]: l["prediction"] for l in ledger_lines(tmp_path, "geometric")}
    assert by_ref == inline
