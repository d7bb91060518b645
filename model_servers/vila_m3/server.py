"""VILA-M3 (Llama-3-8B VILA) with the VISTA3D segmentation expert, as the authors' agent runs it.

Loaded from the MONAI VLM-Radiology-Agent-Framework checkout's `thirdparty/VILA`
(`llava.model.builder.load_pretrained_model`, `process_images`, the `llama_3` conversation),
fp16. VISTA3D is the MONAI bundle in ``WEIGHTS/vista3d`` run through its own
``configs/inference.json`` (`vista3d_bundle.py`); the expert turn, overlay and legend follow the
framework's `ExpertVista3D` and `Dye` (`vista3d_expert.py`).

`authors` is the framework's conversation (`m3/demo/gradio_m3.py`, `M3Generator.process_prompt`):
model cards + ``<image>This is a CT image.\n`` + question; if the model's own answer calls
``<VISTA3D(group)>``, the bundle segments that label group, and the expert turn (result text
with the overlay as the second image, then "Use this result to respond to this prompt:") is
sent for a second answer; greedy, 1024 tokens, ``min_new_tokens=2``, special tokens skipped.
`published` reproduces the published harness: VISTA3D "everything" always, one user turn
squashing question, expert text and overlay under a "concise answer only" system prompt,
temperature 0.2 / top_p 0.9 (seeded), 256 tokens.

The model call is one seam, `VilaM3.load_vlm()`: it returns the object whose
``generate(images, prompt)`` runs VILA. Everything around it runs in CI; the seam itself runs in
`bench selftest vila-m3` against VILA's code (`tiny_weights.py`). Off CUDA the load keeps the
server's device (`load_device.py`), and a part left at random init keeps the server NOT_SERVING
(`load_check.py`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctbench.errors import ModelError, ModelNotReady
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vila_m3 import import_shims
from ctbench.model_servers.vila_m3.load_check import require_parts_loaded
from ctbench.model_servers.vila_m3.load_device import device_map_kept
from ctbench.model_servers.vila_m3.vista3d_bundle import Vista3DBundle
from ctbench.model_servers.vila_m3.vista3d_expert import (
    ExpertResult,
    TriggerError,
    display_slice,
    label_prompt,
    load_label_groups,
    mentions_vista3d,
    requested_group,
)
from ctbench.model_servers.vlm_common.authors_code import AuthorsRepo, AuthorsVLM
from ctbench.model_servers.vlm_common.inputs import preset
from ctbench.preprocess.volume import Volume
from ctbench.project import import_installed

EOT = "<|eot_id|>"
IMAGE = "<image>"
# VILA's `conv_templates["llama_3"].system`, which the framework keeps (SYS_PROMPT).
AUTHORS_SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the visual content "
                  "that the user provides, and assist the user with a variety of tasks using natural language.")
PUBLISHED_SYSTEM = "You are a medical imaging assistant. Answer with a concise answer only, without explanation."
# The framework's MODEL_CARDS (gradio_m3.py), verbatim.
MODEL_CARDS = (
    "Here is a list of available expert models:\n"
    "<BRATS(args)> Modality: MRI, Task: segmentation, Overview: A pre-trained model for volumetric (3D) segmentation "
    "of brain tumor subregions from multimodal MRIs based on BraTS 2018 data, Accuracy: Tumor core (TC): 0.8559 - "
    "Whole tumor (WT): 0.9026 - Enhancing tumor (ET): 0.7905 - Average: 0.8518, Valid args are: None\n"
    "<VISTA3D(args)> Modality: CT, Task: segmentation, Overview: domain-specialized interactive foundation model "
    "developed for segmenting and annotating human anatomies with precision, Accuracy: 127 organs: 0.792 Dice on "
    "average, Valid args are: 'everything', 'hepatic tumor', 'pancreatic tumor', 'lung tumor', 'bone lesion', "
    "'organs', 'cardiovascular', 'gastrointestinal', 'skeleton', or 'muscles'\n"
    "<VISTA2D(args)> Modality: cell imaging, Task: segmentation, Overview: model for cell segmentation, which was "
    "trained on a variety of cell imaging outputs, including brightfield, phase-contrast, fluorescence, confocal, "
    "or electron microscopy, Accuracy: Good accuracy across several cell imaging datasets, Valid args are: None\n"
    "<CXR(args)> Modality: chest x-ray (CXR), Task: classification, Overview: pre-trained model which are trained "
    "on large cohorts of data, Accuracy: Good accuracy across several diverse chest x-rays datasets, Valid args "
    "are: None\n"
    "Give the model <NAME(args)> when selecting a suitable expert model.\n"
)
MODALITY = "This is a CT image.\n"  # get_modality(): a .nii.gz volume is CT
VISTA3D_DIR = "vista3d"  # the bundle root inside the weights directory


@dataclass
class VilaInput:
    slice_rgb: np.ndarray  # (H, W, 3) uint8, windowed C50/W400, display orientation
    volume: Volume  # raw HU, for VISTA3D

    def __array__(self, dtype=None, copy=None) -> np.ndarray:  # what InspectInput shows: (1, H, W, 3)
        stack = self.slice_rgb[None]
        return stack if dtype is None else stack.astype(dtype)


@dataclass
class VolumeSegmentations:
    """VISTA3D's label slice of one volume per label group, computed on first use."""

    bundle: Vista3DBundle
    volume: Volume
    label_groups: dict
    slices: dict[str, np.ndarray] = field(default_factory=dict)

    def label_slice(self, group: str) -> np.ndarray:
        if group not in self.slices:
            labels = self.bundle.segment(self.volume, label_prompt(group, self.label_groups))  # (x, y, z) RAS
            self.slices[group] = display_slice(labels, labels.shape[2] // 2)
        return self.slices[group]


def llama3(system: str, turns: list[tuple[str, str | None]]) -> str:
    """VILA's LLAMA_3 conversation: a turn whose text is None is the open generation prompt."""
    text = f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}{EOT}"
    for role, message in turns:
        text += f"<|start_header_id|>{role}<|end_header_id|>\n\n"
        if message is not None:
            text += message + EOT
    return text


def first_turn(question: str) -> str:
    """The framework's user turn: model cards, the slice, the modality line, the question."""
    return f"{MODEL_CARDS}{IMAGE}{MODALITY}{question.strip()}"


def authors_prompt(question: str) -> str:
    return llama3(AUTHORS_SYSTEM, [("user", first_turn(question)), ("assistant", None)])


def authors_expert_prompt(question: str, first_answer: str, expert_text: str) -> str:
    """The conversation after the expert ran: its turn (squashed into one user turn) follows the answer."""
    return llama3(AUTHORS_SYSTEM, [("user", first_turn(question)), ("assistant", first_answer),
                                   ("user", expert_text), ("assistant", None)])


def published_prompt(question: str, expert_text: str) -> str:
    return llama3(PUBLISHED_SYSTEM, [("user", f"{IMAGE} {question.strip()}\n{expert_text}"), ("assistant", None)])


class VilaGenerator:
    """The VILA model call: raw generated text for a list of RGB images and a prompt."""

    def __init__(self, tokenizer, model, image_processor, mm_utils, constants, settings: dict[str, Any]):
        self.tokenizer, self.model, self.image_processor = tokenizer, model, image_processor
        self.mm_utils, self.constants, self.settings = mm_utils, constants, settings

    def generate(self, images: list[np.ndarray], prompt: str) -> str:
        import torch
        from PIL import Image

        tensor = self.mm_utils.process_images([Image.fromarray(i) for i in images], self.image_processor, self.model.config)
        input_ids = self.mm_utils.tokenizer_image_token(prompt, self.tokenizer, self.constants.IMAGE_TOKEN_INDEX,
                                                        return_tensors="pt").unsqueeze(0).to(self.model.device)
        stopping = self.mm_utils.KeywordsStoppingCriteria([EOT], self.tokenizer, input_ids)
        s = self.settings
        sampling = {"temperature": s["temperature"], "top_p": s["top_p"]} if s["do_sample"] else {}
        with torch.inference_mode():
            output = self.model.generate(input_ids, images=[tensor.half().to(self.model.device)], do_sample=s["do_sample"],
                                         max_new_tokens=s["max_new_tokens"], num_beams=s["num_beams"],
                                         min_new_tokens=s.get("min_new_tokens", 0), stopping_criteria=[stopping],
                                         pad_token_id=self.tokenizer.eos_token_id, use_cache=True, **sampling)
        return self.tokenizer.batch_decode(output, skip_special_tokens=s["skip_special_tokens"])[0]


class VilaM3(AuthorsVLM):
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
        "authors": {"do_sample": False, "temperature": 0.0, "top_p": 0.9, "max_new_tokens": 1024, "num_beams": 1,
                    "min_new_tokens": 2, "skip_special_tokens": True},
        "published": {"do_sample": True, "temperature": 0.2, "top_p": 0.9, "max_new_tokens": 256, "num_beams": 1,
                      "min_new_tokens": 2, "skip_special_tokens": False},
    }

    def __init__(self, **options: str):
        super().__init__(**options)
        self.vlm: Any = None
        self.vista3d: Vista3DBundle | None = None
        self.label_groups: dict = {}

    # --- loading: the cheap checks first, then the 16 GB model -----------------------------------
    def load_model(self) -> None:
        self.label_groups = load_label_groups(self.checkout())
        self.vista3d = Vista3DBundle(self.weights_path / VISTA3D_DIR)
        self.vista3d.check()
        self.vlm = self.load_vlm()
        self.model = self.vlm

    def load_vlm(self) -> Any:
        """The seam to VILA: an object with ``generate(images, prompt) -> str``."""
        import_shims.install()
        # Hugging Face's datasets, which VILA imports, not ctbench's datasets/ folder (first on sys.path
        # from the checkout root); where it is not installed, VILA's own import of it is named below.
        with contextlib.suppress(ModuleNotFoundError):
            import_installed("datasets")
        try:
            builder = self.import_authors("llava.model.builder")
            mm_utils = self.import_authors("llava.mm_utils")
            constants = self.import_authors("llava.constants")
        except ModuleNotFoundError as exc:
            raise ModelNotReady(
                f"vila-m3: VILA's code imports {exc.name!r}, which is not installed. Install "
                "model_servers/vila_m3/requirements.txt (the image does)."
            ) from None
        device = self.device()
        with device_map_kept(builder, device):  # VILA maps a SigLIP tower's load to "cuda" (load_device.py)
            tokenizer, model, image_processor, _ = builder.load_pretrained_model(
                str(self.weights_path), "Llama3-VILA-M3-8B", device=device)
        require_parts_loaded(model, self.weights_path)  # no part left at random init (load_check.py)
        return VilaGenerator(tokenizer, model, image_processor, mm_utils, constants, self.settings)

    # --- per volume ----------------------------------------------------------------------------
    def preprocess(self, volume: Volume) -> VilaInput:
        stack = np.asarray(preset(self.name, self.variant).apply(volume))  # (1, H, W, 3) uint8
        rgb = stack[0] if stack.ndim == 4 else np.repeat(stack[0][..., None], 3, axis=-1)
        return VilaInput(rgb, volume)

    def encode_volume(self, prepared: VilaInput) -> VolumeSegmentations | None:
        if self.vista3d is None:
            return None
        return VolumeSegmentations(self.vista3d, prepared.volume, self.label_groups)

    # --- per question --------------------------------------------------------------------------
    def expert(self, item: QuestionItem, group: str, trigger: str = "") -> ExpertResult:
        label_slice = item.state.label_slice(group)
        image = item.prepared.slice_rgb[..., 0]
        if label_slice.shape != image.shape:
            raise ModelError(f"VISTA3D label slice {label_slice.shape} does not match the image slice {image.shape}")
        return ExpertResult.build(image, label_slice, self.label_groups, item.text.strip(), trigger)

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        results: list[str | Exception] = []
        for item in batch:
            self.seed_everything()
            if self.harness == "published":
                results.append(self.answer_published(item))
            else:
                results.append(self.answer_authors(item))
        return results

    def answer_published(self, item: QuestionItem) -> str:
        expert = self.expert(item, "everything")
        return self.ask([item.prepared.slice_rgb, expert.overlay], published_prompt(item.text, expert.text))

    def answer_authors(self, item: QuestionItem) -> str:
        """The framework's two-step turn: the model answers; if it calls VISTA3D, it answers again."""
        first = self.ask([item.prepared.slice_rgb], authors_prompt(item.text))
        if not mentions_vista3d(first):
            return first  # no expert (the framework's other experts are not for CT volumes)
        try:
            group = requested_group(first, self.label_groups)
        except TriggerError:
            return first  # the framework shows the expert's error and does not ask again
        expert = self.expert(item, group, trigger=first)
        if not expert.asks_again:
            return first
        return self.ask([item.prepared.slice_rgb, expert.overlay], authors_expert_prompt(item.text, first, expert.text))

    def ask(self, images: list[np.ndarray], prompt: str) -> str:
        return self.postprocess(self.vlm.generate(images, prompt))
