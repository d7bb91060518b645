"""Bad input gets a clear error that says what and where, and the rest carries on."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner
from runner_helpers import ledger_lines

from ctbench.cli import main
from ctbench.preprocess.volume import Volume, save_volume
from ctbench.runners.run import RunConfig, run_benchmark


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_unknown_server_name_lists_the_available_ones(tmp_path):
    result = invoke("run", "--servers", "geometric,nosuch", "--out", str(tmp_path / "r"), "--backend", "local")
    assert result.exit_code == 1
    assert "Unknown server 'nosuch'" in result.output and "geometric" in result.output


def test_missing_dataset_file_is_named(tmp_path):
    result = invoke("run", "--dataset", str(tmp_path / "nope.json"), "--out", str(tmp_path / "r"), "--backend", "local")
    assert result.exit_code == 1
    assert "nope.json" in result.output and "not found" in result.output


@pytest.mark.parametrize(
    "name,content,expected",
    [
        ("broken.jsonl", '{"case_id": "a", "image_path": "a.nii.gz", "question": "q", "answer": "x"}\n{"case_id": \n', "broken.jsonl:2: malformed JSON"),
        ("noanswer.jsonl", '{"case_id": "a", "image_path": "a.nii.gz", "question": "q"}\n', "noanswer.jsonl:1: row: field 'answer' must be a string (missing)"),
        ("broken.json", '{"a.nii.gz": {"qa_pairs": [{"question": "q", "answer": "x"},]}}', "broken.json:1: malformed JSON"),
        ("shape.json", '{"a.nii.gz": [1, 2]}', "volume 'a.nii.gz': expected {'qa_pairs': [...]}"),
        ("dup.jsonl", '{"question_id": "x", "case_id": "a", "question": "q", "answer": "x"}\n' * 2, "duplicate question id 'x'"),
    ],
)
def test_malformed_dataset_says_file_and_line(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    result = invoke("run", "--dataset", str(path), "--out", str(tmp_path / "r"), "--backend", "local")
    assert result.exit_code == 1
    assert expected in result.output, result.output


def _write_bad_volumes(root: Path) -> list[dict]:
    """One good volume and every kind of bad one that exists, as JSONL rows (a missing volume
    stops the run before it streams: tests/runner/test_preflight.py)."""
    save_volume(Volume(np.zeros((20, 20, 20), np.int16)), root / "good.nii.gz")
    good = (root / "good.nii.gz").read_bytes()
    (root / "truncated.nii.gz").write_bytes(good[: len(good) // 2])
    (root / "text.nii.gz").write_text("this is not a NIfTI file")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((20, 20), np.int16)), str(root / "flat.nii.gz"))
    nan = np.full((8, 8, 8), np.nan, np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(nan), str(root / "nan.nii.gz"))
    names = ["good", "truncated", "text", "flat", "nan"]
    return [{"case_id": f"{n}.nii.gz", "image_path": f"{n}.nii.gz", "question": "Is it there?", "answer": "yes", "options": ["yes", "no"]} for n in names]


EXPECTED_VOLUME_ERRORS = {
    "truncated.nii.gz::0": ("INVALID_ARGUMENT", "InvalidVolume", "truncated.nii.gz"),
    "text.nii.gz::0": ("INVALID_ARGUMENT", "InvalidVolume", "not a readable image"),
    "flat.nii.gz::0": ("INVALID_ARGUMENT", "NotThreeDimensional", "expected a 3D volume, got 2D"),
    "nan.nii.gz::0": ("INVALID_ARGUMENT", "NonFiniteVoxels", "NaN or infinite"),
}


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["reference", "inline"])
def test_bad_volumes_become_per_question_errors_and_good_ones_are_answered(tmp_path, transport):
    root = tmp_path / "data"
    root.mkdir()
    rows = _write_bad_volumes(root)
    dataset = root / "qa.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    run_benchmark(RunConfig(out_dir=out, servers="geometric", dataset=str(dataset), backend="local", transport=transport))
    records = {l["question_id"]: l for l in ledger_lines(out, "geometric")}
    assert set(records) == {f"{r['case_id']}::0" for r in rows}
    assert records["good.nii.gz::0"]["error"] is None or records["good.nii.gz::0"]["error"]["type"] == "UnsupportedQuestion"
    for qid, (code, type_name, text) in EXPECTED_VOLUME_ERRORS.items():
        error = records[qid]["error"]
        assert (error["code"], error["type"]) == (code, type_name), (qid, error)
        assert text in error["message"], (qid, error["message"])


def test_port_in_use_is_reported_by_bench_serve(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = invoke("serve", "chance", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
