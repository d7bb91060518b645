"""A random-weight M3D-LaMed weights directory for `bench selftest m3d-lamed`, built offline.

The released weights carry their modelling code (`trust_remote_code`, `LamedPhi3ForCausalLM`).
The closest public code is the authors' GitHub repository BAAI-DCAI/M3D (`LaMed/src/model`):
`CTBENCH_M3D_REPO` points at a checkout of it. The directory written here holds a two-line
remote-code module that imports `LamedPhi3Config` / `LamedPhi3ForCausalLM` from that checkout
(nothing of it is copied), a tiny Phi-3 config with the authors' vision settings (MONAI 3D ViT,
spatial-pooling projector, 32x256x256 input, 256 image tokens), a SentencePiece LLaMA tokenizer
with `<im_patch>`, and random weights saved by the authors' class. Nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ctbench.errors import ModelNotReady

REPO_URL = "https://github.com/BAAI-DCAI/M3D"
REPO_COMMIT = "63e72005a2304eda74579870239bfc7b04b0edae"
REPO_ENV = "CTBENCH_M3D_REPO"
CLASS_MODULE = "LaMed.src.model.language_model.lamed_phi3"
SPECIAL_TOKENS = ["<im_patch>", "<bx_start>", "<bx_end>", "[SEG]"]
BRIDGE = '''"""Remote code for a selftest weights directory: the authors' classes from their checkout."""
import sys

try:
    sys.path.insert(0, {checkout!r})
    from {module} import LamedPhi3Config, LamedPhi3ForCausalLM
except ImportError as exc:
    raise ImportError("the M3D checkout at {checkout} does not import: " + str(exc)) from exc
'''


def authors_checkout() -> Path:
    path = Path(os.environ.get(REPO_ENV) or "/opt/authors/M3D")
    if not (path / "LaMed" / "src" / "model" / "language_model" / "lamed_phi3.py").is_file():
        raise ModelNotReady(
            f"m3d-lamed selftest: no authors' checkout at {path}. Set {REPO_ENV} to a checkout of "
            f"{REPO_URL} at commit {REPO_COMMIT}."
        )
    return path


def build_m3d_lamed_dir(out_dir: Path) -> Path:
    """Write the tiny weights directory under `out_dir` and return it."""
    import importlib

    import torch
    from transformers import LlamaTokenizer

    from ctbench.model_servers.vlm_common.sentencepiece_vocab import write_sentencepiece

    checkout = authors_checkout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_sentencepiece(out_dir / "tokenizer.model", vocab_size=1000)
    tokenizer = LlamaTokenizer(vocab_file=str(out_dir / "tokenizer.model"))
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    tokenizer.pad_token = tokenizer.unk_token
    tokenizer.save_pretrained(str(out_dir))

    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    authors = importlib.import_module(CLASS_MODULE)
    config = authors.LamedPhi3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
        image_channel=1, image_size=[32, 256, 256], patch_size=[4, 16, 16], vision_tower="vit3d",
        vision_select_layer=-1, vision_select_feature="patch", mm_projector_type="spp", proj_layer_type="mlp",
        proj_layer_num=2, proj_pooling_type="spatial", proj_pooling_size=2, mm_hidden_size=768, proj_out_num=256,
        img_token_id=tokenizer.convert_tokens_to_ids("<im_patch>"), segmentation_module=None,
    )
    torch.manual_seed(0)
    model = authors.LamedPhi3ForCausalLM(config)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    (out_dir / "modeling_m3d_lamed.py").write_text(BRIDGE.format(checkout=str(checkout), module=CLASS_MODULE))
    saved = json.loads((out_dir / "config.json").read_text())
    saved["auto_map"] = {"AutoConfig": "modeling_m3d_lamed.LamedPhi3Config",
                         "AutoModelForCausalLM": "modeling_m3d_lamed.LamedPhi3ForCausalLM"}
    (out_dir / "config.json").write_text(json.dumps(saved, indent=2))
    return out_dir
