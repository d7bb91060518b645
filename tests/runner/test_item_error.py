"""The error record: one type for every writer and reader, and the ledger's JSON form unchanged,
so ledgers written before it existed read (and resume) as they did."""
from __future__ import annotations

import json

import pytest

from ctbench.errors import InvalidVolume, QuestionTooLarge, UnsupportedTransport
from ctbench.runners.item_error import ItemError
from ctbench.runners.ledger import Ledger, PredictionRecord, read_ledger
from ctbench.v1 import answer_volume_question_pb2 as pb


# Lines as the runner wrote them before the error record had a type of its own: each error a
# {"code", "type", "message"} object built in place, the line's fields in the writer's order.
def _old_line(qid: str, attempt: int, ts: str, prediction=None, error=None, **question) -> dict:
    return {"question_id": qid, "case_id": qid.split(".")[0], "image_path": qid.split("::")[0],
            "question": question.get("question", "Which side?"), "answer": question.get("answer", "left"),
            "timings": question.get("timings", {}), "server": "chance", "model_version": question.get("version", ""),
            "options": question.get("options", []), "question_type": question.get("question_type", ""),
            "categories": question.get("categories", []), "attempt": attempt, "prediction": prediction,
            "status": "ok" if error is None else "error", "error": error, "ts": f"2026-11-30T10:00:{ts}+00:00"}


OLD_LEDGER = [
    _old_line("a.nii.gz::0", 1, "00.000", "left", timings={"roundtrip_ms": 12.5}, version="1",
              options=["left", "right"], question_type="laterality", categories=["Laterality"]),
    _old_line("a.nii.gz::1", 1, "00.100", error={"code": "INVALID_ARGUMENT", "type": "UnsupportedQuestion",
                                                 "message": "open questions are not supported"}),
    _old_line("b.nii.gz::0", 2, "01.000", error={"code": "DEADLINE_EXCEEDED", "type": "DeadlineExceeded",
                                                 "message": "no answer within the per-item deadline of 600s"}),
    _old_line("b.nii.gz::1", 1, "02.000", error={"code": "UNAVAILABLE", "type": "ServerUnavailable",
                                                 "message": "not asked: chance: server exited; re-run to retry"}),
]


def test_an_old_ledger_reads_as_before_and_writes_back_the_same_lines(tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in OLD_LEDGER), encoding="utf-8")
    records = read_ledger(old).records
    assert [r.to_json() for r in records.values()] == OLD_LEDGER
    assert records["a.nii.gz::1"].error == ItemError("INVALID_ARGUMENT", "UnsupportedQuestion",
                                                      "open questions are not supported")
    # resume: answers and item errors are settled; the deadline and the unasked ones are asked again
    assert {q: r.settled() for q, r in records.items()} == {
        "a.nii.gz::0": True, "a.nii.gz::1": True, "b.nii.gz::0": False, "b.nii.gz::1": False}
    again = Ledger(tmp_path / "again.jsonl")
    for record in records.values():
        again.append(record)
    again.close()
    assert [json.loads(line) for line in again.path.read_text(encoding="utf-8").splitlines()] == OLD_LEDGER


def test_every_constructor_writes_the_ledger_form():
    assert ItemError.of(InvalidVolume("a.nii.gz: not 3D")).to_json() == {
        "code": "INVALID_ARGUMENT", "type": "InvalidVolume", "message": "a.nii.gz: not 3D"}
    assert ItemError.of(QuestionTooLarge("q: too large\nsecond line"), "q: too large").to_json() == {
        "code": "RESOURCE_EXHAUSTED", "type": "QuestionTooLarge", "message": "q: too large"}
    assert ItemError.of(UnsupportedTransport("no inline")).code == "UNIMPLEMENTED"
    assert ItemError.deadline(2.5).to_json() == {
        "code": "DEADLINE_EXCEEDED", "type": "DeadlineExceeded", "message": "no answer within the per-item deadline of 2.5s"}
    assert ItemError.not_asked("not asked").to_json() == {"code": "UNAVAILABLE", "type": "ServerUnavailable",
                                                          "message": "not asked"}
    assert ItemError.invalid_prediction("line 3").to_json() == {"code": "DATA_LOSS", "type": "InvalidPrediction",
                                                                "message": "line 3"}
    status = pb.ItemStatus(code=3, error_type="UnsupportedQuestion", message="declined")
    assert ItemError.from_status(status) == ItemError("INVALID_ARGUMENT", "UnsupportedQuestion", "declined")
    assert ItemError.from_status(pb.ItemStatus(code=99, error_type="X", message="")).code == "99"


@pytest.mark.parametrize("value,expected", [
    ("a bare string", ItemError("UNKNOWN", "Error", "a bare string")),
    (None, ItemError("UNKNOWN", "Error", "status 'error' without details")),
    ({"code": "INTERNAL", "message": "no type"}, ItemError("INTERNAL", "", "no type")),
    ({}, ItemError("UNKNOWN", "", "")),
])
def test_an_error_that_is_not_a_full_record_still_reads(tmp_path, value, expected):
    path = tmp_path / "s.jsonl"
    row = {"question_id": "q", "status": "error", "prediction": None}
    if value is not None:
        row["error"] = value
    path.write_text(json.dumps(row) + "\n")
    record = read_ledger(path).records["q"]
    assert record.error == expected and record.settled()


def test_it_reads_by_key_as_its_json_form_spells_it():
    error = ItemError.deadline(1)
    assert (error["code"], error["type"], error["message"]) == (error.code, error.type, error.message)
    with pytest.raises(KeyError):
        error["line"]
    assert PredictionRecord("q", None, "error", error.to_json()).error == error  # given as JSON, read as a record
