"""The SimpleITK image behind a `Volume`, made once and shared by every resampling step; and a
per-volume memo for steps several presets share.

Resampling goes through SimpleITK, which wants its own image object. Building one from a numpy
array copies every voxel (about 0.2 s for a 512x512x300 volume), so the image is cached on the
`Volume` itself. A volume made by exact reorientation (`reorient`) is the same physical image as
its source; it records its source so a later resampling reads the source's image instead of
copying the permuted array.

Everything is stored as private attributes of the volume instance (not in module-level tables),
so a volume and all it derived go away together as soon as nobody holds the volume: no leaks in
a long-running model server.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from ctbench.preprocess.volume import Volume, volume_to_sitk

T = TypeVar("T")

__all__ = ["as_sitk", "derived", "physical_source", "record_same_physics", "remember_image"]


def remember_image(volume: Volume, image) -> None:
    """Record that `image` holds exactly `volume`'s voxels and geometry (e.g. straight from a reader)."""
    object.__setattr__(volume, "_sitk_image", image)


def record_same_physics(derived_volume: Volume, source: Volume) -> None:
    """Record that `derived_volume` is `source` re-indexed (permuted / flipped), voxel for voxel."""
    object.__setattr__(derived_volume, "_physical_source", physical_source(source))


def physical_source(volume: Volume) -> Volume:
    """The volume whose SimpleITK image can stand in for `volume` when resampling in physical space."""
    return volume.__dict__.get("_physical_source", volume)


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
    if key not in table:
        table[key] = compute()
    return table[key]
