from __future__ import annotations

import json

from click.testing import CliRunner

from ctbench.cli.perf_ingest import ingest


def test_ingest_command_has_help_with_an_example():
    result = CliRunner().invoke(ingest, ["--help"])
    assert result.exit_code == 0 and "bench perf ingest" in result.output


FAKE_REPORT = {
    "shape": [8, 40, 40], "file_bytes": 1000, "threads": 2, "slice_resize_backend": "sitk",
    "shared_s": 1.0, "per_model_s": 3.5, "ratio": 3.5, "median_run_ratio": 3.4,
    "runs": [{"shared_s": 1.0, "per_model_s": 3.5, "ratio": 3.5}],
    "shared_breakdown_s": {"decode": 0.2, "Resample": 0.5}, "per_model_breakdown_s": {"decode": 1.6},
}


def test_ingest_command_passes_options_to_the_library_and_prints(monkeypatch, tmp_path):
    import ctbench.preprocess.benchmark as benchmark

    calls = []
    monkeypatch.setattr(benchmark, "ingest_benchmark", lambda **kw: calls.append(kw) or FAKE_REPORT)
    result = CliRunner().invoke(ingest, ["--shape", "8,40,40", "--repeats", "2", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert calls == [{"shape": (8, 40, 40), "repeats": 2, "workdir": str(tmp_path), "backend": "sitk"}]
    assert "ratio                 : 3.50x (best of each side; median of 1 runs 3.40x)" in result.output and "decode 0.20" in result.output
    result = CliRunner().invoke(ingest, ["--json"])
    assert json.loads(result.output)["ratio"] == 3.5


def test_ingest_command_rejects_a_bad_shape():
    result = CliRunner().invoke(ingest, ["--shape", "300,512"])
    assert result.exit_code == 2 and "three positive integers" in result.output
