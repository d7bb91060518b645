"""Merlin (I3D ResNet-152 image encoder + RadLLaMA-7b with LoRA), from the `merlin-vlm` package.

Loaded as its README does: `Merlin(RadiologyReport=True)`, then `.to(device).eval()`; the
weights directory must hold the Merlin checkpoint and RadLLaMA-7b (containers are offline;
torchvision's ImageNet resnet152 weights must be pre-cached in TORCH_HOME).

`authors` feeds the MONAI layout the encoder expects, (1,1,224,224,160) = (x,y,z) in RAS, and
ends the prompt with the `###\\n` marker training used; the output is cut at `###`. `published`
reproduces the published harness: the same numbers as (z,y,x) = (1,1,160,224,224), so after
the encoder's internal permute the axes are scrambled, and its free-form prompt.
"""
from __future__ import annotations

import os

import numpy as np

from ctbench.model_servers.registry import MODELS
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsVLM

GREEDY = {"do_sample": False, "max_new_tokens": 64}
PUBLISHED_TEMPLATE = "Answer the question concisely based on the CT scan. Question: {question}\nAnswer:"
AUTHORS_TEMPLATE = "{question}###\n"


def merlin_prompt(question: str, variant: str) -> str:
    template = PUBLISHED_TEMPLATE if variant == "published" else AUTHORS_TEMPLATE
    return template.format(question=question.strip())


@MODELS.register("merlin")
class Merlin(AuthorsVLM):
    name = "merlin"
    weights_version = "merlin-vlm-0.0.7"
    description = "Merlin (I3D ResNet-152 + RadLLaMA-7b LoRA): RAS volume at 1.5x1.5x3 mm, 224x224x160."
    license = "MIT (code); weights per stanfordmimi/Merlin and StanfordAIMI/RadLLaMA-7b cards"
    weights = "stanfordmimi/Merlin + StanfordAIMI/RadLLaMA-7b"
    gpu_memory_bytes = 30 << 30
    stop_strings = ("###",)
    answer_prefixes = ("Answer:",)
    generation_defaults = {"authors": dict(GREEDY), "published": dict(GREEDY)}
    extra_options = ()

    def load_model(self) -> None:
        # merlin-vlm looks for its checkpoints under these folders instead of downloading them.
        os.environ.setdefault("MERLIN_CACHE_DIR", str(self.weights_path))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from merlin import Merlin as MerlinModel

        try:
            model = MerlinModel(RadiologyReport=True, local_dir=str(self.weights_path))
        except TypeError:  # versions without local_dir read MERLIN_CACHE_DIR
            model = MerlinModel(RadiologyReport=True)
        self.model = model.to(self.device()).eval()

    def build_prompt(self, item: QuestionItem) -> str:
        return merlin_prompt(item.text, self.variant)

    def generate_one(self, prepared: np.ndarray, prompt: str) -> str:
        import torch

        image = torch.from_numpy(np.ascontiguousarray(prepared))[None, None].to(self.device())
        with torch.inference_mode():
            texts = self.model.generate(image, [prompt], max_new_tokens=self.settings["max_new_tokens"], do_sample=False)
        return texts[0] if isinstance(texts, (list, tuple)) else str(texts)
