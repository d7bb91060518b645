"""The SimpleITK image behind a `Volume`, made once and shared by every resampling step; and a
per-volume memo for steps several presets share.

Resampling goes through SimpleITK, which wants its own image object. Building one from a numpy
array copies every voxel (about 0.2 s for a 512x512x300 volume), so the image is cached on the
`Volume` itself. A volume made by exact reorientation (`reorient`) is the same physical image as
its source; it records its source so a later resampling reads the source's image instead of
copying the permuted array.

Everything is stored as private attributes of the volume instance (not in module-level tables),
and the only back-reference (derived -> source) is weak, so there are no reference cycles: a
volume and all it derived are freed the moment nobody holds the volume, without waiting for the
cyclic garbage collector (which rarely runs when the allocations are a few huge arrays).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar

from ctbench.preprocess.volume import Volume, volume_to_sitk

T = TypeVar("T")

__all__ = ["array_view", "as_sitk", "cached_image", "derived", "physical_source", "record_same_physics", "remember_image"]


class _ImageBuffer:
    """Exposes a SimpleITK image's voxel buffer to numpy and keeps the image alive meanwhile."""

    def __init__(self, image):
        import SimpleITK as sitk

        view = sitk.GetArrayViewFromImage(image)
        self.__array_interface__ = view.__array_interface__
        self._keep = (image, view)


def array_view(image):
    """Read-only numpy view (k, j, i) of `image`'s voxels without copying; the image lives as long
    as the array (or anything derived from it) does."""
    import numpy as np

    return np.asarray(_ImageBuffer(image))


def remember_image(volume: Volume, image) -> None:
    """Record that `image` holds exactly `volume`'s voxels and geometry (e.g. straight from a reader)."""
    object.__setattr__(volume, "_sitk_image", image)


def record_same_physics(derived_volume: Volume, source: Volume) -> None:
    """Record that `derived_volume` is `source` re-indexed (permuted / flipped), voxel for voxel."""
    object.__setattr__(derived_volume, "_physical_source", weakref.ref(physical_source(source)))


def physical_source(volume: Volume) -> Volume:
    """The volume whose SimpleITK image can stand in for `volume` when resampling in physical space
    (`volume` itself once that source is gone)."""
    reference = volume.__dict__.get("_physical_source")
    source = reference() if reference is not None else None
    return volume if source is None else source


def cached_image(volume: Volume):
    """`volume`'s SimpleITK image if one is already at hand, else None (never builds one)."""
    return volume.__dict__.get("_sitk_image")


def as_sitk(volume: Volume):
    """`volume` as a SimpleITK image (cached on the volume; do not modify the returned image)."""
    image = volume.__dict__.get("_sitk_image")
    if image is None:
        image = volume_to_sitk(volume)
        remember_image(volume, image)
    return image


def derived(volume: Volume, key: tuple, compute: Callable[[], T]) -> T:
    """`compute()` once per (`volume`, `key`): shares steps such as a HU clip between presets.

    The result lives as long as `volume` does. Only for pure, deterministic steps.
    """
    table = volume.__dict__.setdefault("_derived", {})
    if key in table:
        return table[key]
    result = compute()
    if result is not volume:  # storing the volume in its own table would be a reference cycle
        table[key] = result
    return result
