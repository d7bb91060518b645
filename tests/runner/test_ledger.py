"""One ledger, one truth: one reader for resume and scoring, bad lines reported and asked again,
a dying runner thread fails the run, and a run folder has one runner at a time."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner
from runner_helpers import ledger_lines, write_qa

from ctbench.cli import main
from ctbench.errors import RunFolderLocked
from ctbench.evaluation import score_run
from ctbench.runners import run as run_module
from ctbench.runners.ledger import Ledger, PredictionRecord, read_ledger
from ctbench.runners.run import RunConfig, run_benchmark
from ctbench.runners.run_lock import RunFolderLock

OK = '{"question_id": "v0::0", "status": "ok", "prediction": "yes", "error": null}'

BAD_LINES = [
    (b"\xff\xfe{}", "not UTF-8 (byte 0xff at column 1)"),
    (b"null", "expected an object, got null"),
    (b"[]", "expected an object, got a list"),
    (b'{"question_id": ["v0::0"], "status": "ok", "prediction": "yes"}', "question_id is a list, not a non-empty string"),
    (b'{"question_id": "", "status": "ok", "prediction": "yes"}', "question_id is a string, not a non-empty string"),
    (b'{"question_id": "v0::0", "prediction": "yes"}', "no 'status'"),
    (b'{"question_id": "v0::0", "status": "fine", "prediction": "yes"}', "status 'fine' is not 'ok' or 'error'"),
    (b'{"question_id": "v0::0", "status": "ok", "predic', "malformed JSON"),
    (b"[" * 100000, "JSON nested too deeply"),
]


@pytest.mark.parametrize("raw,why", BAD_LINES, ids=[why for _, why in BAD_LINES])
def test_a_bad_line_is_reported_with_its_line_and_skipped(tmp_path, raw, why):
    path = tmp_path / "s.jsonl"
    path.write_bytes(OK.encode() + b"\n" + raw + b"\n" + OK.replace("v0::0", "v0::1").encode() + b"\n")
    contents = read_ledger(path)
    assert set(contents.records) == {"v0::0", "v0::1"}
    assert [n for n, _ in contents.bad_lines] == [2]
    assert why in contents.bad_lines[0][1]
    assert contents.problems()[0].startswith(f"{path}:2: ")


@pytest.mark.parametrize("line", [
    '{"question_id": "q", "status": "ok"}',
    '{"question_id": "q", "status": "ok", "prediction": null}',
    '{"question_id": "q", "status": "ok", "prediction": ["yes"]}',
])
def test_ok_without_a_string_prediction_is_not_settled(tmp_path, line):
    path = tmp_path / "s.jsonl"
    path.write_text(line + "\n")
    record = read_ledger(path).records["q"]
    assert record.status == "error" and record.error["type"] == "InvalidPrediction"
    assert not record.settled()


@pytest.mark.parametrize("code,settled", [("INVALID_ARGUMENT", True), ("NOT_FOUND", True), ("UNAVAILABLE", False),
                                          ("DEADLINE_EXCEEDED", False), ("DATA_LOSS", False)])
def test_settled_means_answered_or_an_error_of_the_item_itself(code, settled):
    record = PredictionRecord("q", None, "error", {"code": code, "type": "X", "message": ""})
    assert record.settled() is settled
    assert record.settled(retry_errors=True) is False
    assert PredictionRecord("q", "yes", "ok").settled(retry_errors=True)


def test_a_record_round_trips_through_its_json_form(tmp_path):
    record = PredictionRecord("v::0", "left", "ok", None, extra={"server": "s", "timings": {"roundtrip_ms": 1.5}})
    ledger = Ledger(tmp_path / "s.jsonl")
    ledger.append(record)
    ledger.close()
    back = read_ledger(tmp_path / "s.jsonl").records["v::0"]
    assert (back.prediction, back.status, back.error, back.line) == ("left", "ok", None, 1)
    assert back.extra["server"] == "s" and back.extra["timings"] == {"roundtrip_ms": 1.5} and "ts" in back.extra


def test_a_complete_last_line_without_its_newline_is_kept_by_reader_and_writer_alike(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(OK)
    assert set(read_ledger(path).records) == {"v0::0"}
    Ledger(path).close()
    assert path.read_text() == OK + "\n"


def test_resume_reports_bad_ledger_lines_and_asks_their_questions_again(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0", "v1", "v2"])  # v0::0 ... v2::1
    out = tmp_path / "run"
    ledger = out / "predictions" / "chance.jsonl"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"\n".join([
        b"\xff\xfe not text",
        b"null",
        b"[]",
        b'{"question_id": ["v0::0"], "status": "ok", "prediction": "yes"}',
        b'{"question_id": "v0::1", "prediction": "yes"}',
        b'{"question_id": "v1::0", "status": "ok"}',
        b'{"question_id": "v2::0", "status": "ok", "prediction": "no", "error": null}',
    ]) + b"\n")
    messages: list[str] = []
    result = run_benchmark(RunConfig(out_dir=out, dataset=str(dataset), endpoints={"chance": chance_endpoint}),
                           announce=messages.append)
    chance = result.servers["chance"]
    assert (chance.already_done, chance.ok, chance.errors, chance.failure) == (1, 5, 0, "")
    said = "\n".join(messages)
    assert f"{ledger}:1: not UTF-8" in said and f"{ledger}:2: expected an object, got null" in said
    assert "1 ledger line(s) say ok without a prediction" in said
    effective = {line["question_id"]: line for line in ledger_lines_tolerant(ledger)}
    assert all(effective[q]["status"] == "ok" for q in ("v0::0", "v0::1", "v1::0", "v1::1", "v2::0", "v2::1"))
    scores = score_run(out)  # scoring reads the same lines the same way
    assert [n for n, _ in scores.issues["chance"].unreadable] == [1, 2, 3, 4, 5]
    assert scores.overall("chance")["answered"] == 6


def ledger_lines_tolerant(path) -> list[dict]:
    """The lines that are JSON objects with a string id (the bad ones this test wrote are skipped)."""
    rows = []
    for raw in path.read_bytes().splitlines():
        try:
            row = json.loads(raw)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("question_id"), str) and "status" in row:
            rows.append(row)
    return rows


def test_a_runner_thread_that_dies_fails_the_run_and_says_why(tmp_path, chance_endpoint, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("a bug in the runner")

    monkeypatch.setattr(run_module, "_run_server", explode)
    dataset = write_qa(tmp_path / "data", ["v0"])
    result = CliRunner().invoke(main, ["run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}",
                                       "--out", str(tmp_path / "run"), "--no-score"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "chance: runner thread died: RuntimeError: a bug in the runner" in result.output


def test_a_ledger_the_runner_cannot_open_fails_that_server_and_the_run(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0"])
    out = tmp_path / "run"
    (out / "predictions" / "chance.jsonl").mkdir(parents=True)  # a folder where the ledger should be
    result = CliRunner().invoke(main, ["run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}",
                                       "--out", str(out), "--no-score"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "IsADirectoryError" in result.output and "chance.jsonl" in result.output


def test_a_second_runner_on_a_run_folder_refuses_and_names_the_holder(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0"])
    out = tmp_path / "run"
    with RunFolderLock(out):
        result = CliRunner().invoke(main, ["run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}",
                                           "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 1
    assert f"is in use by another runner (pid {os.getpid()} on host {socket.gethostname()}" in result.output
    assert ledger_lines(out, "chance") == []
    run_benchmark(RunConfig(out_dir=out, dataset=str(dataset), endpoints={"chance": chance_endpoint}))  # released
    assert len(ledger_lines(out, "chance")) == 2


def test_the_lock_is_held_across_processes_and_dies_with_its_holder(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from ctbench.runners.run_lock import RunFolderLock;"
         " RunFolderLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderLocked, match=f"pid {holder.pid} on host"):
            RunFolderLock(out).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunFolderLock(out).acquire().release()
