"""Writing NIfTI-1 files with exactly the sform, qform and codes a test asks for.

No library writes every combination (nibabel and SimpleITK each fix up codes or transforms on
the way out), so the 348-byte header is packed here field by field. Affines are 4x4 RAS (NIfTI's
world); the qform is stored as the standard's quaternion + qfac + pixdim, so it must be a
rotation (or rotation-reflection) times positive voxel sizes.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_DATATYPES = {np.dtype("int16"): (4, 16), np.dtype("uint16"): (512, 16), np.dtype("float32"): (16, 32)}


def ras_affine(volume) -> np.ndarray:
    """A `Volume`'s (LPS) geometry as the 4x4 RAS affine a NIfTI header holds."""
    lps = np.eye(4)
    lps[:3, :3] = volume.direction * np.asarray(volume.spacing)
    lps[:3, 3] = volume.origin
    return LPS_TO_RAS @ lps


def mirror_left_right(affine_ras: np.ndarray) -> np.ndarray:
    """The same voxels placed as the patient's mirror image (world x negated)."""
    return np.diag([-1.0, 1.0, 1.0, 1.0]) @ affine_ras


def quaternion_of(affine_ras: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float], float, np.ndarray]:
    """(quatern b, c, d), qoffset, qfac and voxel sizes of an affine, as nifti1_io's mat44_to_quatern."""
    linear = affine_ras[:3, :3].astype(float)
    zooms = np.linalg.norm(linear, axis=0)
    rotation = linear / zooms
    qfac = 1.0
    if np.linalg.det(rotation) < 0:
        qfac = -1.0
        rotation[:, 2] *= -1
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > -0.5:
        a = 0.5 * np.sqrt(1.0 + trace)
        b, c, d = (m[2, 1] - m[1, 2]) / (4 * a), (m[0, 2] - m[2, 0]) / (4 * a), (m[1, 0] - m[0, 1]) / (4 * a)
    else:
        xd, yd, zd = 1.0 + m[0, 0] - (m[1, 1] + m[2, 2]), 1.0 + m[1, 1] - (m[0, 0] + m[2, 2]), 1.0 + m[2, 2] - (m[0, 0] + m[1, 1])
        if xd > 1.0:
            b = 0.5 * np.sqrt(xd); c = (m[0, 1] + m[1, 0]) / (4 * b); d = (m[0, 2] + m[2, 0]) / (4 * b); a = (m[2, 1] - m[1, 2]) / (4 * b)
        elif yd > 1.0:
            c = 0.5 * np.sqrt(yd); b = (m[0, 1] + m[1, 0]) / (4 * c); d = (m[1, 2] + m[2, 1]) / (4 * c); a = (m[0, 2] - m[2, 0]) / (4 * c)
        else:
            d = 0.5 * np.sqrt(zd); b = (m[0, 2] + m[2, 0]) / (4 * d); c = (m[1, 2] + m[2, 1]) / (4 * d); a = (m[1, 0] - m[0, 1]) / (4 * d)
        if a < 0:
            b, c, d = -b, -c, -d
    return (float(b), float(c), float(d)), tuple(float(v) for v in affine_ras[:3, 3]), qfac, zooms


def write_nifti(
    path: str | Path, array_kji: np.ndarray, *, sform: np.ndarray, qform: np.ndarray, sform_code: int, qform_code: int,
    pixdim: tuple[float, float, float] | None = None,
) -> Path:
    """Write `array_kji` (``[k, j, i]``) as a NIfTI-1 file with these transforms and codes (both
    transforms are stored whatever their codes; pixdim comes from the qform unless given)."""
    path = Path(path)
    array = np.ascontiguousarray(array_kji)
    datatype, bitpix = _DATATYPES[array.dtype]
    quatern, qoffset, qfac, zooms = quaternion_of(qform)
    zooms = np.asarray(pixdim if pixdim is not None else zooms, dtype=float)
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *array.shape[::-1], 1, 1, 1, 1)
    struct.pack_into("<2h", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, qfac, *zooms, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<3f", header, 108, 352.0, 1.0, 0.0)  # vox_offset, scl_slope, scl_inter
    struct.pack_into("<2h", header, 252, qform_code, sform_code)
    struct.pack_into("<6f", header, 256, *quatern, *qoffset)
    struct.pack_into("<12f", header, 280, *np.asarray(sform, dtype=float)[:3].ravel())
    header[344:348] = b"n+1\0"
    body = bytes(header) + array.astype(array.dtype.newbyteorder("<")).tobytes()
    path.write_bytes(gzip.compress(body, mtime=0) if path.name.endswith(".gz") else body)
    return path
