"""Run CT-CLIP's `CTViT` on a device other than CUDA, without editing the authors' checkout.

At CT-CLIP @ 7edd2e009a7820adecb6bc9c49a1d192b2f890ee the encoder's forward pass hard-codes
``device=torch.device('cuda')`` before making its position grids and masks
(`transformer_maskgit/ctvit.py` lines 62, 221, 389, 431, 471; `attention.py` lines 135, 171, 195,
219, 260), so on a CPU it fails in `torch.cuda._lazy_init`. On CUDA nothing changes. For another
device, `pin_encoder_device(device)` gives those two modules a `torch` whose `device("cuda")` is
that device; every other attribute is the real torch.
"""
from __future__ import annotations

import importlib
from typing import Any

HARD_CODED_CUDA_MODULES = ("transformer_maskgit.ctvit", "transformer_maskgit.attention")


class TorchOnDevice:
    """torch, except that `device("cuda")` means `target`."""

    def __init__(self, torch_module: Any, target: str):
        self._torch = torch_module
        self._target = torch_module.device(target)

    def device(self, *args, **kwargs):
        device = self._torch.device(*args, **kwargs)
        return self._target if device.type == "cuda" else device

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)


def pin_encoder_device(device: str) -> list[str]:
    """Point CTViT's hard-coded CUDA device at `device` (nothing to do on CUDA); returns the
    modules changed."""
    import torch

    if torch.device(device).type == "cuda":
        return []
    changed = []
    for name in HARD_CODED_CUDA_MODULES:
        module = importlib.import_module(name)
        real = module.torch._torch if isinstance(module.torch, TorchOnDevice) else module.torch
        module.torch = TorchOnDevice(real, device)
        changed.append(name)
    return changed
