"""A volume whose NIfTI sform and qform disagree: warned once and recorded (run.json, report), or
refused with --conflicted-headers refuse before anything is streamed."""
from __future__ import annotations

import json

from click.testing import CliRunner
from nifti_files import mirror_left_right, ras_affine, write_nifti
from runner_helpers import ledger_lines, write_qa

from ctbench.cli import main
from ctbench.evaluation import score_run
from ctbench.evaluation.report import write_report
from ctbench.preprocess.orientation_probe import make_probe_volume


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _dataset_with_one_conflicted_volume(root):
    dataset = write_qa(root, ["v0", "v1"])
    probe = make_probe_volume("LPS")
    truth = ras_affine(probe)
    write_nifti(root / "v0.nii.gz", probe.array, sform=truth, qform=mirror_left_right(truth), sform_code=2, qform_code=1,
                pixdim=probe.spacing)
    return dataset


def test_a_conflicted_volume_is_warned_once_recorded_and_shown_in_the_report(tmp_path, chance_endpoint):
    dataset = _dataset_with_one_conflicted_volume(tmp_path / "data")
    out = tmp_path / "run"
    result = invoke("run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}", "--out", str(out))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "disagree" in line]
    assert len(warnings) == 1 and "v0.nii.gz" in warnings[0] and "sform (code 2)" in warnings[0], result.output
    headers = json.loads((out / "run.json").read_text())["volume_headers"]
    assert headers["policy"] == "warn" and headers["checked"] == 2
    assert list(headers["conflicts"]) == ["v0.nii.gz"]
    record = headers["conflicts"]["v0.nii.gz"]
    assert (record["transform"], record["sform_code"], record["qform_code"]) == ("sform", 2, 1)
    assert "axis i points the opposite way" in record["conflict"]
    assert len(ledger_lines(out, "chance")) == 4  # every question was still asked
    files = write_report(score_run(out), tmp_path / "report")
    markdown = files.markdown.read_text(encoding="utf-8")
    assert "## Volume headers" in markdown and "1 of 2 NIfTI volumes" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| v0.nii.gz"))
    assert "sform" in row and "axis i points the opposite way" in row


def test_refuse_stops_the_run_naming_the_file_and_both_transforms(tmp_path, chance_endpoint):
    dataset = _dataset_with_one_conflicted_volume(tmp_path / "data")
    out = tmp_path / "run"
    result = invoke("run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}", "--out", str(out),
                    "--conflicted-headers", "refuse")
    assert result.exit_code == 1, result.output
    assert str(tmp_path / "data" / "v0.nii.gz") in result.output
    assert "sform (code 2)" in result.output and "qform (code 1)" in result.output and "disagree" in result.output
    assert ledger_lines(out, "chance") == []


def test_a_run_without_conflicts_records_the_check_and_the_report_has_no_section(tmp_path, chance_endpoint):
    dataset = write_qa(tmp_path / "data", ["v0"])
    out = tmp_path / "run"
    result = invoke("run", "--dataset", str(dataset), "--endpoints", f"chance={chance_endpoint}", "--out", str(out),
                    "--conflicted-headers", "refuse")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text())["volume_headers"] == {"policy": "refuse", "checked": 1, "conflicts": {}}
    assert "Volume headers" not in write_report(score_run(out), tmp_path / "report").markdown.read_text(encoding="utf-8")
