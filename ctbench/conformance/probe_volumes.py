"""Small synthetic CT volumes the conformance checks send, as NIfTI file bytes.

Every probe is a `ProbeVolume`: the file's bytes, its filename (which gives the format) and its
volume id (`sha256:<hex>` of the bytes, as the protocol requires). Geometry follows
preprocess/volume.py: arrays are [k, j, i], directions are LPS.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass

import numpy as np

AIR_HU, LUNG_HU, TISSUE_HU = -1000, -850, 40


@dataclass(frozen=True)
class ProbeVolume:
    name: str
    data: bytes
    filename: str

    @property
    def volume_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


def _nifti_bytes(array: np.ndarray, spacing, origin, direction, filename: str) -> bytes:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in origin))
    image.SetDirection(tuple(float(d) for d in np.asarray(direction, dtype=float).ravel()))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, filename)
        sitk.WriteImage(image, path)
        with open(path, "rb") as handle:
            return handle.read()


def phantom_array(shape_kji: tuple[int, int, int], nodule_side: str | None = None, seed: int = 0) -> np.ndarray:
    """A minimal chest: an elliptic soft-tissue body in air holding two lungs; optionally a
    soft-tissue nodule inside the patient's left lung (high i, since +i is LPS left for an
    identity direction) or right lung."""
    k, j, i = shape_kji
    zz, yy, xx = np.meshgrid(np.arange(k), np.arange(j), np.arange(i), indexing="ij")
    body = ((xx - i / 2) / (0.45 * i)) ** 2 + ((yy - j / 2) / (0.40 * j)) ** 2 <= 1.0
    rng = np.random.default_rng(seed)
    array = np.where(body, TISSUE_HU, AIR_HU).astype(np.int16)
    centres = {"left": 0.70 * i, "right": 0.30 * i}
    for centre in centres.values():
        lung = ((xx - centre) / (0.14 * i)) ** 2 + ((yy - j / 2) / (0.25 * j)) ** 2 + ((zz - k / 2) / (0.36 * k)) ** 2 <= 1.0
        array[lung] = LUNG_HU
    array += rng.integers(-5, 6, size=array.shape, dtype=np.int16)
    if nodule_side is not None:
        ci = centres[nodule_side]
        nodule = ((xx - ci) ** 2 + (yy - j / 2) ** 2 + (zz - k / 2) ** 2) <= (0.05 * i) ** 2
        array[nodule] = TISSUE_HU
    return array


def small_volume(name: str = "probe-small", seed: int = 0) -> ProbeVolume:
    """A small chest (nodule in the left lung), gzipped NIfTI: a few kilobytes."""
    array = phantom_array((32, 48, 64), nodule_side="left", seed=seed)
    filename = f"{name}.nii.gz"
    return ProbeVolume(name, _nifti_bytes(array, (4.0, 4.0, 4.0), (0, 0, 0), np.eye(3), filename), filename)


def large_volume(min_bytes: int = 5 << 20) -> ProbeVolume:
    """An uncompressed .nii chest bigger than gRPC's default 4 MiB message limit: it must be
    sent in chunks."""
    side = 128
    depth = int(np.ceil(min_bytes / (side * side * 2))) + 1
    array = phantom_array((depth, side, side), nodule_side="left", seed=1)
    name = "probe-large"
    return ProbeVolume(name, _nifti_bytes(array, (3.0, 3.0, 3.0), (0, 0, 0), np.eye(3), f"{name}.nii"), f"{name}.nii")


#: Storage orders for the orientation probe: the identity, a flip of every axis, and a
#: permutation that also flips (what a sagittal acquisition stored as-is looks like).
ORIENTATION_STORAGES = ("LPS", "RAI", "ASL")


def orientation_storages(nodule_side: str = "left", codes: tuple[str, ...] = ORIENTATION_STORAGES) -> list[ProbeVolume]:
    """The same physical chest (a nodule in the patient's `nodule_side` lung), stored with its
    index axes pointing towards each of `codes`. Re-indexing is exact (ctbench.preprocess.
    orientation.reorient: permutations and flips only), so a server that respects the file's
    geometry sees identical anatomy in every one."""
    from ctbench.preprocess.orientation import reorient
    from ctbench.preprocess.volume import Volume

    array = phantom_array((32, 48, 64), nodule_side=nodule_side, seed=2)
    base = Volume(array, (4.0, 3.5, 3.0), (-120.0, -90.0, -50.0), np.eye(3), "orientation-probe")
    probes = []
    for code in codes:
        volume = reorient(base, code)
        stem = f"orientation-{nodule_side}-{code.lower()}"
        data = _nifti_bytes(np.ascontiguousarray(volume.array), volume.spacing, volume.origin,
                            volume.direction, f"{stem}.nii.gz")
        probes.append(ProbeVolume(stem, data, f"{stem}.nii.gz"))
    return probes
