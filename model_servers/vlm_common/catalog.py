"""Where each model's weights come from, under which licence, and which files a server needs.

`bench models fetch NAME` downloads from here; every server checks its weights directory
against `required` before loading, so a missing file is named at start, not deep in a stack
trace. Pure data: importing this module imports nothing heavy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ctbench.errors import UnknownName


@dataclass(frozen=True)
class WeightsSource:
    """One Hugging Face repository (model or dataset) and the part of it a server uses."""

    repo_id: str
    repo_type: str = "model"  # "model" or "dataset"
    revision: str = "main"
    allow_patterns: tuple[str, ...] = ()  # empty: the whole repository
    subdir: str = ""  # where it lands inside the model's weights directory ("" = top level)


@dataclass(frozen=True)
class ModelWeights:
    name: str
    sources: tuple[WeightsSource, ...]
    license: str
    gated: str = ""  # how to get access, empty if not gated
    # Paths (or glob patterns) relative to the weights directory; a tuple means "any one of these".
    required: tuple[str | tuple[str, ...], ...] = ()
    approx_gb: float = 0.0
    notes: str = ""
    extra: tuple[str, ...] = field(default_factory=tuple)  # things `fetch` cannot download

    @property
    def weights_id(self) -> str:
        return " + ".join(s.repo_id + (f"/{s.allow_patterns[0].split('/')[0]}" if s.repo_type == "dataset" else "") for s in self.sources)


NON_COMMERCIAL = "non-commercial"

CATALOG: dict[str, ModelWeights] = {
    "med3dvlm": ModelWeights(
        name="med3dvlm",
        sources=(WeightsSource("MagicXin/Med3DVLM-Qwen-2.5-7B"),),
        license="Not stated on the model card; the upstream code is for research purposes only.",
        required=("config.json", ("model.safetensors", "model.safetensors.index.json"), "vision_tower.bin",
                  ("tokenizer.json", "tokenizer_config.json")),
        approx_gb=16.0,
        notes="Remote code (trust_remote_code). vision_tower.bin fills the vision tower only when the "
              "safetensors leave it at random init.",
    ),
    "m3d-lamed": ModelWeights(
        name="m3d-lamed",
        sources=(WeightsSource("GoodBaiBai88/M3D-LaMed-Phi-3-4B"),),
        license="Apache-2.0",
        required=("config.json", ("model.safetensors", "model.safetensors.index.json"), "tokenizer_config.json"),
        approx_gb=16.2,
        notes="Remote code `LamedPhi3ForCausalLM` (trust_remote_code).",
    ),
    "radfm": ModelWeights(
        name="radfm",
        sources=(WeightsSource("chaoyi-wu/RadFM"), WeightsSource("xmcmic/Med-KEBERT", subdir="Med-KEBERT")),
        license="Not stated on the model card.",
        required=(("pytorch_model.bin", "pytorch_model.zip"), "Language_files/tokenizer_config.json",
                  "Language_files/config.json", "Med-KEBERT/config.json"),
        approx_gb=30.4,
        notes="pytorch_model.zip unpacks to pytorch_model.bin (fetch unpacks it). Language_files holds the LLaMA-13B "
              "tokenizer/config. Med-KEBERT/ is the BERT the authors' code loads by hub id, served from here offline.",
    ),
    "ct-chat": ModelWeights(
        name="ct-chat",
        sources=(
            WeightsSource("ibrahimhamamci/CT-RATE", repo_type="dataset",
                          allow_patterns=("models/CT-CLIP-Related/*", "models/CT-CHAT/llama_3.1_8b/*")),
            WeightsSource("meta-llama/Llama-3.1-8B-Instruct", subdir="base_llm"),
        ),
        license="CC-BY-NC-SA 4.0 (CT-RATE, non-commercial) + Llama 3.1 Community Licence (base LLM)",
        gated="Accept the CT-RATE dataset terms on huggingface.co/datasets/ibrahimhamamci/CT-RATE and the Llama 3.1 licence on huggingface.co/meta-llama/Llama-3.1-8B-Instruct, then log in (`hf auth login` or HF_TOKEN).",
        required=(("models/CT-CLIP-Related/clip_visual_encoder.pth", "models/CT-CLIP-Related/CT-CLIP_v2.pt"),
                  "models/CT-CHAT/llama_3.1_8b/config.json", "base_llm/config.json"),
        approx_gb=20.0,
        notes="Stage 1 CT-CLIP's CTViT encodes the volume to (24,24,24,512) tokens; stage 2 the LLaVA fork answers.",
    ),
    "medgemma": ModelWeights(
        name="medgemma",
        sources=(WeightsSource("google/medgemma-1.5-4b-it"),),
        license="Health AI Developer Foundations terms of use (gated)",
        gated="Accept the Health AI Developer Foundations terms on huggingface.co/google/medgemma-1.5-4b-it, then log in (`hf auth login` or HF_TOKEN).",
        required=("config.json", ("model.safetensors", "model.safetensors.index.json"), "tokenizer_config.json",
                  ("preprocessor_config.json", "processor_config.json")),
        approx_gb=8.6,
    ),
    "merlin": ModelWeights(
        name="merlin",
        sources=(
            WeightsSource("stanfordmimi/Merlin", allow_patterns=("resnet_gpt2_best_stanford_report_generation_average_mtl.pt",)),
            WeightsSource("StanfordAIMI/RadLLaMA-7b", subdir="RadLLaMA-7b"),
        ),
        license="MIT (code); Merlin weights per the stanfordmimi/Merlin model card; RadLLaMA-7b per its card (Llama 2 licence)",
        required=("resnet_gpt2_best_stanford_report_generation_average_mtl.pt", "RadLLaMA-7b/config.json"),
        approx_gb=25.0,
    ),
    "vila-m3": ModelWeights(
        name="vila-m3",
        sources=(WeightsSource("MONAI/Llama3-VILA-M3-8B"),),
        license="NVIDIA OneWay Noncommercial License + Meta Llama 3 Community Licence (non-commercial)",
        required=("llm/config.json", "vision_tower/config.json", "mm_projector/config.json"),
        approx_gb=17.0,
        extra=("the MONAI VISTA3D bundle 0.5.4 (`python -m monai.bundle download vista3d --version 0.5.4 --bundle_dir WEIGHTS`, "
               "which puts it in WEIGHTS/vista3d)",),
    ),
    "lingshu": ModelWeights(
        name="lingshu",
        sources=(WeightsSource("lingshu-medical-mllm/Lingshu-7B"),),
        license="Not confirmed on the model card (Qwen2.5-VL base: Apache-2.0)",
        required=("config.json", ("model.safetensors", "model.safetensors.index.json"), "tokenizer_config.json",
                  ("preprocessor_config.json", "processor_config.json")),
        approx_gb=16.6,
    ),
}


def get_weights(name: str) -> ModelWeights:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownName(f"Unknown model {name!r}. Available: {', '.join(sorted(CATALOG))}") from None
