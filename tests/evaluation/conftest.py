from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_run(run_dir: Path, items: list[dict], ledgers: dict[str, list[dict]]) -> Path:
    """A minimal run folder: dataset.jsonl plus predictions/<server>.jsonl."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "dataset.jsonl").open("w") as fh:
        for it in items:
            row = {"image_path": it["case_id"], "options": [], "question_type": "", "categories": [], **it}
            fh.write(json.dumps(row) + "\n")
    (run_dir / "predictions").mkdir(exist_ok=True)
    for server, lines in ledgers.items():
        with (run_dir / "predictions" / f"{server}.jsonl").open("w") as fh:
            for line in lines:
                fh.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return run_dir


def ok(qid: str, prediction, **extra) -> dict:
    return {"question_id": qid, "prediction": prediction, "status": "ok", "error": None, **extra}


def err(qid: str, message: str = "boom") -> dict:
    return {"question_id": qid, "prediction": None, "status": "error",
            "error": {"code": "INVALID_ARGUMENT", "type": "InvalidVolume", "message": message}}


class RunKit:
    """Helpers for writing run folders in tests (conftest is not importable under importlib mode)."""

    write_run = staticmethod(write_run)
    ok = staticmethod(ok)
    err = staticmethod(err)


@pytest.fixture
def kit() -> type[RunKit]:
    return RunKit


@pytest.fixture
def small_run(tmp_path: Path) -> Path:
    items = [
        {"question_id": "v1::0", "case_id": "v1", "question": "Which side?", "answer": "Left",
         "options": ["left", "right"], "question_type": "laterality", "categories": ["Laterality"]},
        {"question_id": "v1::1", "case_id": "v1", "question": "Is it above?", "answer": "yes",
         "options": ["yes", "no"], "question_type": "vertical", "categories": ["Longitudinal (Vertical) Position"]},
        {"question_id": "v2::0", "case_id": "v2", "question": "Which side?", "answer": "right",
         "options": ["left", "right"], "question_type": "laterality", "categories": ["Laterality & Bilateral Symmetry"]},
        {"question_id": "v2::1", "case_id": "v2", "question": "Describe.", "answer": "The liver.",
         "question_type": "open", "categories": []},
        {"question_id": "v3::0", "case_id": "v3", "question": "Which side?", "answer": "left",
         "options": ["left", "right"], "question_type": "laterality", "categories": ["Laterality & Bilateral Symmetry"]},
    ]
    ledgers = {
        "good": [ok("v1::0", "wrong first try"), ok("v1::0", "It is on the LEFT."), ok("v1::1", "Yes"),
                 ok("v2::0", "right"), ok("v2::1", "liver"), ok("v3::0", "left")],
        "flaky": [ok("v1::0", "left and right"), err("v1::1"), ok("v2::1", "the liver")],
    }
    return write_run(tmp_path / "run", items, ledgers)
