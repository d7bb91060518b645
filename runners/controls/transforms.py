"""The volume controls: what each one does to a volume's voxels (the header stays as it is).

Pure functions of a `NiftiVoxels`. `mirror_lr` flips the voxel axis that runs left-right in
patient space, so the patient's left becomes their right for every loader (for an oblique
volume, the mirror plane is across the voxel axis nearest left-right: no resampling); `blank` fills the
volume with air; `noise` replaces it with Gaussian noise of the volume's own mean and spread
(seeded per volume). `shuffle` changes no voxels: it gives each question another patient's
volume (`shuffle.py`).
"""
from __future__ import annotations

import zlib

import numpy as np

from ctbench.runners.controls.nifti_voxels import NiftiVoxels

AIR_HU = -1000.0


def mirror_lr(volume: NiftiVoxels) -> NiftiVoxels:
    """The left-right mirror image in patient space (array axis -1 - lr_axis is file axis lr_axis)."""
    axis = volume.raw.ndim - 1 - volume.lr_axis
    return volume.with_raw(np.ascontiguousarray(np.flip(volume.raw, axis=axis)))


def blank(volume: NiftiVoxels) -> NiftiVoxels:
    """Air (-1000 HU) everywhere, same geometry and storage type."""
    return volume.with_raw(volume.from_hu(np.full(volume.raw.shape, AIR_HU)))


def noise(volume: NiftiVoxels, seed: int, key: str) -> NiftiVoxels:
    """Gaussian noise with the volume's mean and standard deviation in HU; the same `seed` and
    `key` (the volume's image path) give the same noise."""
    hu = volume.to_hu()
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return volume.with_raw(volume.from_hu(rng.normal(float(hu.mean()), float(hu.std()), size=hu.shape).astype(np.float32)))
