"""Intensity transforms: clip to a HU range, scale a fixed window to a range, min-max normalise,
and checked casts. They act voxel by voxel, so they work on a `Volume` (geometry kept, any
orientation, any axis order) or on a plain array of any shape."""
from __future__ import annotations

import numpy as np

from ctbench.preprocess.compose import map_array
from ctbench.preprocess.sitk_images import array_view, cached_image, derived, remember_image
from ctbench.preprocess.volume import Volume
from ctbench.preprocess.volume_errors import CastOverflow, NonFiniteVoxels

__all__ = [
    "CastDtype",
    "ClipHU",
    "NormalizeMinMax",
    "ScaleIntensityRange",
    "cast_checked",
    "clip_hu",
    "normalize_min_max",
    "scale_intensity_range",
]


def _check_range(lower: float, upper: float, what: str) -> tuple[float, float]:
    lower, upper = float(lower), float(upper)
    if not (np.isfinite(lower) and np.isfinite(upper)) or lower >= upper:
        raise ValueError(f"{what} needs finite lower < upper, got lower={lower}, upper={upper}")
    return lower, upper


def clip_hu(array: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Clip values to [lower, upper]. Integer arrays stay integer when both bounds are integral."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.integer) and float(lower).is_integer() and float(upper).is_integer():
        info = np.iinfo(array.dtype)
        return np.clip(array, max(int(lower), info.min), min(int(upper), info.max)).astype(array.dtype, copy=False)
    return np.clip(array.astype(np.float32, copy=False), lower, upper)


def scale_intensity_range(
    array: np.ndarray, a_min: float, a_max: float, b_min: float = 0.0, b_max: float = 1.0, clip: bool = True
) -> np.ndarray:
    """Map the window [a_min, a_max] linearly onto [b_min, b_max] (float32); clip to it if `clip`.

    Same as MONAI's ScaleIntensityRange. E.g. (-1000, 1000, 0, 1) is Merlin's, (-1000, 1000, -1, 1)
    is CT-CLIP's "clip to +-1000 HU, divide by 1000".
    """
    scale = (b_max - b_min) / (a_max - a_min)
    out = np.multiply(array, np.float32(scale), dtype=np.float32)  # one new array, then in place
    out += np.float32(b_min - a_min * scale)
    if clip:
        np.clip(out, min(b_min, b_max), max(b_min, b_max), out=out)
    return out


def normalize_min_max(array: np.ndarray, b_min: float = 0.0, b_max: float = 1.0) -> np.ndarray:
    """Map the array's own [min, max] onto [b_min, b_max] (float32). A constant array gives b_min."""
    array = np.asarray(array)
    low, high = float(array.min()), float(array.max())
    if high == low:
        return np.full(array.shape, b_min, dtype=np.float32)
    return scale_intensity_range(array, low, high, b_min, b_max, clip=False)


def cast_checked(array: np.ndarray, dtype, where: str = "volume") -> np.ndarray:
    """Cast to `dtype`, rounding to nearest for integer types; never wrap around silently.

    Raises `NonFiniteVoxels` for NaN/inf and `CastOverflow` when values fall outside the integer
    type's range (with the actual min/max and the allowed range).
    """
    dtype = np.dtype(dtype)
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            raise NonFiniteVoxels(f"{where}: {int(bad.sum())} of {array.size} voxels are NaN or infinite")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if np.issubdtype(array.dtype, np.floating):
            low, high = np.rint(low), np.rint(high)
        if low < info.min or high > info.max:
            raise CastOverflow(
                f"{where}: values span [{low}, {high}], outside {dtype.name}'s range [{info.min}, {info.max}]"
            )
        if np.issubdtype(array.dtype, np.floating):
            array = np.rint(array)
    elif np.issubdtype(dtype, np.floating) and array.size:
        limit = float(np.finfo(dtype).max)
        low, high = float(array.min()), float(array.max())
        if low < -limit or high > limit:
            raise CastOverflow(f"{where}: values span [{low}, {high}], outside {dtype.name}'s range +-{limit:.4g}")
    return array.astype(dtype, copy=False)


class ClipHU:
    """Clip voxel values to [lower, upper] HU (any orientation / axis order)."""

    def __init__(self, lower: float, upper: float):
        self.lower, self.upper = _check_range(lower, upper, "ClipHU")

    def __call__(self, data):
        if isinstance(data, Volume):  # presets with the same window share one clipped volume
            return derived(data, ("clip_hu", self.lower, self.upper), lambda: self._clip_volume(data))
        return map_array(data, self._clip)

    def _clip_volume(self, volume: Volume) -> Volume:
        image = cached_image(volume)
        integral = float(self.lower).is_integer() and float(self.upper).is_integer()
        if image is None or not integral or not np.issubdtype(volume.array.dtype, np.integer):
            return map_array(volume, self._clip)
        # The volume already has its SimpleITK image (e.g. straight from the reader): clamp that,
        # multi-threaded, and hand the result to the next resampling step without a numpy copy.
        import SimpleITK as sitk

        info = np.iinfo(volume.array.dtype)
        clamped = sitk.Clamp(image, image.GetPixelID(), max(self.lower, info.min), min(self.upper, info.max))
        result = Volume(array_view(clamped), volume.spacing, volume.origin, volume.direction, volume.source)
        remember_image(result, clamped)
        return result

    def _clip(self, array: np.ndarray) -> np.ndarray:
        return clip_hu(array, self.lower, self.upper)

    def __repr__(self) -> str:
        return f"ClipHU({self.lower:g}, {self.upper:g})"


class ScaleIntensityRange:
    """Fixed-window normalisation: [a_min, a_max] -> [b_min, b_max], clipped (float32); voxelwise,
    so any orientation and axis order, geometry kept."""

    def __init__(self, a_min: float, a_max: float, b_min: float = 0.0, b_max: float = 1.0, clip: bool = True):
        self.a_min, self.a_max = _check_range(a_min, a_max, "ScaleIntensityRange window")
        if not (np.isfinite(b_min) and np.isfinite(b_max)) or b_min == b_max:
            raise ValueError(f"ScaleIntensityRange needs finite b_min != b_max, got b_min={b_min}, b_max={b_max}")
        self.b_min, self.b_max, self.clip = float(b_min), float(b_max), bool(clip)

    def __call__(self, data):
        return map_array(
            data, lambda a: scale_intensity_range(a, self.a_min, self.a_max, self.b_min, self.b_max, self.clip)
        )

    def __repr__(self) -> str:
        return f"ScaleIntensityRange([{self.a_min:g}, {self.a_max:g}] -> [{self.b_min:g}, {self.b_max:g}])"


class NormalizeMinMax:
    """Min-max normalisation of the whole input to [b_min, b_max] (float32); any orientation and
    axis order, geometry kept."""

    def __init__(self, b_min: float = 0.0, b_max: float = 1.0):
        self.b_min, self.b_max = _check_range(b_min, b_max, "NormalizeMinMax")

    def __call__(self, data):
        return map_array(data, lambda a: normalize_min_max(a, self.b_min, self.b_max))

    def __repr__(self) -> str:
        return f"NormalizeMinMax([{self.b_min:g}, {self.b_max:g}])"


class CastDtype:
    """Checked cast to `dtype` (see `cast_checked`); any orientation and axis order, geometry kept."""

    def __init__(self, dtype):
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise ValueError(f"CastDtype: not a numpy dtype: {dtype!r}") from exc

    def __call__(self, data):
        return map_array(data, lambda a: cast_checked(a, self.dtype))

    def __repr__(self) -> str:
        return f"CastDtype({self.dtype.name})"
