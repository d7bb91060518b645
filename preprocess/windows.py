"""CT display windows to 8-bit images: one window to grey levels, several windows to RGB.

Inputs are HU arrays of any shape (typically a ``(N, rows, cols)`` slice stack from `slicing`);
outputs add nothing to the geometry: same axes, plus a trailing channel axis for RGB.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "CT_RGB_WINDOWS",
    "GrayToRGB",
    "MultiWindowRGB",
    "WindowToUint8",
    "multi_window_rgb",
    "window_to_uint8",
]

# MedGemma's CT notebook and Lingshu: wide (-1024, 1024), soft tissue (-135, 215), brain (0, 80).
CT_RGB_WINDOWS = ((-1024.0, 1024.0), (-135.0, 215.0), (0.0, 80.0))
_ROUNDING = ("round", "floor")


def _check_window(window: Sequence[float]) -> tuple[float, float]:
    try:
        lower, upper = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"a window is (lower, upper), got {window!r}") from None
    if not (np.isfinite(lower) and np.isfinite(upper)) or lower >= upper:
        raise ValueError(f"a window needs finite lower < upper, got ({lower}, {upper})")
    return lower, upper


def window_to_uint8(array: np.ndarray, lower: float, upper: float, rounding: str = "round") -> np.ndarray:
    """Clip to [lower, upper] and map linearly to 0..255 (uint8).

    rounding "round" rounds to nearest; "floor" truncates, as ``.astype(np.uint8)`` on the scaled
    floats does (VILA-M3's slice writer). 8/16-bit integer input (the usual CT storage) goes
    through a lookup table built with the same arithmetic: identical result, one pass.
    """
    array = np.asarray(array)
    index = _lookup_index(array)
    if index is not None:
        return _window_floats(_ALL_16BIT[array.dtype.char], lower, upper, rounding)[index]
    return _window_floats(array, lower, upper, rounding)


_ALL_16BIT = {
    np.dtype(np.int16).char: np.arange(-32768, 32768, dtype=np.int32),
    np.dtype(np.uint16).char: np.arange(0, 65536, dtype=np.int32),
}


def _lookup_index(array: np.ndarray) -> np.ndarray | None:
    """Table index (0..65535) for a large int16/uint16 array, else None (float arithmetic is used)."""
    if array.size <= 65536 or array.dtype.char not in _ALL_16BIT:
        return None
    if array.dtype == np.int16:  # two's complement: v + 32768 == bits XOR 0x8000
        return np.bitwise_xor(array.view(np.uint16), np.uint16(0x8000))
    return array


def _window_floats(array: np.ndarray, lower: float, upper: float, rounding: str) -> np.ndarray:
    scaled = (np.clip(np.asarray(array, dtype=np.float32), lower, upper) - np.float32(lower)) * np.float32(
        255.0 / (upper - lower)
    )
    if rounding == "round":
        np.rint(scaled, out=scaled)
    else:
        np.floor(scaled, out=scaled)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def multi_window_rgb(array: np.ndarray, windows: Sequence[Sequence[float]] = CT_RGB_WINDOWS, rounding: str = "round") -> np.ndarray:
    """One uint8 channel per window, stacked last: ``(..., len(windows))``."""
    array = np.asarray(array)
    index = _lookup_index(array)
    if index is not None:  # one gather from a (65536, channels) table
        values = _ALL_16BIT[array.dtype.char]
        table = np.stack([_window_floats(values, lo, hi, rounding) for lo, hi in windows], axis=-1)
        return table[index]
    return np.stack([window_to_uint8(array, lo, hi, rounding) for lo, hi in windows], axis=-1)


class WindowToUint8:
    """HU array -> uint8 grey levels for one window (same shape and axis order)."""

    def __init__(self, lower: float, upper: float, rounding: str = "round"):
        self.lower, self.upper = _check_window((lower, upper))
        if rounding not in _ROUNDING:
            raise ValueError(f"rounding must be one of {_ROUNDING}, got {rounding!r}")
        self.rounding = rounding

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return window_to_uint8(array, self.lower, self.upper, self.rounding)

    def __repr__(self) -> str:
        return f"WindowToUint8({self.lower:g}, {self.upper:g}, {self.rounding})"


class MultiWindowRGB:
    """HU array -> uint8 ``(..., 3)``: R, G, B from three windows (default `CT_RGB_WINDOWS`);
    input axes kept in order, channels appended last (HxWx3 per slice)."""

    def __init__(self, windows: Sequence[Sequence[float]] = CT_RGB_WINDOWS, rounding: str = "round"):
        windows = [_check_window(w) for w in windows]
        if len(windows) != 3:
            raise ValueError(f"MultiWindowRGB needs 3 windows (R, G, B), got {len(windows)}: {windows}")
        if rounding not in _ROUNDING:
            raise ValueError(f"rounding must be one of {_ROUNDING}, got {rounding!r}")
        self.windows, self.rounding = tuple(windows), rounding

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return multi_window_rgb(array, self.windows, self.rounding)

    def __repr__(self) -> str:
        return f"MultiWindowRGB({list(self.windows)})"


class GrayToRGB:
    """``(...)`` grey array -> ``(..., 3)`` with three identical channels (axes kept, channels last)."""

    def __call__(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        return np.repeat(array[..., None], 3, axis=-1)

    def __repr__(self) -> str:
        return "GrayToRGB()"
