"""`bench data ...` end to end through click: help everywhere, errors as `Error: ...`."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from ctbench.cli.data import data


def _walk(group, path=()):
    for name, command in group.commands.items():
        yield path + (name,), command
        if isinstance(command, click.Group):
            yield from _walk(command, path + (name,))


@pytest.mark.parametrize("path", [p for p, _ in _walk(data)], ids=lambda p: " ".join(p))
def test_every_data_command_has_help(path):
    result = CliRunner().invoke(data, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = dict(_walk(data))[path]
    assert command.help and command.help.strip()


def test_ct_spatialvqa_command_writes_the_manifest(tmp_path):
    src = tmp_path / "qa.json"
    src.write_text(json.dumps({"valid_1_a_1.nii.gz": {"qa_pairs": [{"question": "Which side?", "answer": "Left."}]}}))
    result = CliRunner().invoke(data, ["ct-spatialvqa", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["n_questions"] == 1


def test_library_errors_become_clean_cli_errors(tmp_path):
    src = tmp_path / "qa.json"
    src.write_text("{not json")
    result = CliRunner().invoke(data, ["ct-spatialvqa", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Error:" in result.output and "malformed JSON" in result.output


def test_filter_evaluate_prints_precision_recall_f1(published_dir):
    result = CliRunner().invoke(data, ["qa", "filter", "--evaluate", "--published-dir", str(published_dir), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["split"] == "heldout" and [d["name"] for d in figures["decisions"]] == ["kept", "removed"]
    assert all({"precision", "recall", "f1"} <= set(d) for d in figures["decisions"])


def test_categorize_evaluate_reports_every_category(published_dir):
    result = CliRunner().invoke(data, ["qa", "categorize", "--evaluate", "--published-dir", str(published_dir)])
    assert result.exit_code == 0, result.output
    for name in ("laterality", "longitudinal", "depth", "centricity", "adjacency", "extent", "micro"):
        assert name in result.output


def test_ct_rate_download_through_the_cli(fake_hub, tmp_path, monkeypatch):
    import numpy as np

    from ctbench.datasets.ct_rate import volume_repo_path
    from ctbench.preprocess.volume import Volume, save_volume

    save_volume(Volume(np.zeros((3, 4, 4), dtype=np.int16) - 1000), tmp_path / "v.nii.gz")
    fake_hub.add(volume_repo_path("valid_7_a_1.nii.gz"), (tmp_path / "v.nii.gz").read_bytes())
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps({"valid_7_a_1.nii.gz": {"qa_pairs": [{"question": "q", "answer": "a"}]}}))
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.endpoint)
    args = ["ct-rate", "download", str(qa), "--out", str(tmp_path / "out"), "--no-metadata"]
    bad = CliRunner().invoke(data, args + ["--token", "hf_wrong"])
    assert bad.exit_code == 1 and "token was rejected" in bad.output
    good = CliRunner().invoke(data, args + ["--token", fake_hub.good_token])
    assert good.exit_code == 0, good.output
    assert (tmp_path / "out" / "valid_7_a_1.nii.gz").is_file()


def test_qa_steps_exit_nonzero_when_units_fail_but_keep_the_rest(fake_llm, tmp_path):
    reports = tmp_path / "reports.json"
    reports.write_text(json.dumps({
        "valid_1_a_1.nii.gz": {"Findings_EN": "A nodule is in the right lung upper lobe. The left lung is clear.", "Impressions_EN": "Nodule."},
        "valid_2_a_1.nii.gz": {"Impressions_EN": "Normal."},
    }))
    fake_llm.reply = lambda messages: json.dumps([{"question": "Which lung?", "answer": "Right."}] * 1)
    args = ["qa", "generate", "--reports", str(reports), "--out", str(tmp_path / "qa"), "--llm", "openai:m", "--base-url", fake_llm.base_url]
    result = CliRunner().invoke(data, args)
    assert result.exit_code == 1 and "1 unit(s) failed" in result.output
    assert json.loads((tmp_path / "qa" / "qa_pairs_unfiltered.json").read_text())


def test_offline_filter_categorize_and_review_through_the_cli(tmp_path):
    qa = tmp_path / "qa_pairs_unfiltered.json"
    qa.write_text(json.dumps({"valid_1_a_1.nii.gz": {"qa_pairs": [
        {"question": "Which lung holds the nodule?", "answer": "The right lung."},
        {"question": "Is there any pericardial effusion?", "answer": "No pericardial effusion was detected."},
    ]}}))
    out = tmp_path / "qa"
    runner = CliRunner()
    assert runner.invoke(data, ["qa", "filter", str(qa), "--out", str(out)]).exit_code == 0
    assert runner.invoke(data, ["qa", "categorize", str(out / "qa_pairs.json"), "--out", str(out)]).exit_code == 0
    sheet = tmp_path / "sheet.csv"
    result = runner.invoke(data, ["qa", "validate", "export", str(out / "qa_pairs_with_categories.json"), "--out", str(sheet)])
    assert result.exit_code == 0 and "wrote 1 row" in result.output
    sheet.write_text(sheet.read_text().replace(",,,,,", ",accept,,,dr_a,", 1))
    result = runner.invoke(data, ["qa", "validate", "import", str(out / "qa_pairs_with_categories.json"), str(sheet)])
    assert result.exit_code == 0, result.output
    assert "consensus (majority keeps the pair): 100.0%" in result.output
