"""Med3DVLM (Qwen2.5-7B + DCFormer): a (1,1,128,256,256) volume and a plain-text prompt.

Loaded as the authors' demo does: `AutoTokenizer` / `AutoModelForCausalLM` with
trust_remote_code (bf16), then `vision_tower.bin` from the checkpoint folder into
`model.get_model().vision_tower`. The `published` variant reproduces the published harness:
that last step skipped (the vision tower keeps its initial weights) and the input min-max
scaled from raw HU; `authors` loads the tower and windows HU to [0,1] as training data were.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ctbench.model_servers.registry import MODELS
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsVLM

SAMPLED = {"do_sample": True, "top_p": 0.9, "temperature": 1.0, "max_new_tokens": 256}
IMAGE_TOKEN = "<im_patch>"
DEFAULT_PROJ_OUT_NUM = 256


def med3dvlm_prompt(question: str, proj_out_num: int = DEFAULT_PROJ_OUT_NUM) -> str:
    """`<im_patch>` x proj_out_num, then the question; no chat template (as upstream)."""
    return IMAGE_TOKEN * proj_out_num + question.strip()


@MODELS.register("med3dvlm")
class Med3DVLM(AuthorsVLM):
    name = "med3dvlm"
    weights_version = "Med3DVLM-Qwen-2.5-7B"
    description = "Med3DVLM (Qwen2.5-7B, DCFormer 3D encoder): whole volume at 128x256x256."
    license = "Not stated; upstream code for research purposes only"
    weights = "MagicXin/Med3DVLM-Qwen-2.5-7B"
    gpu_memory_bytes = 20 << 30
    generation_defaults = {"authors": dict(SAMPLED), "published": dict(SAMPLED)}
    extra_options = ()  # remote code ships with the weights: no checkout
    proj_out_num = DEFAULT_PROJ_OUT_NUM

    def load_model(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = str(self.weights_path)
        dtype = self.torch_dtype("bfloat16")
        self.tokenizer = AutoTokenizer.from_pretrained(path, model_max_length=512, padding_side="right",
                                                       use_fast=False, trust_remote_code=True)
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, **self.dtype_kwargs(str(dtype).removeprefix("torch.")))
        self.proj_out_num = int(getattr(model.config, "proj_out_num", DEFAULT_PROJ_OUT_NUM) or DEFAULT_PROJ_OUT_NUM)
        if self.harness == "authors":  # the step the published harness skipped
            state = torch.load(self.weights_path / "vision_tower.bin", map_location="cpu", weights_only=True)
            model.get_model().vision_tower.load_state_dict(state, strict=True)
        self.model = model.to(self.device(), dtype=dtype).eval()

    def build_prompt(self, item: QuestionItem) -> str:
        return med3dvlm_prompt(item.text, self.proj_out_num)

    def generate_one(self, prepared: np.ndarray, prompt: str) -> str:
        import torch

        image = torch.from_numpy(np.ascontiguousarray(prepared))[None, None].to(self.model.device, self.model.dtype)
        input_ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"].to(self.model.device)
        with torch.inference_mode():
            output = self.model.generate(images=image, inputs=input_ids, **self._sampling())
        return self.tokenizer.batch_decode(output, skip_special_tokens=True)[0]

    def _sampling(self) -> dict[str, Any]:
        s = self.settings
        return dict(max_new_tokens=s["max_new_tokens"], do_sample=s["do_sample"], top_p=s["top_p"], temperature=s["temperature"])
