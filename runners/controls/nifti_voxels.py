"""A NIfTI file as header bytes plus a voxel array, so a control can rewrite the voxels and keep
every header byte (both transforms, their codes, scaling, extensions) exactly as it was.

Keeping the header byte for byte is what makes a derived volume header-aware: whichever
transform a model's loader prefers (sform or qform), it sees the same geometry as on the real
file, so a voxel-space mirror is a mirror for every loader. NIfTI-1 and NIfTI-2, either byte
order, gzip or not. The array is ``[..., k, j, i]`` (C order over the file's Fortran layout:
the last axis is the file's first, fastest-varying axis).
"""
from __future__ import annotations

import gzip
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctbench.errors import InvalidVolume

DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8", 1280: "u8"}
# field -> (offset, struct format) in NIfTI-1 and NIfTI-2 headers
FIELDS = {
    348: {"datatype": (70, "h"), "dim": (40, "8h"), "pixdim": (76, "8f"), "vox_offset": (108, "f"),
          "scl_slope": (112, "f"), "scl_inter": (116, "f"), "qform_code": (252, "h"), "sform_code": (254, "h"),
          "quatern": (256, "3f"), "srow_x": (280, "4f"), "srow_y": (296, "4f"), "srow_z": (312, "4f")},
    540: {"datatype": (12, "h"), "dim": (16, "8q"), "pixdim": (104, "8d"), "vox_offset": (168, "q"),
          "scl_slope": (176, "d"), "scl_inter": (184, "d"), "qform_code": (344, "i"), "sform_code": (348, "i"),
          "quatern": (352, "3d"), "srow_x": (400, "4d"), "srow_y": (432, "4d"), "srow_z": (464, "4d")},
}


@dataclass
class NiftiVoxels:
    """The bytes before the voxels (header and extensions, untouched), the voxels as stored
    (raw, unscaled), and what a control needs to know about them."""

    head: bytes
    raw: np.ndarray  # stored values, shape dims[::-1]
    tail: bytes  # anything after the voxel block (kept as is)
    slope: float  # HU = raw * slope + inter (slope 1, inter 0 when the header does not scale)
    inter: float
    lr_axis: int  # the file's voxel axis (0 = i, 1 = j, 2 = k) closest to the patient's left-right
    gzipped: bool

    def to_hu(self) -> np.ndarray:
        return self.raw.astype(np.float32) * np.float32(self.slope) + np.float32(self.inter)

    def from_hu(self, hu: np.ndarray) -> np.ndarray:
        """Stored values for HU values: unscaled, rounded and clipped for integer storage."""
        raw = (np.asarray(hu, dtype=np.float64) - self.inter) / self.slope
        if np.issubdtype(self.raw.dtype, np.integer):
            info = np.iinfo(self.raw.dtype)
            raw = np.clip(np.rint(raw), info.min, info.max)
        return raw.astype(self.raw.dtype)

    def with_raw(self, raw: np.ndarray) -> NiftiVoxels:
        if raw.shape != self.raw.shape or raw.dtype != self.raw.dtype:
            raise ValueError(f"new voxels {raw.shape} {raw.dtype} differ from the file's {self.raw.shape} {self.raw.dtype}")
        return NiftiVoxels(self.head, raw, self.tail, self.slope, self.inter, self.lr_axis, self.gzipped)

    def write(self, path: str | os.PathLike) -> None:
        """Write atomically (a temporary file, then rename); gzip without a time stamp or a name, so the
        same voxels give the same bytes (and the same volume id) on every run."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        body = self.head + np.ascontiguousarray(self.raw).tobytes() + self.tail
        if self.gzipped:
            with open(tmp, "wb") as handle, gzip.GzipFile(filename="", fileobj=handle, mode="wb", mtime=0, compresslevel=6) as out:
                out.write(body)
        else:
            tmp.write_bytes(body)
        tmp.replace(path)


def read_nifti_voxels(path: str | os.PathLike) -> NiftiVoxels:
    """Read a .nii / .nii.gz file; `InvalidVolume` (with the path) when it is not one this can rewrite."""
    path = Path(path)
    gzipped = path.name.endswith(".gz")
    try:
        data = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InvalidVolume(f"{path}: cannot read as NIfTI ({exc})") from None
    endian, fields = _layout(data, path)

    def get(name):
        offset, fmt = fields[name]
        values = struct.unpack_from(endian + fmt, data, offset)
        return values if len(values) > 1 else values[0]

    dim = get("dim")
    ndim = int(dim[0])
    if not 3 <= ndim <= 7:
        raise InvalidVolume(f"{path}: a control needs a 3-D volume, the header says {ndim} dimensions")
    dims = [int(d) for d in dim[1 : ndim + 1]]
    datatype = int(get("datatype"))
    if datatype not in DTYPES:
        raise InvalidVolume(f"{path}: NIfTI datatype {datatype} is not one a control can rewrite ({sorted(DTYPES)})")
    dtype = np.dtype(endian + DTYPES[datatype])
    offset = int(get("vox_offset"))
    count = math.prod(dims)
    end = offset + count * dtype.itemsize
    if offset < fields["srow_z"][0] or end > len(data):
        raise InvalidVolume(f"{path}: the voxel block ({offset}..{end}) does not fit the file ({len(data)} bytes)")
    raw = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims[::-1]).copy()
    slope, inter = float(get("scl_slope")), float(get("scl_inter"))
    if slope == 0 or not math.isfinite(slope):  # the standard: no scaling
        slope, inter = 1.0, 0.0
    elif not math.isfinite(inter):
        inter = 0.0
    axis = lr_axis(_direction(data, path))
    return NiftiVoxels(data[:offset], raw, data[end:], slope, inter, axis, gzipped)


def _layout(data: bytes, path: Path) -> tuple[str, dict]:
    for endian in ("<", ">"):
        if len(data) >= 4:
            (size,) = struct.unpack_from(endian + "i", data, 0)
            if size in FIELDS and len(data) >= size:
                return endian, FIELDS[size]
    raise InvalidVolume(f"{path}: not a NIfTI-1 or NIfTI-2 file (a control can only rewrite NIfTI volumes)")


def _direction(data: bytes, path: Path) -> np.ndarray:
    """The voxel-to-world direction the NIfTI standard says to use (`preprocess/nifti_transform.py`:
    the sform when its code is > 0, else the qform, else the base transform)."""
    from ctbench.preprocess.nifti_header import parse_nifti_header
    from ctbench.preprocess.nifti_transform import header_geometry

    header = parse_nifti_header(data[:540])
    if header is None:
        raise InvalidVolume(f"{path}: not a NIfTI-1 or NIfTI-2 file (a control can only rewrite NIfTI volumes)")
    return header_geometry(header, str(path)).direction


def lr_axis(direction: np.ndarray) -> int:
    """The voxel axis whose direction has the largest left-right (world x) component."""
    columns = np.asarray(direction, dtype=float)
    norms = np.linalg.norm(columns, axis=0)
    norms[norms == 0] = 1.0
    return int(np.argmax(np.abs(columns[0]) / norms))
