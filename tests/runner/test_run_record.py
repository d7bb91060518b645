"""run.json keeps every attempt on a run folder; a resume never loses the first one's cards."""
from __future__ import annotations

import json
import platform
import socket

from click.testing import CliRunner
from runner_helpers import write_qa

import ctbench
from ctbench.cli import main
from ctbench.runners.run import RunConfig, run_benchmark


def test_a_resume_appends_an_attempt_and_keeps_the_first_ones_cards(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0", "v1"])
    out = tmp_path / "run"
    config = RunConfig(out_dir=out, dataset=str(dataset), endpoints={"chance": chance_endpoint},
                       command=["bench", "run", "--out", str(out)])
    run_benchmark(config)
    first = json.loads((out / "run.json").read_text())
    run_benchmark(config)  # nothing left to ask: no Describe, no volume read
    record = json.loads((out / "run.json").read_text())

    assert len(record["attempts"]) == 2
    assert record["attempts"][0] == first["attempts"][0]
    one = record["attempts"][0]
    assert one["servers"]["chance"]["card"]["name"] == "chance"
    assert one["volume_reads"] == 2 and record["volume_reads"] == 2
    assert record["servers"]["chance"]["card"]["name"] == "chance"  # the latest known card
    assert record["attempts"][1]["servers"]["chance"]["already_done"] == 4
    assert one["command"] == f"bench run --out {out}"
    assert one["ctbench_version"] == ctbench.__version__
    assert one["host"] == socket.gethostname() and one["python"] == platform.python_version()
    assert {"grpcio", "protobuf", "numpy"} <= set(one["packages"])
    assert one["started_at"] <= one["finished_at"] <= record["attempts"][1]["started_at"]
    assert one["backend"] == record["backend"] == "already-running endpoints (--endpoints)"
    assert "dataset" not in one and record["dataset"]["n_questions"] == 4  # the manifest, once


def test_a_checkout_records_its_git_commit(tmp_path, chance_endpoint, repo_root):
    out = tmp_path / "run"
    run_benchmark(RunConfig(out_dir=out, dataset=str(write_qa(tmp_path / "data", ["v0"])),
                            endpoints={"chance": chance_endpoint}))
    git = json.loads((out / "run.json").read_text())["attempts"][0]["git"]
    if not (repo_root / ".git").exists():
        assert git is None
    else:
        assert len(git["commit"]) == 40 and isinstance(git["dirty"], bool)


def test_a_run_json_from_before_attempts_becomes_the_first_attempt(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0"])
    out = tmp_path / "run"
    out.mkdir()
    old_card = {"name": "chance", "version": "0"}
    (out / "run.json").write_text(json.dumps({
        "ctbench_version": "0.0.9", "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
        "dataset": {"name": "qa"}, "backend": "local processes", "volume_reads": 1,
        "servers": {"chance": {"ok": 2, "card": old_card}}, "skipped": {},
    }))
    run_benchmark(RunConfig(out_dir=out, dataset=str(dataset), endpoints={"chance": chance_endpoint}))
    attempts = json.loads((out / "run.json").read_text())["attempts"]
    assert attempts[0]["started_at"] == "2026-01-01T00:00:00+00:00" and attempts[0]["servers"]["chance"]["card"] == old_card
    assert len(attempts) == 2


def test_bench_report_shows_the_attempts(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0"])
    out = tmp_path / "run"
    config = RunConfig(out_dir=out, dataset=str(dataset), endpoints={"chance": chance_endpoint},
                       command=["bench", "run", "--marker-of-this-test"])
    run_benchmark(config)
    run_benchmark(config)
    result = CliRunner().invoke(main, ["report", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    markdown = (out / "report" / "report.md").read_text(encoding="utf-8")
    section = markdown.split("## Run attempts", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if "--marker-of-this-test" in line]
    assert len(rows) == 2
    assert "chance [chance 1]: 2 answered, 0 errors" in rows[0] and "2 earlier" in rows[1]
    assert "--marker-of-this-test" in (out / "report" / "report.html").read_text(encoding="utf-8")
