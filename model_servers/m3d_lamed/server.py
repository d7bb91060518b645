"""M3D-LaMed (Phi-3-4B): a (1,1,32,256,256) volume and 256 `<im_patch>` tokens + question.

Loaded with `AutoModelForCausalLM` / `AutoTokenizer(use_fast=False)` and trust_remote_code
(`LamedPhi3ForCausalLM`); bf16 as the authors' examples, fp16 in the `published` variant. A
checkpoint that leaves any parameter at random init keeps the server NOT_SERVING. `authors`
prompts and decodes as the authors' VQA evaluation (space, ` Choices: ...`, greedy);
`published` as the published harness (no space, no options, top_p 0.9 sampling).
`published` also min-max scales raw HU (the published harness); `authors` windows HU first,
closer to the display-windowed M3D-Cap training slices.
"""
from __future__ import annotations

import numpy as np

from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsVLM

SAMPLED = {"do_sample": True, "top_p": 0.9, "temperature": 1.0, "max_new_tokens": 256}
# the authors' VQA evaluation (M3D Bench/eval/eval_vqa.py:37-40): --do_sample False, 256 tokens
GREEDY = {"do_sample": False, "top_p": None, "temperature": 1.0, "max_new_tokens": 256}
IMAGE_TOKEN = "<im_patch>"
PROJ_OUT_NUM = 256
LETTERS = "ABCDEFGHIJ"


def m3d_question(question: str, options: tuple[str, ...] | list[str] = ()) -> str:
    """The question as the authors' VQA data build it (M3D Bench/dataset/multi_dataset.py:302-304):
    closed questions get ` Choices: A. x B. y ...`."""
    question = question.strip()
    if not options:
        return question
    return question + " Choices: " + " ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))


def m3d_prompt(question: str, proj_out_num: int = PROJ_OUT_NUM, options=(), authors: bool = False) -> str:
    """`published`: image tokens glued to the question (the published harness). `authors`: a
    space between them and the options appended (multi_dataset.py:311)."""
    if not authors:
        return IMAGE_TOKEN * proj_out_num + question.strip()
    return IMAGE_TOKEN * proj_out_num + " " + m3d_question(question, options)


class M3DLaMed(AuthorsVLM):
    weights_version = "M3D-LaMed-Phi-3-4B"
    description = "M3D-LaMed (Phi-3-4B, 3D ViT + spatial pooling projector): whole volume at 32x256x256."
    license = "Apache-2.0"
    weights = "GoodBaiBai88/M3D-LaMed-Phi-3-4B"
    gpu_memory_bytes = 12 << 30
    generation_defaults = {"authors": dict(GREEDY), "published": dict(SAMPLED)}
    extra_options = ()  # remote code ships with the weights: no checkout

    def load_model(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ctbench.model_servers.vlm_common.weights import require_complete_load

        path = str(self.weights_path)
        dtype = self.torch_dtype("bfloat16" if self.harness == "authors" else "float16")
        self.tokenizer = AutoTokenizer.from_pretrained(path, model_max_length=512, padding_side="right",
                                                       use_fast=False, trust_remote_code=True)
        model, info = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, output_loading_info=True,
                                                           **self.dtype_kwargs(str(dtype).removeprefix("torch.")))
        require_complete_load(self.name, self.weights_path, info)
        self.model = model.to(self.device()).eval()

    def build_prompt(self, item: QuestionItem) -> str:
        return m3d_prompt(item.text, options=item.options, authors=self.harness == "authors")

    def generate_one(self, prepared: np.ndarray, prompt: str) -> str:
        import torch

        image = torch.from_numpy(np.ascontiguousarray(prepared))[None, None].to(self.model.device, self.model.dtype)
        input_ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"].to(self.model.device)
        s = self.settings
        with torch.inference_mode():
            sampling = dict(top_p=s["top_p"], temperature=s["temperature"]) if s["do_sample"] else {}
            output = self.model.generate(image, input_ids, max_new_tokens=s["max_new_tokens"], do_sample=s["do_sample"],
                                         **sampling)
        return self.tokenizer.batch_decode(output, skip_special_tokens=True)[0]
