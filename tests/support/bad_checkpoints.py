"""Weights directories that load nothing: for the tests of loud load failures."""
from __future__ import annotations

from pathlib import Path


def prefixed_lingshu(out: Path) -> Path:
    """A Lingshu weights directory whose checkpoint keys all carry a `module.` prefix (as a
    DataParallel save writes them): nothing in it matches the model's parameter names."""
    from safetensors.torch import load_file, save_file

    from ctbench.model_servers.vlm_common.random_weights import build_lingshu_dir

    out = build_lingshu_dir(out)
    state = load_file(out / "model.safetensors")
    save_file({f"module.{k}": v for k, v in state.items()}, out / "model.safetensors", metadata={"format": "pt"})
    return out
