"""Optional torch path for resizing and resampling (``torch.nn.functional.interpolate``).

Same geometry as `resampling.py` (whole extent kept, ``align_corners=False``, output spacing
``n * s / m``), so a `Volume` resized here has the same spacing/origin/direction as one resized with
SimpleITK; voxel values agree to float precision except in the outermost half voxel, where torch
clamps to the edge voxel. Runs on CUDA when available (``device="auto"``), otherwise CPU. torch is
imported lazily; without it these functions raise `ImportError` naming the extra to install.
Anti-aliasing is not offered here (torch's ``antialias`` covers 2D only).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctbench.preprocess.resampling import output_shape_for_spacing
from ctbench.preprocess.volume import Volume

__all__ = ["resample_to_spacing_torch", "resize_slices_torch", "resize_to_shape_torch", "torch_available", "torch_device"]

_MODES = {0: "nearest-exact", 1: "trilinear"}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("the torch resampling path needs torch: pip install 'ctbench[torch]'") from exc
    return torch


def torch_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when a GPU is visible, else "cpu"; anything else is passed through."""
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resize_to_shape_torch(volume: Volume, shape: Sequence[int], order: int = 1, device: str = "auto") -> Volume:
    """`resampling.resize_to_shape` on torch: array shape ``(k, j, i)`` = (D, H, W), float32 out
    (order 0 keeps the dtype)."""
    torch = _torch()
    if order not in _MODES:
        raise ValueError(f"torch resize supports order 0 or 1, got {order!r}")
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"resize shape must be 3 positive integers (k, j, i), got {shape!r}")
    dev = torch_device(device)
    source = np.ascontiguousarray(volume.array)
    if not source.flags.writeable:  # torch.from_numpy wants writable memory
        source = source.copy()
    tensor = torch.from_numpy(source).to(dev)
    tensor = tensor.float() if order == 1 else tensor
    if order == 0 and not tensor.is_floating_point():
        out = torch.nn.functional.interpolate(tensor[None, None].float(), size=shape, mode=_MODES[0])[0, 0]
        out = out.to(tensor.dtype)
    else:
        out = torch.nn.functional.interpolate(
            tensor[None, None], size=shape, mode=_MODES[order], **({"align_corners": False} if order == 1 else {})
        )[0, 0]
    array = out.cpu().numpy()
    size_ijk = np.asarray(shape[::-1], dtype=float)
    in_spacing = np.asarray(volume.spacing)
    out_spacing = np.asarray(volume.shape_ijk) * in_spacing / size_ijk
    origin = volume.index_to_lps((out_spacing / in_spacing - 1.0) / 2.0)
    return Volume(array, tuple(out_spacing), tuple(origin), volume.direction, volume.source)


def resample_to_spacing_torch(volume: Volume, spacing: Sequence[float], order: int = 1, device: str = "auto") -> Volume:
    """`resampling.resample_to_spacing` on torch: spacing in (i, j, k) mm, same extent."""
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be 3 positive numbers (i, j, k) mm, got {spacing!r}")
    return resize_to_shape_torch(volume, output_shape_for_spacing(volume, spacing), order, device)


def resize_slices_torch(stack: np.ndarray, size: Sequence[int], device: str = "cpu") -> np.ndarray:
    """Bilinear resize of ``(N, rows, cols[, C])`` slices to ``size = (rows, cols)``, same dtype.

    uint8 stays uint8 end to end (torch's rounding fixed-point kernel), which is what makes the
    85 x 896 x 896 x 3 MedGemma stack cheap on a CPU.
    """
    torch = _torch()
    stack = np.asarray(stack)
    rows, cols = (int(v) for v in size)
    vector = stack.ndim == 4
    tensor = torch.from_numpy(np.ascontiguousarray(stack)).to(torch_device(device))
    tensor = tensor.permute(0, 3, 1, 2) if vector else tensor[:, None]
    if tensor.dtype not in (torch.uint8, torch.float32, torch.float64):
        tensor = tensor.float()
    out = torch.nn.functional.interpolate(tensor, size=(rows, cols), mode="bilinear", align_corners=False, antialias=False)
    out = out.permute(0, 2, 3, 1) if vector else out[:, 0]
    array = out.contiguous().cpu().numpy()
    if np.issubdtype(stack.dtype, np.integer) and array.dtype != stack.dtype:
        info = np.iinfo(stack.dtype)
        array = np.clip(np.rint(array), info.min, info.max)
    return array.astype(stack.dtype, copy=False)
