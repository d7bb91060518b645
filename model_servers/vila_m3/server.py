"""VILA-M3 (Llama-3-8B VILA) with the VISTA3D segmentation expert.

Loaded from the MONAI VLM-Radiology-Agent-Framework checkout's `thirdparty/VILA`
(`llava.model.builder.load_pretrained_model`, `process_images`, the `llama_3` conversation),
fp16. VISTA3D ("everything", 127 structures) runs on the whole raw-HU volume from the MONAI
bundle in the weights directory; its labels on the chosen slice become a colour overlay, sent
as a second image with a legend.

`authors` follows the upstream single-image flow: model cards + `<image>This is a CT image.`,
the assistant's `<VISTA3D(everything)>` trigger turn, then the expert's result turn; greedy,
1024 tokens. `published` reproduces the published harness: one user turn squashing question,
expert text and overlay together under a "concise answer only" system prompt, the middle
slice of the stored array (no reorientation), temperature 0.2 / top_p 0.9 (seeded), 256 tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ctbench.errors import ModelError
from ctbench.model_servers.registry import MODELS
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsRepo, AuthorsVLM
from ctbench.model_servers.vlm_common.inputs import preset
from ctbench.preprocess.volume import Volume

EOT = "<|eot_id|>"
IMAGE = "<image>"
AUTHORS_SYSTEM = "You are a helpful assistant."
PUBLISHED_SYSTEM = "You are a medical imaging assistant. Answer with a concise answer only, without explanation."
MODEL_CARDS = (
    "Here is a list of available expert models:\n"
    "<VISTA3D(args)> Modality: CT, Task: segmentation, Overview: a domain-specialized interactive foundation model "
    "for 3D medical imaging; it segments 127 anatomical structures. Valid args are: 'everything', 'hepatic tumor', "
    "'pancreatic tumor', 'lung tumor', 'bone lesion', 'organs', 'cardiovascular', 'gastrointestinal', 'skeleton', "
    "'muscles'\n"
)
TRIGGER = "This looks like a CT image. Let me trigger <VISTA3D(everything)>."
EXPERT = "The results are <segmentation>. The colors in this image describe {legend}. Use this result to respond to this prompt:\n{question}"


@dataclass
class VilaInput:
    slice_rgb: np.ndarray  # (H, W, 3) uint8, windowed C50/W400
    volume: Volume  # raw HU, for VISTA3D
    slice_index: int


def legend_text(labels: dict[int, str], colours: dict[int, tuple[int, int, int]], present: list[int]) -> str:
    """'{colour: label, ...}' for the labels present on the slice, as the M3 expert writes it."""
    parts = [f"{_colour_name(colours[i])}: {labels[i]}" for i in present if i in labels and i in colours]
    return "{" + ", ".join(parts) + "}"


def _colour_name(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def overlay(slice_rgb: np.ndarray, label_slice: np.ndarray, colours: dict[int, tuple[int, int, int]], alpha: float = 0.5) -> np.ndarray:
    out = slice_rgb.astype(np.float32).copy()
    for label, colour in colours.items():
        mask = label_slice == label
        if mask.any():
            out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def llama3(system: str, turns: list[tuple[str, str | None]]) -> str:
    """Llama-3 chat format; a turn whose text is None is the open generation prompt."""
    text = f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}{EOT}"
    for role, message in turns:
        text += f"<|start_header_id|>{role}<|end_header_id|>\n\n"
        if message is not None:
            text += message + EOT
    return text


def vila_prompt(question: str, legend: str, variant: str) -> str:
    question = question.strip()
    expert = EXPERT.format(legend=legend, question=question)
    if variant == "published":
        return llama3(PUBLISHED_SYSTEM, [("user", f"{IMAGE} {question}\n{expert}\n{IMAGE}"), ("assistant", None)])
    return llama3(AUTHORS_SYSTEM, [
        ("user", f"{MODEL_CARDS}{IMAGE}This is a CT image.\n{question}"),
        ("assistant", TRIGGER),
        ("user", f"{expert}\n{IMAGE}"),
        ("assistant", None),
    ])


@MODELS.register("vila-m3")
class VilaM3(AuthorsVLM):
    name = "vila-m3"
    weights_version = "Llama3-VILA-M3-8B"
    description = "VILA-M3 8B with the VISTA3D expert: one windowed axial slice + segmentation overlay."
    license = "NVIDIA OneWay Noncommercial License + Meta Llama 3 Community Licence (non-commercial)"
    weights = "MONAI/Llama3-VILA-M3-8B"
    gpu_memory_bytes = 22 << 30
    repo = AuthorsRepo("https://github.com/Project-MONAI/VLM-Radiology-Agent-Framework",
                       "9acf57647b6619a923ce76a3f78d48453b444cd9", "CTBENCH_VILA_M3_REPO",
                       "/opt/authors/VLM-Radiology-Agent-Framework", import_root="thirdparty/VILA")
    stop_strings = (EOT,)
    generation_defaults = {
        "authors": {"do_sample": False, "temperature": 0.0, "top_p": 0.9, "max_new_tokens": 1024, "num_beams": 1},
        "published": {"do_sample": True, "temperature": 0.2, "top_p": 0.9, "max_new_tokens": 256, "num_beams": 1,
                      "min_new_tokens": 2},
    }

    def load_model(self) -> None:
        builder = self.import_authors("llava.model.builder")
        self.mm_utils = self.import_authors("llava.mm_utils")
        self.constants = self.import_authors("llava.constants")
        path = str(self.weights_path)
        self.tokenizer, self.model, self.image_processor, _ = builder.load_pretrained_model(
            path, "Llama3-VILA-M3-8B", device=self.device())
        self.vista3d = self._load_vista3d()

    def _load_vista3d(self) -> Any:
        from monai.bundle import ConfigParser

        bundle = self.weights_path / "vista3d"
        parser = ConfigParser()
        parser.read_config(str(bundle / "configs" / "inference.json"))
        parser["bundle_root"] = str(bundle)
        return parser

    def preprocess(self, volume: Volume) -> VilaInput:
        stack = np.asarray(preset(self.name, self.variant).apply(volume))  # (1, H, W, 3) uint8
        rgb = stack[0] if stack.ndim == 4 else np.repeat(stack[0][..., None], 3, axis=-1)
        return VilaInput(rgb, volume, volume.array.shape[0] // 2)

    def encode_volume(self, prepared: VilaInput) -> Any:
        """VISTA3D labels on the chosen slice: the overlay image and its legend, once per volume."""
        if self.model is None:
            return None
        labels_volume, names, colours = self._segment(prepared.volume)
        label_slice = labels_volume[:, :, labels_volume.shape[2] // 2]
        present = sorted(int(v) for v in np.unique(label_slice) if v)
        return overlay(prepared.slice_rgb, label_slice, colours), legend_text(names, colours, present)

    def _segment(self, volume: Volume):
        """VISTA3D 'everything' on the raw-HU volume: (labels in RAS x,y,z, names, colours).

        Not wired yet: the bundle's inference workflow needs a GPU host with the bundle to be
        written against; until then every question reports this error."""
        raise ModelError("VISTA3D expert inference is not implemented in this server yet")

    def build_prompt(self, item: QuestionItem) -> str:
        legend = item.state[1] if item.state else "{}"
        return vila_prompt(item.text, legend, self.variant)

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        results: list[str | Exception] = []
        for item in batch:
            self.seed_everything()
            images = [item.prepared.slice_rgb, item.state[0]]
            results.append(self.postprocess(self.generate_one(images, self.build_prompt(item))))
        return results

    def generate_one(self, images: list[np.ndarray], prompt: str) -> str:
        import torch
        from PIL import Image

        tensor = self.mm_utils.process_images([Image.fromarray(i) for i in images], self.image_processor, self.model.config)
        input_ids = self.mm_utils.tokenizer_image_token(prompt, self.tokenizer, self.constants.IMAGE_TOKEN_INDEX,
                                                        return_tensors="pt").unsqueeze(0).to(self.model.device)
        stopping = self.mm_utils.KeywordsStoppingCriteria([EOT], self.tokenizer, input_ids)
        s = self.settings
        sampling = {"temperature": s["temperature"], "top_p": s["top_p"]} if s["do_sample"] else {}
        with torch.inference_mode():
            output = self.model.generate(input_ids, images=tensor.half().to(self.model.device), do_sample=s["do_sample"],
                                         max_new_tokens=s["max_new_tokens"], num_beams=s["num_beams"],
                                         min_new_tokens=s.get("min_new_tokens", 0), stopping_criteria=[stopping],
                                         use_cache=True, **sampling)
        return self.tokenizer.batch_decode(output, skip_special_tokens=False)[0]
