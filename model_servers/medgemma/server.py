"""MedGemma 1.5 4B-it: 85 windowed axial slices as images, one user turn, greedy decoding.

Loaded as the authors do (`AutoProcessor` + `AutoModelForImageTextToText`, which resolves to
`Gemma3ForConditionalGeneration`). The `published` variant differs only in the red window
(-1225, 1025) the published run script used; the authors' notebook uses (-1024, 1024).
"""
from __future__ import annotations

from ctbench.model_servers.vlm_common.slice_vlm import SliceVLM

GREEDY = {"do_sample": False, "max_new_tokens": 512, "min_new_tokens": 4}


class MedGemma(SliceVLM):
    weights_version = "medgemma-1.5-4b-it"
    description = "MedGemma 1.5 4B-it (Gemma 3): 85 uniform axial slices, 3 CT windows as RGB, per-volume prefix reuse."
    license = "Health AI Developer Foundations terms of use"
    weights = "google/medgemma-1.5-4b-it"
    model_class = "AutoModelForImageTextToText"
    mrope = False
    gpu_memory_bytes = 24 << 30  # bf16 weights ~8.6 GB + 85-slice prefix caches at batch 16
    generation_defaults = {"authors": dict(GREEDY), "published": dict(GREEDY)}
