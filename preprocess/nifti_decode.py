"""Decoding a NIfTI file (.nii or .nii.gz) from its bytes in memory, checked before and after.

The bytes a caller hashed are the bytes decoded: nothing is re-read from a path. Before any voxel
is decompressed the header is checked: a 3D real-valued image with positive, finite voxel sizes
and a decoded size (voxels x 4 bytes, the float32 a model usually wants) within `max_bytes`,
so a small .nii.gz that declares a huge image is refused for the price of reading 540 bytes.
After decoding, a file that ends before its last voxel is an `InvalidVolume` (SimpleITK's reader
would fill the missing voxels with zeros and say nothing).

Voxels are decoded with numpy. The geometry (spacing, origin, direction, in LPS) is ctbench's
own reading of the header (`nifti_transform.py`: the sform when its code is > 0, else the qform,
else pixdim alone, as the NIfTI standard and nibabel choose; SimpleITK differs for some code
pairs). A sform and qform that disagree are recorded on the volume (`Volume.header`), logged once
per decode, and refused with `ConflictingHeaders` when `conflicted_headers="refuse"`. The pixel
type is SimpleITK's (float32 when the header scales), from its reader run on the header alone.
"""
from __future__ import annotations

import logging
import math
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ctbench.errors import InvalidVolume, VolumeTooLarge
from ctbench.preprocess.nifti_header import HEADER_BYTES, NiftiHeader, parse_nifti_header
from ctbench.preprocess.nifti_transform import CONFLICT_POLICIES, header_geometry
from ctbench.preprocess.volume_errors import InvalidSpacing, NotThreeDimensional, TruncatedVolume, UnsupportedVoxelType

__all__ = [
    "BYTES_PER_VOXEL_BOUND", "check_nifti_header", "decode_nifti", "decoded_size_bound", "is_gzip", "nifti_header_of",
]

BYTES_PER_VOXEL_BOUND = 4  # the decoded-size estimate: voxels x float32
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DEFLATE_RATIO = 1032  # deflate cannot expand data by more than this
log = logging.getLogger("ctbench.preprocess")


def decoded_size_bound(size: tuple[int, ...]) -> int:
    """Bytes a volume of `size` voxels takes as float32: the bound `max_bytes` is compared with."""
    return int(np.prod([max(0, int(s)) for s in size], dtype=object)) * BYTES_PER_VOXEL_BOUND


def is_gzip(data: bytes) -> bool:
    return data[:2] == _GZIP_MAGIC


def nifti_header_of(data: bytes, where: str) -> NiftiHeader:
    """The header of an in-memory NIfTI file, decompressing only its first bytes if gzipped."""
    head = _gunzip(data, HEADER_BYTES, where, need_all=False) if is_gzip(data) else data[:HEADER_BYTES]
    header = parse_nifti_header(head)
    if header is None:
        raise InvalidVolume(f"{where}: not a readable image (no NIfTI-1 or NIfTI-2 header)")
    return header


def check_nifti_header(header: NiftiHeader, where: str, max_bytes: int | None = None) -> tuple[int, int, int]:
    """The (i, j, k) size after checking dimensionality, voxel type, spacing and decoded size."""
    dims = header.dims
    if len(dims) == 4 and dims[3] == 1:
        dims = dims[:3]
    if len(dims) != 3:
        raise NotThreeDimensional(f"{where}: expected a 3D volume, got {len(dims)}D with size {dims}")
    if min(dims) < 1:
        raise NotThreeDimensional(f"{where}: empty volume, size {dims}")
    if header.voxel_dtype is None:
        raise UnsupportedVoxelType(
            f"{where}: voxels of type {header.datatype_name} (NIfTI datatype {header.datatype}); "
            "expected one real value per voxel (integer or float32/float64)"
        )
    spatial = header.pixdim[:3]
    if any(not (v > 0 and v < float("inf")) for v in spatial):
        raise InvalidSpacing(f"{where}: NIfTI header voxel sizes (pixdim) must be positive and finite, got {spatial}")
    if max_bytes is not None:
        estimate = decoded_size_bound(dims)
        if estimate > max_bytes:
            raise VolumeTooLarge(
                f"{where}: volume of size {dims} needs about {estimate} bytes, over the bound of {max_bytes}"
            )
    if header.vox_offset < header.header_size:
        raise InvalidVolume(f"{where}: NIfTI vox_offset {header.vox_offset} lies inside the header")
    return dims  # type: ignore[return-value]


def decode_nifti(data: bytes, where: str, max_bytes: int | None = None, conflicted_headers: str = "warn"):
    """Decode an in-memory .nii / .nii.gz into a validated `Volume` (array ``[k, j, i]``, LPS).

    Raises `InvalidVolume` (not NIfTI, corrupt or truncated), `NotThreeDimensional`,
    `UnsupportedVoxelType` (complex, RGB, ...), `InvalidSpacing`, `NonFiniteVoxels`, and
    `VolumeTooLarge` (checked from the header, before decompressing the voxels);
    `ConflictingHeaders` when sform and qform disagree and `conflicted_headers` is "refuse".
    """
    from ctbench.preprocess.volume import Volume, check_finite

    if conflicted_headers not in CONFLICT_POLICIES:
        raise ValueError(f"conflicted_headers must be one of {CONFLICT_POLICIES}, got {conflicted_headers!r}")
    header = nifti_header_of(data, where)
    size = check_nifti_header(header, where, max_bytes)
    placed = header_geometry(header, where)
    if conflicted_headers == "refuse":
        placed.refuse_if_conflicted(where)
    elif placed.conflict:
        log.warning("%s: sform and qform disagree (%s); using the sform, as the NIfTI standard says", where, placed.conflict)
    voxel_dtype = header.voxel_dtype
    assert voxel_dtype is not None  # check_nifti_header refused the other types
    count = math.prod(size)
    end = header.vox_offset + count * voxel_dtype.itemsize
    if is_gzip(data) and end > _MAX_DEFLATE_RATIO * len(data) + HEADER_BYTES:
        raise TruncatedVolume(f"{where}: truncated: {len(data)} gzip bytes cannot hold the {end} bytes the header promises")
    raw = _gunzip(data, end, where, need_all=True) if is_gzip(data) else data
    if len(raw) < end:
        raise TruncatedVolume(
            f"{where}: truncated: the header promises {end} bytes of header and voxels, the file holds {len(raw)}"
        )
    dtype = _header_pixel_type(raw[: header.vox_offset], where)
    stored = np.frombuffer(raw, dtype=voxel_dtype, count=count, offset=header.vox_offset)
    array = _scaled(stored, header, dtype).reshape(size[::-1])
    check_finite(array, where)
    return Volume(array, placed.spacing, placed.origin, placed.direction, source=where, header=placed)


def _gunzip(data: bytes, wanted: int, where: str, need_all: bool) -> bytes:
    """Up to `wanted` decompressed bytes (never more: a bomb costs what was asked for, no more)."""
    parts: list[bytes] = []
    got, rest = 0, data
    try:
        while got < wanted and rest:
            stream = zlib.decompressobj(wbits=31)
            part = stream.decompress(rest, wanted - got)
            parts.append(part)
            got += len(part)
            if not stream.eof:
                if need_all and got < wanted and not stream.unconsumed_tail:
                    raise TruncatedVolume(f"{where}: truncated: the gzip stream ends after {got} bytes")
                break  # stopped at `wanted` (the stream goes on), or a short header read
            rest = stream.unused_data  # a further gzip member, if any
            if rest and not is_gzip(rest):
                break  # trailing garbage after the last member is ignored, as gzip does
    except zlib.error as exc:
        raise InvalidVolume(f"{where}: corrupt gzip data after {got} bytes ({exc})") from None
    return parts[0] if len(parts) == 1 else b"".join(parts)  # one member, the usual case: no copy


def _scaled(stored: np.ndarray, header: NiftiHeader, dtype: np.dtype) -> np.ndarray:
    """Voxels as SimpleITK gives them: native byte order; scl_slope / scl_inter applied when set."""
    slope, inter = header.scl_slope, header.scl_inter
    if slope == 0 or not np.isfinite(slope) or (slope == 1 and inter == 0) or not np.isfinite(inter):
        return stored.astype(dtype)  # ITK ignores a zero or non-finite slope, as the NIfTI standard says
    return (stored.astype(np.float64) * slope + inter).astype(dtype)


def _header_pixel_type(header_bytes: bytes, where: str) -> np.dtype:
    """The pixel type SimpleITK's reader gives these header bytes (its geometry is not used)."""
    import SimpleITK as sitk

    with tempfile.TemporaryDirectory(prefix="ctbench-hdr-") as tmp:
        path = Path(tmp) / "header.nii"
        path.write_bytes(header_bytes)
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as exc:
            from ctbench.preprocess.volume import _first_line

            raise InvalidVolume(f"{where}: not a readable image ({_first_line(exc)})") from None
        dim = reader.GetDimension()
        if dim < 3:
            raise InvalidVolume(f"{where}: the reader sees a {dim}D image in this NIfTI header")
        return np.dtype(sitk.GetArrayViewFromImage(sitk.Image([1] * 3, reader.GetPixelID())).dtype)
