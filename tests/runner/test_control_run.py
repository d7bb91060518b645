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


def test_geometric_answers_blank_volumes_with_typed_errors_never_internal(control_run):
    out, _ = control_run
    lines = _lines(out / "controls" / "blank" / "predictions" / "geometric.jsonl")
    assert lines
    errors = [line["error"] for line in lines if line["status"] == "error"]
    assert {e["code"] for e in errors} <= {"INVALID_ARGUMENT"}, Counter(e["code"] for e in errors)
    assert {e["type"] for e in errors} <= {"UnsupportedQuestion"}


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


def test_the_report_has_the_volume_control_section(control_run, tmp_path):
    from ctbench.evaluation.report import write_report

    out, _ = control_run
    files = write_report(score_run(out), tmp_path / "report", title="controls")
    page = files.html.read_text(encoding="utf-8")
    for title in ("Did the model read the volume? Volume controls", "Real − control accuracy per category",
                  "Mirror consistency (mirror-lr)"):
        assert title in page
    assert "Did the model read the volume?" in files.markdown.read_text(encoding="utf-8")


def test_a_volume_a_control_cannot_derive_fails_its_own_questions_and_the_rest_carry_on(tmp_path, chance_endpoint):
    import SimpleITK as sitk
    from runner_helpers import write_qa

    data = tmp_path / "data"
    qa = write_qa(data, ["a", "b"])
    sitk.WriteImage(sitk.Image([6, 6, 6], sitk.sitkInt16), str(data / "c.mha"))  # not NIfTI: no header to keep
    qa.write_text(qa.read_text() + json.dumps({"case_id": "c", "image_path": "c.mha", "question": "Which side?",
                                               "answer": "left", "options": ["left", "right"]}) + "\n")
    notes = []
    out = tmp_path / "run"
    result = run_benchmark(RunConfig(out_dir=out, dataset=str(qa), data_root=data, endpoints={"chance": chance_endpoint},
                                     controls=["blank"]), announce=notes.append)
    lines = {line["question_id"]: line for line in _lines(out / "controls/blank/predictions/chance.jsonl")}
    assert len(lines) == 5
    failed = [line for line in lines.values() if line["status"] == "error"]
    assert [line["image_path"] for line in failed] == ["derived/c.mha"]
    assert failed[0]["error"]["type"] == "InvalidVolume" and "c.mha" in failed[0]["error"]["message"]
    assert "NIfTI" in failed[0]["error"]["message"]
    assert all(line["status"] == "ok" for line in lines.values() if line["case_id"] != "c")
    assert any("1 volume(s) could not be derived" in note for note in notes)
    assert result.servers["chance"].failure == ""


def test_a_server_killed_during_a_control_is_restarted_and_every_control_question_answered_once(tmp_path, slow_registry, support_env):
    from runner_helpers import bench as bench_process
    from runner_helpers import kill9, wait_for

    out = tmp_path / "run"
    ledger = out / "controls" / "blank" / "predictions" / "slow.jsonl"
    proc = bench_process("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "local",
                         "--phantom-volumes", "6", "--restarts", "1", "--control", "blank", "--no-score", env=support_env)
    wait_for(lambda: ledger.is_file() and len(ledger.read_text().splitlines()) >= 8, 60, "the first control answers")
    kill9(int((out / "logs" / "slow.pid").read_text()))
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "server died (control blank); restarting (1/1)" in output
    lines = _lines(ledger)
    ids = [json.loads(line)["question_id"] for line in (out / "dataset.jsonl").read_text().splitlines()]
    effective = {line["question_id"]: line for line in lines}
    assert set(effective) == set(ids) and all(line["status"] == "ok" for line in effective.values())
    assert max(Counter(line["question_id"] for line in lines if line["status"] == "ok").values()) == 1


def test_a_seeded_control_resumes_only_with_its_seed(tmp_path, chance_endpoint):
    from runner_helpers import write_qa

    from ctbench.errors import PreflightError

    data = tmp_path / "data"
    qa = write_qa(data, ["a", "b", "c"])
    config = RunConfig(out_dir=tmp_path / "run", dataset=str(qa), data_root=data, endpoints={"chance": chance_endpoint},
                       controls=["noise"], control_seed=3)
    run_benchmark(config)
    config.control_seed = 4
    with pytest.raises(PreflightError, match="made with --control-seed 3, not 4"):
        run_benchmark(config)


def test_an_unusable_control_ledger_is_reported_and_the_rest_is_scored(control_run, tmp_path):
    import shutil

    out, _ = control_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("derived", "logs", "data"))
    (copy / "controls/blank/predictions/blind.jsonl").write_text("not json\n")
    section = score_run(copy).extra["controls"]
    assert "blind@blank" in section["ledger_issues"]
    assert {(r["server"], r["control"]) for r in section["rows"] if r["group_kind"] == "all"} >= {("blind", "shuffle"), ("geometric", "blank")}
    assert ("blind", "blank") not in {(r["server"], r["control"]) for r in section["rows"]}


def test_servers_get_the_derived_volume_and_one_that_takes_only_references_fails_only_those_questions(tmp_path, support_env):
    from runner_helpers import write_registry

    registry = write_registry(tmp_path / "registry.yaml", {
        "echo": {"model": "ctbench_test_models:EchoModel"},
        "echo-reference-only": {"model": "ctbench_test_models:ReferenceOnlyEchoModel"},
    })
    out = tmp_path / "run"
    result = run_benchmark(RunConfig(out_dir=out, servers="echo,echo-reference-only", registry=registry, backend="local",
                                     phantom_volumes=2, controls=["blank", "shuffle"]))
    assert all(server.failure == "" for server in result.servers.values())
    voxels = 96 * 96 * 64
    blank = _lines(out / "controls/blank/predictions/echo.jsonl")
    assert len(blank) == 20 and all(line["prediction"].endswith(f"|{-1000 * voxels}") for line in blank)
    real_sums = {line["image_path"]: line["prediction"].rsplit("|", 1)[1] for line in _lines(out / "predictions/echo.jsonl")}
    for line in _lines(out / "controls/shuffle/predictions/echo-reference-only.jsonl"):
        assert line["status"] == "ok" and line["prediction"].rsplit("|", 1)[1] == real_sums[line["image_path"]]
    refused = _lines(out / "controls/blank/predictions/echo-reference-only.jsonl")
    assert len(refused) == 20 and {line["error"]["type"] for line in refused} == {"UnsupportedTransport"}
    assert all(line["status"] == "ok" for line in _lines(out / "predictions/echo-reference-only.jsonl"))
