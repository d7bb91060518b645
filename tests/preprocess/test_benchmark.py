from __future__ import annotations

from ctbench.preprocess.benchmark import ingest_benchmark, make_ct_like_volume


def test_ct_like_volume_is_int16_with_air_body_and_bone():
    volume = make_ct_like_volume((4, 64, 64))
    assert volume.array.dtype.name == "int16" and volume.array.shape == (4, 64, 64)
    assert volume.array.min() <= -1000 and volume.array.max() >= 600


def test_ingest_benchmark_reports_both_sides_and_identical_outputs(tmp_path):
    report = ingest_benchmark(shape=(12, 48, 48), repeats=1, workdir=tmp_path, warm_up=False)
    assert len(report["presets"]) == 8
    assert report["shared_s"] > 0 and report["per_model_s"] > 0
    assert abs(report["ratio"] - report["per_model_s"] / report["shared_s"]) < 0.02
    assert "decode" in report["shared_breakdown_s"] and "Resize" in report["per_model_breakdown_s"]
    assert report["max_output_difference"] < 1e-3  # same arrays, different amount of work
    assert (tmp_path / "ct_like.nii.gz").exists()
    assert len(report["runs"]) == 1 and report["runs"][0]["shared_s"] == report["shared_s"]
