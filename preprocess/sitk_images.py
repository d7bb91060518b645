"""The SimpleITK image behind a `Volume`, made once and shared by every resampling step; and a
per-volume memo for steps several presets share.

Resampling goes through SimpleITK, which wants its own image object. Building one from a numpy
array copies every voxel (about 0.2 s for a 512x512x300 volume), so the image is cached per
`Volume` (weakly: it goes when the volume goes). A volume made by exact reorientation
(`reorient`) is the same physical image as its source; it is recorded here so a later resampling
reads the source's image instead of copying the permuted array.
"""
from __future__ import annotations

import weakref

from ctbench.preprocess.volume import Volume, volume_to_sitk

_DERIVED: "weakref.WeakKeyDictionary[Volume, dict]" = weakref.WeakKeyDictionary()
_IMAGES: "weakref.WeakKeyDictionary[Volume, object]" = weakref.WeakKeyDictionary()
_SAME_PHYSICS: "weakref.WeakKeyDictionary[Volume, Volume]" = weakref.WeakKeyDictionary()


def remember_image(volume: Volume, image) -> None:
    """Record that `image` holds exactly `volume`'s voxels and geometry (e.g. straight from a reader)."""
    _IMAGES[volume] = image


def record_same_physics(derived: Volume, source: Volume) -> None:
    """Record that `derived` is `source` re-indexed (permuted / flipped), voxel for voxel."""
    _SAME_PHYSICS[derived] = _SAME_PHYSICS.get(source, source)


def physical_source(volume: Volume) -> Volume:
    """The volume whose SimpleITK image can stand in for `volume` when resampling in physical space."""
    return _SAME_PHYSICS.get(volume, volume)


def as_sitk(volume: Volume):
    """`volume` as a SimpleITK image (cached; do not modify the returned image)."""
    image = _IMAGES.get(volume)
    if image is None:
        image = volume_to_sitk(volume)
        _IMAGES[volume] = image
    return image


def derived(volume: Volume, key: tuple, compute):
    """`compute()` once per (`volume`, `key`): shares steps such as a HU clip between presets.

    The result lives as long as `volume` does. Only for pure, deterministic steps.
    """
    table = _DERIVED.setdefault(volume, {})
    if key not in table:
        table[key] = compute()
    return table[key]
