"""A random-weight VILA-M3 weights directory for `bench selftest vila-m3`, built with VILA's own
classes from the authors' checkout (``CTBENCH_VILA_M3_REPO``: the VLM-Radiology-Agent-Framework
with its ``thirdparty/VILA`` submodule) and nothing downloaded.

The directory has the layout of ``MONAI/Llama3-VILA-M3-8B`` and is written by VILA's own
`LlavaLlamaModel.save_pretrained` (``llava/model/llava_arch.py``), the way VILA's training
writes a checkpoint, so the server loads it through `load_pretrained_model` exactly as it loads
the released weights:

  config.json       `LlavaLlamaConfig` (``architectures: [LlavaLlamaModel]``) with ``llm_cfg``,
                    ``vision_tower_cfg`` and ``mm_projector_cfg`` as VILA saves them, and the
                    VILA1.5 settings VILA-M3 is trained with: ``image_aspect_ratio: resize``,
                    vision layer -2, ``cls_patch`` features, no S2, no image start/end or patch tokens
  llm/              a one-layer Llama (64 wide, Llama-3's RoPE base and GQA) with a byte-level BPE
                    tokenizer carrying Llama-3's chat tokens (BOS added as Llama-3's does)
  vision_tower/     a two-layer SigLIP vision model at the released tower's 384 px / 14 px patches
                    (729 patches) with its `SiglipImageProcessor`
  mm_projector/     VILA's `MultimodalProjector` of type ``mlp_downsample`` (2x2 token merge), random
  vista3d/          a tiny random-weight MONAI VISTA3D bundle (`tiny_vista3d.py`) for the expert
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from ctbench.errors import ModelNotReady
from ctbench.model_servers.vila_m3 import import_shims
from ctbench.model_servers.vila_m3.tiny_vista3d import write_bundle
from ctbench.model_servers.vlm_common.authors_code import require_checkout
from ctbench.project import import_installed

BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
# Llama-3's special tokens the llama_3 conversation uses (one id each, as in the released tokenizer).
SPECIALS = [BOS, EOS, "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
CORPUS = [
    "You are a helpful language and vision assistant. You are able to understand the visual content that the user "
    "provides, and assist the user with a variety of tasks using natural language.",
    "Here is a list of available expert models: Modality: CT, Task: segmentation, Overview: Accuracy: Valid args are: "
    "None everything hepatic tumor pancreatic tumor lung tumor bone lesion organs cardiovascular gastrointestinal "
    "skeleton muscles. Give the model <NAME(args)> when selecting a suitable expert model. <VISTA3D(everything)>",
    "This is a CT image. The results are <image>. The colors in this image describe red: liver, blue: spleen. "
    "Use this result to respond to this prompt: Which side is the marker on? left right upper lower yes no",
]
LLM: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
       "num_key_value_heads": 2, "max_position_embeddings": 8192, "rope_theta": 500000.0}
# The released vision tower's geometry (SigLIP so400m: 384 px, 14 px patches), two narrow layers.
SIGLIP: dict[str, Any] = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
          "image_size": 384, "patch_size": 14}
# What VILA1.5 (and VILA-M3 from it) trains with; read by VILA at load and by `process_images`.
VILA_SETTINGS: dict[str, Any] = {"image_aspect_ratio": "resize", "mm_vision_select_layer": -2, "mm_vision_select_feature": "cls_patch",
                 "mm_use_im_start_end": False, "mm_use_im_patch_token": False, "s2": False,
                 "s2_scales": "336,672,1008", "s2_max_split_size": 336, "vision_resolution": -1,
                 "interpolate_mode": "linear", "num_video_frames": 8}
PROJECTOR = "mlp_downsample"
VISTA3D_DIR = "vista3d"


def llama3_tokenizer(out: Path):
    """A byte-level BPE tokenizer with Llama-3's chat tokens, saved to `out` as the released one is
    (`PreTrainedTokenizerFast`, which VILA's ``use_fast=False`` load keeps: there is no slow class)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(CORPUS, trainer)
    raw.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, raw.token_to_id(BOS))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=BOS, eos_token=EOS)
    tokenizer.save_pretrained(out)
    return tokenizer


def vila_root() -> Path:
    """VILA's code in the framework checkout, put first on sys.path as the server does."""
    from ctbench.model_servers.vila_m3.server import VilaM3

    repo = VilaM3.repo
    assert repo is not None
    root = require_checkout(repo) / repo.import_root
    if not (root / "llava" / "model" / "builder.py").is_file():
        raise ModelNotReady(f"vila-m3 selftest: {root} holds no VILA code; the framework at commit {repo.commit} "
                            f"has it as the {repo.import_root} submodule (git submodule update --init {repo.import_root})")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def build_vila_m3_dir(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the tiny VILA-M3 weights directory (and its VISTA3D bundle) at `out_dir`; return it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    out = Path(out_dir)
    vila_root()
    import_shims.install()
    import_installed("datasets")  # Hugging Face's, which VILA imports (ctbench.project.import_installed)
    from llava.model.language_model.llava_llama import LlavaLlamaConfig, LlavaLlamaModel

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="ctbench-vila-parts-") as scratch:
        # The parts VILA assembles from paths when it builds a model from scratch (llava_arch.py
        # init_vlm); the tower's path must name its kind ("siglip"), as VILA picks the class by it.
        llm_dir, tower_dir = Path(scratch) / "llm", Path(scratch) / "siglip-vision-tower"
        tokenizer = llama3_tokenizer(llm_dir)
        llm = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False, **LLM)
        LlamaForCausalLM(llm).save_pretrained(llm_dir)
        SiglipVisionModel(SiglipVisionConfig(**SIGLIP)).save_pretrained(tower_dir)
        side = SIGLIP["image_size"]
        SiglipImageProcessor(size={"height": side, "width": side}).save_pretrained(tower_dir)

        config = LlavaLlamaConfig(llm_cfg=str(llm_dir), vision_tower_cfg=str(tower_dir), mm_projector_cfg=PROJECTOR,
                                  architectures=["LlavaLlamaModel"], **VILA_SETTINGS)
        config.model_dtype = "torch.float16"  # what load_pretrained_model loads with
        model = LlavaLlamaModel(config)
        model.save_pretrained(str(out))
    write_bundle(out / VISTA3D_DIR, seed=seed)
    return out
