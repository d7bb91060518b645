"""A random-weight Med3DVLM weights directory for `bench selftest med3dvlm`, built offline.

The released weights carry their modelling code (`trust_remote_code`); the authors' GitHub
repository mirthAI/Med3DVLM (`src/model`) holds the same classes: `CTBENCH_MED3DVLM_REPO`
points at a checkout (the image clones it at the pinned commit). The directory written here
holds a short remote-code module importing `VLMQwenConfig` / `VLMQwenForCausalLM` from that
checkout (nothing of it is copied), a tiny Qwen2 config with the authors' vision settings
(DCFormer `decomp_small`, "mixer" projector as in scripts/finetune_lora.sh, 128x256x256 input,
256 image tokens), a byte-level BPE Qwen2 tokenizer with `<im_patch>`, and random weights saved
by the authors' class. The authors' code needs Python >= 3.12. Nothing is downloaded.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ctbench.errors import ModelNotReady

CLASS_MODULE = "src.model.llm.qwen"
BRIDGE = '''"""Remote code for a selftest weights directory: the authors' classes from their checkout."""
import sys

try:
    sys.path.insert(0, {checkout!r})
    from {module} import VLMQwenConfig, VLMQwenForCausalLM
except ImportError as exc:
    raise ImportError("the Med3DVLM checkout at {checkout} does not import: " + str(exc)) from exc
'''
SPECIALS = ["<|endoftext|>", "<im_patch>"]


def authors_checkout() -> Path:
    import os

    from ctbench.model_servers.med3dvlm.server import Med3DVLM

    repo = Med3DVLM.repo
    path = Path(os.environ.get(repo.env_var) or repo.default_path)
    if not (path / "src" / "model" / "llm" / "qwen.py").is_file():
        raise ModelNotReady(
            f"med3dvlm selftest: no authors' checkout at {path}. Set {repo.env_var} to a checkout of "
            f"{repo.url} at commit {repo.commit}."
        )
    if sys.version_info < (3, 12):
        raise ModelNotReady(
            f"med3dvlm selftest: the authors' code needs Python >= 3.12 (src/model/vlm_arch.py); this is "
            f"{sys.version.split()[0]}"
        )
    return path


def _tokenizer(out_dir: Path):
    from transformers import Qwen2Tokenizer

    from ctbench.model_servers.vlm_common.random_weights import _bpe

    bpe = _bpe(SPECIALS)
    bpe.model.save(str(out_dir))  # vocab.json, merges.txt
    vocab = json.loads((out_dir / "vocab.json").read_text())
    for token in SPECIALS:  # the slow tokenizer reads its special tokens from vocab.json too
        vocab.setdefault(token, bpe.token_to_id(token))
    (out_dir / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Qwen2Tokenizer(vocab_file=str(out_dir / "vocab.json"), merges_file=str(out_dir / "merges.txt"),
                               unk_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<im_patch>"]})
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def build_med3dvlm_dir(out_dir: Path) -> Path:
    """Write the tiny weights directory under `out_dir` and return it."""
    import importlib

    import torch

    checkout = authors_checkout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(out_dir)
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    authors = importlib.import_module(CLASS_MODULE)
    config = authors.VLMQwenConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024, tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        vision_tower="dcformer", input_size=[128, 256, 256], patch_size=[16, 16, 16], dim=768, depth=12,
        vision_select_layer=-2, vision_select_feature="cls_patch", mm_projector_type="mixer", mm_mlp_depth=2,
        proj_out_num=256, low_output_size=[192, 128], high_output_size=[64, 128],
        low_input_size=[256, 384], high_input_size=[32, 768], mm_hidden_size=768,
    )
    torch.manual_seed(0)
    model = authors.VLMQwenForCausalLM(config)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    torch.save(model.get_model().vision_tower.state_dict(), out_dir / "vision_tower.bin")  # as released
    (out_dir / "modeling_med3dvlm.py").write_text(BRIDGE.format(checkout=str(checkout), module=CLASS_MODULE))
    saved = json.loads((out_dir / "config.json").read_text())
    saved["auto_map"] = {"AutoConfig": "modeling_med3dvlm.VLMQwenConfig",
                         "AutoModelForCausalLM": "modeling_med3dvlm.VLMQwenForCausalLM"}
    (out_dir / "config.json").write_text(json.dumps(saved, indent=2))
    return out_dir
