"""The GPU benchmark script runs end to end on a CPU with a tiny model (its figures mean nothing
here; the test checks the script, so the GPU host can trust it)."""
from __future__ import annotations

import pytest

from ctbench.model_servers.vlm_common.bench_vlm import run_benchmark, table


@pytest.mark.parametrize("model", ["medgemma", "lingshu"])
def test_benchmark_measures_both_paths_at_each_batch_size(model, tiny_weights, tmp_path):
    results = run_benchmark(model, "tiny", [1, 3], volumes=1, questions=3, max_new_tokens=2,
                            weights=tiny_weights[model], num_slices=3, slice_size="32x32", workdir=tmp_path)
    assert [(r.reuse, r.batch_size) for r in results] == [(False, 1), (False, 3), (True, 1), (True, 3)]
    for r in results:
        assert r.questions == 3 and r.questions_per_s > 0 and r.wall_s > 0
        assert r.vision_s > 0 and r.model_s > 0 and 0 < r.model_busy_fraction <= 1
        assert r.device == "cpu" and r.peak_gpu_bytes == 0
    assert all(r.prefix_s > 0 for r in results if r.reuse)
    assert all(r.prefix_s == 0 for r in results if not r.reuse)
    assert "| q/s |" in table(results)


def test_full_size_configs_have_the_published_parameter_counts():
    """Built on the meta device (no memory): MedGemma 1.5 4B has ~4.30B parameters, Lingshu-7B
    (Qwen2.5-VL-7B) ~8.29B."""
    import torch
    from transformers import Gemma3ForConditionalGeneration, Qwen2_5_VLForConditionalGeneration

    from ctbench.model_servers.vlm_common.random_weights import lingshu_parts, medgemma_parts

    with torch.device("meta"):
        gemma = Gemma3ForConditionalGeneration(medgemma_parts("full")[1])
        qwen = Qwen2_5_VLForConditionalGeneration(lingshu_parts("full")[1])
    assert abs(sum(p.numel() for p in gemma.parameters()) / 1e9 - 4.30) < 0.02
    assert abs(sum(p.numel() for p in qwen.parameters()) / 1e9 - 8.29) < 0.02
