"""Lingshu-7B (Qwen2.5-VL) as MedEvalKit runs it: 32 windowed axial slices at native size.

Loaded with `Qwen2_5_VLForConditionalGeneration` and `AutoProcessor`; no MedEvalKit code is
needed at inference. The processor smart-resizes each slice (512x512 -> 504x504, 324 tokens).
Greedy (MedEvalKit's temperature 0 -> do_sample False), 256 new tokens. `authors` reorients the
volume to display orientation; `published` uses it as stored (nibabel (z,y,x), as the published
harness did): the same input only for volumes stored LPS.
"""
from __future__ import annotations

from ctbench.model_servers.vlm_common.slice_vlm import SliceVLM

GREEDY = {"do_sample": False, "max_new_tokens": 256, "top_p": 0.001}


class Lingshu(SliceVLM):
    weights_version = "lingshu-7b"
    description = "Lingshu-7B (Qwen2.5-VL): 32 uniform axial slices, 3 CT windows as RGB, per-volume prefix reuse."
    license = "Not confirmed (Qwen2.5-VL base: Apache-2.0)"
    weights = "lingshu-medical-mllm/Lingshu-7B"
    model_class = "Qwen2_5_VLForConditionalGeneration"
    mrope = True
    gpu_memory_bytes = 32 << 30  # bf16 weights ~16.6 GB + 32-slice prefix caches at batch 16
    generation_defaults = {"authors": dict(GREEDY), "published": dict(GREEDY)}

    def load_processor(self, path: str):
        from ctbench.model_servers.vlm_common.qwen_processor import load_qwen_processor

        return load_qwen_processor(path)
