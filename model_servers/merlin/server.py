"""Merlin (I3D ResNet-152 image encoder + RadLLaMA-7b with LoRA), from the `merlin-vlm` package.

Loaded as its README does: `Merlin(RadiologyReport=True)`, then `.to(device).eval()`, except
that the checkpoint and RadLLaMA-7b are read from the weights directory (containers are
offline and /weights is read-only) and the ImageNet ResNet-152 is built without downloading
its weights (the Merlin checkpoint replaces them). merlin-vlm's `generate` strips BOS,
prepends the 490 image embeddings and calls the LLM's `generate` on `inputs_embeds`.

The I3D encoder and the adapter run once per volume (`encode_volume`: merlin-vlm's
`Clip3DForTextGeneration.generate` minus the text step); each question then runs the text
decoder's own `generate` on those 490 embeddings, which is what `Clip3DForTextGeneration.generate`
does in one call.

`authors` feeds the MONAI layout the encoder expects, (1,1,224,224,160) = (x,y,z) in RAS, ends
the prompt with the `###\\n` marker training used, and decodes as the report-generation demo
does: greedy, one beam, `repetition_penalty=1.2`, 128 new tokens, stopping at token 48134; the
output is cut at `###`. `published` reproduces the published harness: the same numbers as
(z,y,x) = (1,1,160,224,224), so after the encoder's internal permute the axes are scrambled, its
free-form prompt, greedy with 64 new tokens and no penalty. Sources: `README.md`.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsVLM

# The report-generation demo's decoding (StanfordMIMI/Merlin documentation/report_generation_demo.py:
# `model.generate(..., do_sample=False, num_beams=1, repetition_penalty=1.2, max_new_tokens=128,
# stopping_criteria=[EosListStoppingCriteria()])`, whose eos_sequence is [48134]).
STOP_TOKEN_IDS = (48134,)
AUTHORS_DECODING = {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.2, "max_new_tokens": 128,
                    "stop_token_ids": STOP_TOKEN_IDS}
PUBLISHED_DECODING = {"do_sample": False, "max_new_tokens": 64}
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
    generation_defaults = {"authors": dict(AUTHORS_DECODING), "published": dict(PUBLISHED_DECODING)}
    extra_options = ()

    def load_model(self) -> None:
        import merlin.models.radiology_report_generation as report_module
        import torch
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

    def encode_volume(self, prepared: np.ndarray) -> Any:
        """The adapter's (1, 490, 4096) image embeddings, computed once and shared by the
        volume's questions (the encoder is frozen and deterministic in eval mode)."""
        import torch

        report_model = self.model.model  # merlin-vlm's Clip3DForTextGeneration
        image = torch.from_numpy(np.ascontiguousarray(prepared))[None, None].to(self.device())
        with torch.inference_mode():
            return report_model.adapter(report_model.encode_image(image))

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        # The embeddings come from encode_volume (item.state), not the raw volume.
        results: list[str | Exception] = []
        for item in batch:
            self.seed_everything()
            results.append(self.postprocess(self.generate_one(item.state, self.build_prompt(item))))
        return results

    def decoding_kwargs(self) -> dict[str, Any]:
        """The settings as `generate` keywords; stop ids become the demo's stopping criterion."""
        kwargs = {k: v for k, v in self.settings.items() if k != "stop_token_ids"}
        stop = self.settings.get("stop_token_ids")
        if stop:
            kwargs["stopping_criteria"] = [StopAtSequence(tuple(stop))]
        return kwargs

    def generate_one(self, embeddings, prompt: str) -> str:
        import torch

        with torch.inference_mode():
            texts = self.model.model.decode_text.generate(embeddings, [prompt], **self.decoding_kwargs())
        return texts[0] if isinstance(texts, (list, tuple)) else str(texts)


class StopAtSequence:
    """Stop once the generated ids end with `ids` (the demo's `EosListStoppingCriteria`)."""

    def __init__(self, ids: tuple[int, ...]):
        if not ids:
            raise ValueError("StopAtSequence needs at least one token id")
        self.ids = list(ids)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        n = len(self.ids)
        done = [len(row) >= n and row[-n:] == self.ids for row in input_ids.tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
