"""Med3DVLM (Qwen2.5-7B + DCFormer): a (1,1,128,256,256) volume and a plain-text prompt.

Loaded as the authors' demo does at the pinned commit: `AutoTokenizer` / `AutoModelForCausalLM`
with trust_remote_code (bf16). Upstream's "fixed model loading issue" commit (32f92ea) removed
the separate `vision_tower.bin` step and renamed the DCFormer `gamma` parameters to `scale`
(transformers renames `gamma` keys on load, so they never loaded). `authors` fails loudly when
the load leaves any parameter at random init, except that vision-tower parameters missing from
the safetensors (remote code still naming them `gamma`) are filled from `vision_tower.bin` by
a strict load of that exact file. `published` reproduces the published harness: no check, no
tower load, min-max of raw HU, sampled decoding, image tokens glued to the question.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ctbench.errors import ModelNotReady
from ctbench.model_servers.m3d_lamed.server import m3d_question
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsRepo, AuthorsVLM

SAMPLED = {"do_sample": True, "top_p": 0.9, "temperature": 1.0, "max_new_tokens": 256}
# the authors' VQA evaluation (src/eval/eval_vqa.py:39-41): greedy unless --do_sample, 256 tokens
GREEDY = {"do_sample": False, "top_p": None, "temperature": 1.0, "max_new_tokens": 256}
IMAGE_TOKEN = "<im_patch>"
DEFAULT_PROJ_OUT_NUM = 256
VISION_TOWER_FILE = "vision_tower.bin"
TOWER_PREFIX = "model.vision_tower."


def med3dvlm_prompt(question: str, proj_out_num: int = DEFAULT_PROJ_OUT_NUM, options=(), authors: bool = False) -> str:
    """`<im_patch>` x proj_out_num, then the question; no chat template (as upstream). `authors`
    adds the space and ` Choices: A. ...` of the authors' VQA data (src/dataset/mllm_dataset.py:200-213)."""
    if not authors:
        return IMAGE_TOKEN * proj_out_num + question.strip()
    return IMAGE_TOKEN * proj_out_num + " " + m3d_question(question, options)


def load_vision_tower(tower, path) -> None:
    """Strictly load `path` (exactly `vision_tower.bin`) into `tower`, or say why it does not fit."""
    import torch

    if not path.is_file():
        raise ModelNotReady(f"med3dvlm: the checkpoint leaves the vision tower at random init and {path} is missing")
    state = torch.load(path, map_location="cpu", weights_only=True)
    expected = set(tower.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        hint = ""
        prefixes = {k.split(".", 1)[0] for k in unexpected if "." in k}
        if unexpected and len(prefixes) == 1 and {k.split(".", 1)[1] for k in unexpected} >= set(missing):
            hint = f" (every key carries the prefix {next(iter(prefixes))!r}: a prefixed checkpoint)"
        raise ModelNotReady(
            f"med3dvlm: {path} does not match the vision tower: {len(missing)} parameter(s) missing "
            f"({', '.join(missing[:3])}), {len(unexpected)} unexpected ({', '.join(unexpected[:3])}){hint}"
        )
    try:
        tower.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shapes
        raise ModelNotReady(f"med3dvlm: {path} does not fit the vision tower: {exc}") from exc


class Med3DVLM(AuthorsVLM):
    weights_version = "Med3DVLM-Qwen-2.5-7B"
    description = "Med3DVLM (Qwen2.5-7B, DCFormer 3D encoder): whole volume at 128x256x256."
    license = "Not stated; upstream code for research purposes only"
    weights = "MagicXin/Med3DVLM-Qwen-2.5-7B"
    gpu_memory_bytes = 20 << 30
    generation_defaults = {"authors": dict(GREEDY), "published": dict(SAMPLED)}
    # the remote code ships with the weights; the authors' repository is pinned for the record,
    # for the Python it needs (>= 3.12) and for `bench selftest`
    repo = AuthorsRepo("https://github.com/mirthAI/Med3DVLM", "cbbd6335a64370f829710a1412e46afc68f243ff",
                       "CTBENCH_MED3DVLM_REPO", "/opt/authors/Med3DVLM")
    extra_options = ()
    proj_out_num = DEFAULT_PROJ_OUT_NUM

    def load_model(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = str(self.weights_path)
        dtype = self.torch_dtype("bfloat16")
        self.tokenizer = AutoTokenizer.from_pretrained(path, model_max_length=512, padding_side="right",
                                                       use_fast=False, trust_remote_code=True)
        model, info = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, output_loading_info=True,
                                                           **self.dtype_kwargs(str(dtype).removeprefix("torch.")))
        self.proj_out_num = int(getattr(model.config, "proj_out_num", DEFAULT_PROJ_OUT_NUM) or DEFAULT_PROJ_OUT_NUM)
        if self.harness == "authors":  # `published` serves whatever loaded, as the harness did
            self.complete_load(model, info)
        self.model = model.to(self.device(), dtype=dtype).eval()

    def complete_load(self, model, info: dict) -> None:
        from ctbench.model_servers.vlm_common.weights import require_complete_load

        missing = list(info.get("missing_keys") or ())
        if missing and all(k.startswith(TOWER_PREFIX) for k in missing):
            load_vision_tower(model.get_model().vision_tower, self.weights_path / VISION_TOWER_FILE)
            info = {**info, "missing_keys": []}
        require_complete_load(self.name, self.weights_path, info)

    def build_prompt(self, item: QuestionItem) -> str:
        return med3dvlm_prompt(item.text, self.proj_out_num, item.options, authors=self.harness == "authors")

    def generate_one(self, prepared: np.ndarray, prompt: str) -> str:
        import torch

        image = torch.from_numpy(np.ascontiguousarray(prepared))[None, None].to(self.model.device, self.model.dtype)
        input_ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"].to(self.model.device)
        with torch.inference_mode():
            output = self.model.generate(images=image, inputs=input_ids, **self._sampling())
        return self.tokenizer.batch_decode(output, skip_special_tokens=True)[0]

    def _sampling(self) -> dict[str, Any]:
        s = self.settings
        sampling = dict(top_p=s["top_p"], temperature=s["temperature"]) if s["do_sample"] else {}
        return dict(max_new_tokens=s["max_new_tokens"], do_sample=s["do_sample"], **sampling)
