"""Centre crop or pad to a shape, per axis: crop where the input is longer, pad where shorter.

Works on a `Volume` (target shape in array order ``(k, j, i)`` = D, H, W; the origin moves so every
kept voxel keeps its physical position) or on a plain array (shape in that array's own axis
order). The rule matches CT-CLIP's and MONAI's symmetric padding: crop start ``(n - t) // 2``,
padding before ``(t - n) // 2``, the odd voxel after.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctbench.preprocess.volume import Volume

__all__ = ["CenterCropOrPad", "center_crop_or_pad", "crop_or_pad_offsets"]


def crop_or_pad_offsets(shape: Sequence[int], target: Sequence[int]) -> list[int]:
    """Per axis, the input index that lands at output index 0 (negative where padded)."""
    return [(n - t) // 2 if n >= t else -((t - n) // 2) for n, t in zip(shape, target)]


def center_crop_or_pad(array: np.ndarray, target: Sequence[int], pad_value: float = 0.0) -> np.ndarray:
    """Centre crop/pad `array` to `target` (same number of axes), padding with `pad_value`."""
    array = np.asarray(array)
    target = tuple(int(t) for t in target)
    if len(target) != array.ndim:
        raise ValueError(f"target shape {target} has {len(target)} axes, array has shape {array.shape}")
    if array.shape == target:
        return array
    out = np.full(target, pad_value, dtype=array.dtype)
    src, dst = [], []
    for n, t, offset in zip(array.shape, target, crop_or_pad_offsets(array.shape, target)):
        if offset >= 0:
            src.append(slice(offset, offset + t))
            dst.append(slice(0, t))
        else:
            src.append(slice(0, n))
            dst.append(slice(-offset, -offset + n))
    out[tuple(dst)] = array[tuple(src)]
    return out


class CenterCropOrPad:
    """Centre crop/pad to `shape` (a Volume's ``(D, H, W)`` = ``(k, j, i)``, or an array's own order)."""

    def __init__(self, shape: Sequence[int], pad_value: float = 0.0):
        shape = tuple(shape)
        if not shape or any(int(v) != v or v < 1 for v in shape):
            raise ValueError(f"CenterCropOrPad shape must be positive integers, got {shape!r}")
        if not np.isfinite(pad_value):
            raise ValueError(f"CenterCropOrPad pad_value must be finite, got {pad_value!r}")
        self.shape = tuple(int(v) for v in shape)
        self.pad_value = float(pad_value)

    def __call__(self, data):
        if isinstance(data, Volume):
            if len(self.shape) != 3:
                raise ValueError(f"a Volume needs a 3-axis shape (D, H, W), got {self.shape}")
            offsets_kji = crop_or_pad_offsets(data.array.shape, self.shape)
            origin = data.index_to_lps(np.asarray(offsets_kji[::-1], dtype=float))
            array = center_crop_or_pad(data.array, self.shape, self.pad_value)
            return Volume(array, data.spacing, tuple(origin), data.direction, data.source)
        return center_crop_or_pad(data, self.shape, self.pad_value)

    def __repr__(self) -> str:
        return f"CenterCropOrPad({self.shape}, pad_value={self.pad_value:g})"
