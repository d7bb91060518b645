"""`bench run --control mirror-lr,shuffle,blank` on the phantom: real server processes, real gRPC.
The baselines show what the controls measure: geometric reads the volume, blind and chance do not."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from ctbench.cli import main as bench
from ctbench.evaluation import score_run
from ctbench.runners.run import RunConfig, run_benchmark

pytestmark = pytest.mark.slow
CONTROLS = ["mirror-lr", "shuffle", "blank"]


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def control_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("controls")
    result = run_benchmark(RunConfig(out_dir=out, servers="all", backend="local", phantom_volumes=12, controls=CONTROLS))
    return out, result


def test_geometric_reads_the_volume_and_blind_does_not(control_run):
    out, _ = control_run
    section = score_run(out).extra["controls"]
    mirror, reliance = section["mirror_consistency"], section["reliance"]
    assert mirror["geometric"]["flip"]["value"] >= 0.95 and mirror["geometric"]["flip"]["n"] == 24
    assert mirror["geometric"]["stay"]["value"] >= 0.95
    assert reliance["geometric"]["difference"] >= 0.4 and reliance["geometric"]["ci_low"] > 0
    assert mirror["blind"]["flip"]["value"] <= 0.05
    assert abs(reliance["blind"]["difference"]) <= 0.05


def test_chance_stays_at_chance_on_every_control(control_run):
    out, _ = control_run
    section = score_run(out).extra["controls"]
    rows = [r for r in section["rows"] if r["server"] == "chance" and r["group_kind"] == "all"]
    assert sorted(r["control"] for r in rows) == sorted(CONTROLS)
    for row in rows:  # two balanced options per question
        assert 0.35 <= row["real"] <= 0.65 and 0.35 <= row["control_accuracy"] <= 0.65, row
        assert row["ci_low"] <= 0 <= row["ci_high"], row
    geometric = {r["control"]: r for r in section["rows"] if r["server"] == "geometric" and r["group_kind"] == "all"}
    assert geometric["blank"]["control_accuracy"] <= 0.65  # air holds no nodule to find


def test_each_control_has_its_own_ledger_with_every_question_once(control_run):
    out, result = control_run
    ids = [json.loads(line)["question_id"] for line in (out / "dataset.jsonl").read_text().splitlines()]
    for control in CONTROLS:
        for server in result.servers:
            lines = _lines(out / "controls" / control / "predictions" / f"{server}.jsonl")
            assert Counter(line["question_id"] for line in lines) == Counter(ids)
            assert {line["control"] for line in lines} == {control}
    assert all(server.failure == "" for server in result.servers.values())


def test_the_mirrored_dataset_expects_the_other_side_and_uses_derived_volumes(control_run):
    out, _ = control_run
    real = {row["question_id"]: row for row in map(json.loads, (out / "dataset.jsonl").read_text().splitlines())}
    mirrored = {row["question_id"]: row for row in map(json.loads, (out / "controls/mirror-lr/dataset.jsonl").read_text().splitlines())}
    assert mirrored.keys() == real.keys()
    swap = {"left": "right", "right": "left"}
    for qid, row in mirrored.items():
        expected = swap.get(real[qid]["answer"], real[qid]["answer"])
        assert row["answer"] == expected and row["options"] == real[qid]["options"]
        assert row["image_path"] == "derived/" + real[qid]["image_path"]
        assert (out / "controls/mirror-lr" / row["image_path"]).is_file()
    shuffled = [json.loads(line) for line in (out / "controls/shuffle/dataset.jsonl").read_text().splitlines()]
    assert all(row["image_path"] != real[row["question_id"]]["image_path"] for row in shuffled)


def test_scores_carry_the_controls_into_summary_json_and_the_terminal(control_run):
    out, _ = control_run
    cli = CliRunner().invoke(bench, ["score", str(out)], env={"COLUMNS": "200"})
    assert cli.exit_code == 0, cli.output
    assert "Volume reliance: real − shuffled" in cli.output and "Mirror consistency" in cli.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["controls"]["controls"]) == set(CONTROLS)
    assert {r["group_kind"] for r in summary["controls"]["rows"]} == {"all", "category"}


def test_resuming_asks_nothing_again_and_derives_nothing_again(control_run):
    out, _ = control_run
    derived = sorted((out / "controls").glob("*/derived/**/*.nii.gz"))
    assert len(derived) == 24  # mirror-lr and blank, 12 volumes each; shuffle uses the real ones
    stamps = [p.stat().st_mtime_ns for p in derived]
    again = run_benchmark(RunConfig(out_dir=out, servers="all", backend="local", phantom_volumes=12, controls=CONTROLS))
    for server in again.servers.values():
        assert server.already_done == server.total == 120 * 4 and server.ok == 0
    assert [p.stat().st_mtime_ns for p in derived] == stamps


def test_an_unknown_control_is_refused_before_anything_starts(tmp_path):
    cli = CliRunner().invoke(bench, ["run", "--control", "mirror-lr,flip", "--out", str(tmp_path / "run")])
    assert cli.exit_code == 1
    assert "Unknown control 'flip'. Available: mirror-lr, shuffle, blank, noise" in cli.output
    assert not (tmp_path / "run").exists()
