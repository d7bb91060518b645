"""Checks on the raw NIfTI file that SimpleITK would otherwise paper over.

ITK's NIfTI reader silently replaces a zero voxel size with 1 mm, takes the absolute value of a
negative one, and turns NaN / infinite voxels into 0: each would hand a model a wrong tensor
without a word. Reading the header ourselves (NIfTI-1: 348-byte header; NIfTI-2: 540 bytes;
either byte order; gzip or not) costs well under a millisecond; only floating-point files need
their voxels scanned for non-finite values (integer CT files, the usual case, skip that).
"""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass

import numpy as np

from ctbench.preprocess.volume_errors import InvalidSpacing, InvalidVolume, NonFiniteVoxels

__all__ = ["NiftiHeader", "check_nifti_finite", "check_nifti_spacing", "read_nifti_header", "read_nifti_pixdim"]

_FLOAT_CODES = {16: "f4", 64: "f8"}
_CHUNK_BYTES = 1 << 26


@dataclass(frozen=True)
class NiftiHeader:
    endian: str
    dims: tuple[int, ...]  # dim[1 : dim[0] + 1]
    pixdim: tuple[float, ...]  # pixdim[1 : dim[0] + 1]
    datatype: int
    vox_offset: int


def _open(path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def read_nifti_header(path: str | os.PathLike) -> NiftiHeader | None:
    """The fields checked here from a .nii / .nii.gz header, or None if it is not NIfTI-1/2."""
    try:
        with _open(path) as handle:
            head = handle.read(540)
    except (OSError, EOFError):
        return None  # not gzip / unreadable: SimpleITK's reader reports it as InvalidVolume
    if len(head) < 348:
        return None
    for endian in ("<", ">"):
        (size,) = struct.unpack(endian + "i", head[:4])
        if size == 348:
            dims = struct.unpack(endian + "8h", head[40:56])
            (datatype,) = struct.unpack(endian + "h", head[70:72])
            pixdim = struct.unpack(endian + "8f", head[76:108])
            (vox_offset,) = struct.unpack(endian + "f", head[108:112])
            break
        if size == 540 and len(head) >= 540:
            (datatype,) = struct.unpack(endian + "h", head[12:14])
            dims = struct.unpack(endian + "8q", head[16:80])
            pixdim = struct.unpack(endian + "8d", head[104:168])
            (vox_offset,) = struct.unpack(endian + "q", head[168:176])
            break
    else:
        return None
    ndim = max(0, min(int(dims[0]), 7))
    return NiftiHeader(
        endian, tuple(int(v) for v in dims[1 : ndim + 1]), tuple(float(v) for v in pixdim[1 : ndim + 1]),
        int(datatype), int(vox_offset),
    )


def read_nifti_pixdim(path: str | os.PathLike) -> tuple[float, ...] | None:
    """``pixdim[1:dim[0]+1]`` (voxel sizes) from a .nii / .nii.gz header, or None if not NIfTI."""
    header = read_nifti_header(path)
    return None if header is None else header.pixdim


def check_nifti_finite(path: str | os.PathLike, header: NiftiHeader | None = None) -> None:
    """Raise `NonFiniteVoxels` if a float32/float64 NIfTI holds NaN or inf (streamed, bounded memory)."""
    header = header or read_nifti_header(path)
    if header is None or header.datatype not in _FLOAT_CODES:
        return
    dtype = np.dtype(("<" if header.endian == "<" else ">") + _FLOAT_CODES[header.datatype])
    remaining = int(np.prod(header.dims, dtype=np.int64)) * dtype.itemsize
    total, bad = remaining // dtype.itemsize, 0
    try:
        with _open(path) as handle:
            handle.read(header.vox_offset)
            while remaining > 0:
                chunk = handle.read(min(_CHUNK_BYTES, remaining))
                if not chunk:
                    break
                usable = len(chunk) - len(chunk) % dtype.itemsize
                bad += int(np.count_nonzero(~np.isfinite(np.frombuffer(chunk[:usable], dtype=dtype))))
                remaining -= len(chunk)
    except (OSError, EOFError) as exc:
        raise InvalidVolume(f"{path}: cannot decode voxels, truncated or corrupt? ({exc})") from None
    if bad:
        raise NonFiniteVoxels(f"{path}: {bad} of {total} voxels are NaN or infinite")


def check_nifti_spacing(path: str | os.PathLike) -> None:
    """Raise `InvalidSpacing` if any spatial voxel size in the header is zero, negative or not finite."""
    pixdim = read_nifti_pixdim(path)
    if pixdim is None:
        return
    spatial = pixdim[:3]
    if any(not (v > 0 and v < float("inf")) for v in spatial):
        raise InvalidSpacing(f"{path}: NIfTI header voxel sizes (pixdim) must be positive and finite, got {spatial}")
