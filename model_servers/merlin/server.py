"""Merlin (I3D ResNet-152 image encoder + RadLLaMA-7b with LoRA), from the `merlin-vlm` package.

Loaded as its README does: `Merlin(RadiologyReport=True)`, then `.to(device).eval()`, except
that the checkpoint and RadLLaMA-7b are read from the weights directory (containers are
offline and /weights is read-only) and the ImageNet ResNet-152 is built without downloading
its weights (the Merlin checkpoint replaces them). merlin-vlm's `generate` strips BOS,
prepends the 490 image embeddings and calls the LLM's `generate` on `inputs_embeds`.

`authors` feeds the MONAI layout the encoder expects, (1,1,224,224,160) = (x,y,z) in RAS, and
ends the prompt with the `###\\n` marker training used; the output is cut at `###`. `published`
reproduces the published harness: the same numbers as (z,y,x) = (1,1,160,224,224), so after
the encoder's internal permute the axes are scrambled, and its free-form prompt.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsVLM

GREEDY = {"do_sample": False, "max_new_tokens": 64}
CHECKPOINT = "resnet_gpt2_best_stanford_report_generation_average_mtl.pt"  # merlin-vlm 0.0.7, RadiologyReport=True
RADLLAMA = "StanfordAIMI/RadLLaMA-7b"


@contextmanager
def _offline_builders(module, radllama_dir: Path):
    """While merlin-vlm builds its model: RadLLaMA from the weights directory, and the ImageNet
    ResNet-152 without its download (the Merlin checkpoint overwrites those weights anyway)."""
    saved = module.AutoTokenizer, module.AutoModelForCausalLM, module.torchvision.models.resnet152

    class Redirect:
        def __init__(self, cls):
            self.cls = cls

        def from_pretrained(self, name, *args, **kwargs):
            kwargs.pop("cache_dir", None)
            return self.cls.from_pretrained(str(radllama_dir) if name == RADLLAMA else name, *args, **kwargs)

    def resnet152(*args, **kwargs):
        kwargs.pop("pretrained", None)
        return saved[2](weights=None)

    module.AutoTokenizer, module.AutoModelForCausalLM = Redirect(saved[0]), Redirect(saved[1])
    module.torchvision.models.resnet152 = resnet152
    try:
        yield
    finally:
        module.AutoTokenizer, module.AutoModelForCausalLM, module.torchvision.models.resnet152 = saved
PUBLISHED_TEMPLATE = "Answer the question concisely based on the CT scan. Question: {question}\nAnswer:"
AUTHORS_TEMPLATE = "{question}###\n"


def merlin_prompt(question: str, variant: str) -> str:
    template = PUBLISHED_TEMPLATE if variant == "published" else AUTHORS_TEMPLATE
    return template.format(question=question.strip())


class Merlin(AuthorsVLM):
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
        import torch
        import merlin.models.radiology_report_generation as report_module
        from merlin import Merlin as MerlinModel

        weights = self.weights_path
        checkpoint = weights / CHECKPOINT

        class LocalMerlin(MerlinModel):
            """merlin-vlm's Merlin, reading its checkpoint from the weights directory instead of
            downloading it next to the package (containers are offline, /weights is read-only)."""

            def _load_model(self, **kwargs):
                model = self._config["builder"](**kwargs)
                model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
                return model

        with _offline_builders(report_module, weights / "RadLLaMA-7b"):
            model = LocalMerlin(RadiologyReport=True)
        self.model = model.to(self.device()).eval()

    def build_prompt(self, item: QuestionItem) -> str:
        return merlin_prompt(item.text, self.harness)

    def generate_one(self, prepared: np.ndarray, prompt: str) -> str:
        import torch

        image = torch.from_numpy(np.ascontiguousarray(prepared))[None, None].to(self.device())
        with torch.inference_mode():
            texts = self.model.generate(image, [prompt], max_new_tokens=self.settings["max_new_tokens"], do_sample=False)
        return texts[0] if isinstance(texts, (list, tuple)) else str(texts)
