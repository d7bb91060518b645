"""Did VILA's load fill every parameter from the weights directory?

VILA's `load_pretrained_model` builds its three parts with `from_pretrained` on the sub-folders
(``llm/``: the LLM, ``vision_tower/``: the vision model, ``mm_projector/``: VILA's projector).
A checkpoint with prefixed or mis-named keys loads nothing there: transformers logs a warning and
the part keeps its random init. `require_parts_loaded` compares each part's state-dict keys with
the tensor names in its folder (``*.safetensors``, else ``*.bin``; names only, no tensor is read
again) and raises `ModelNotReady` through `require_complete_load` when any parameter has no
tensor, so the server stays NOT_SERVING instead of answering with a random part.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ctbench.errors import ModelNotReady
from ctbench.model_servers.vlm_common.weights import require_complete_load


def parts(model: Any) -> dict[str, Any]:
    """VILA's parts by the folder each is loaded from (``llava/model/llava_arch.py``)."""
    return {"llm": model.get_llm(), "vision_tower": model.get_vision_tower().vision_tower,
            "mm_projector": model.get_mm_projector()}


def checkpoint_keys(folder: Path) -> set[str]:
    """The tensor names of the checkpoint in `folder` (every shard)."""
    files = sorted(folder.glob("*.safetensors"))
    keys: set[str] = set()
    if files:
        from safetensors import safe_open

        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                keys.update(handle.keys())
        return keys
    files = sorted(folder.glob("*.bin"))
    if not files:
        raise ModelNotReady(f"vila-m3: {folder} holds no checkpoint (*.safetensors or *.bin)")
    import torch

    for file in files:
        keys.update(torch.load(file, map_location="cpu", weights_only=True, mmap=True).keys())
    return keys


def require_parts_loaded(model: Any, weights: Path) -> None:
    """Raise `ModelNotReady` naming the part and keys when a part's parameters are not all in
    its folder's checkpoint."""
    for folder, module in parts(model).items():
        expected = set(module.state_dict())
        found = checkpoint_keys(Path(weights) / folder)
        require_complete_load(f"vila-m3 ({folder})", Path(weights) / folder,
                              {"missing_keys": expected - found, "unexpected_keys": found - expected})
