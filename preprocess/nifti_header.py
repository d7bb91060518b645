"""The NIfTI header fields ctbench checks itself, parsed from the file's first bytes.

ITK's NIfTI reader silently replaces a zero voxel size with 1 mm, takes the absolute value of a
negative one, turns NaN / infinite voxels into 0 and zero-fills a truncated file: each would
hand a model a wrong tensor without a word. Parsing the header ourselves (NIfTI-1: 348 bytes;
NIfTI-2: 540 bytes; either byte order) lets `nifti_decode` refuse such files, and bound the
decoded size, before any voxel is decompressed.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["DATATYPE_NAMES", "HEADER_BYTES", "REAL_DATATYPES", "NiftiHeader", "parse_nifti_header"]


# NIfTI datatype code -> numpy type of one voxel (the real-valued ones; complex, RGB and
# 128-bit floats are refused: no CT volume is stored that way and models expect one real value).
REAL_DATATYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8", 1280: "u8"}
DATATYPE_NAMES = {1: "binary", 32: "complex64", 128: "rgb24", 1536: "float128", 1792: "complex128",
                  2048: "complex256", 2304: "rgba32"}
HEADER_BYTES = 540  # enough for either version


@dataclass(frozen=True)
class NiftiHeader:
    endian: str
    dims: tuple[int, ...]  # dim[1 : dim[0] + 1]
    pixdim: tuple[float, ...]  # pixdim[1 : dim[0] + 1]
    datatype: int
    vox_offset: int
    scl_slope: float = 0.0
    scl_inter: float = 0.0
    version: int = 1
    # The two spatial transforms (see `nifti_transform.py` for which one is used):
    qform_code: int = 0
    sform_code: int = 0
    quatern: tuple[float, float, float] = (0.0, 0.0, 0.0)  # quatern_b, quatern_c, quatern_d
    qoffset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # qoffset_x, y, z (RAS mm)
    qfac: float = 1.0  # pixdim[0]: -1 flips the k axis of the qform
    srow: tuple[tuple[float, ...], ...] = ((0.0,) * 4,) * 3  # srow_x, srow_y, srow_z (RAS mm)

    @property
    def header_size(self) -> int:
        return 348 if self.version == 1 else 540

    @property
    def voxel_dtype(self) -> np.dtype | None:
        """The stored voxel type in the file's byte order, or None for a type ctbench refuses."""
        code = REAL_DATATYPES.get(self.datatype)
        return None if code is None else np.dtype(self.endian + code)

    @property
    def datatype_name(self) -> str:
        code = REAL_DATATYPES.get(self.datatype)
        return np.dtype(code).name if code else DATATYPE_NAMES.get(self.datatype, f"datatype {self.datatype}")


def _triple(values) -> tuple[float, float, float]:
    """Three header numbers as floats (the quaternion's b, c, d or its offsets)."""
    a, b, c = (float(v) for v in values)
    return a, b, c


def parse_nifti_header(head: bytes) -> NiftiHeader | None:
    """The fields ctbench checks, from the first bytes of an uncompressed NIfTI-1/2 file, or None."""
    if len(head) < 348:
        return None
    for endian in ("<", ">"):
        (size,) = struct.unpack(endian + "i", head[:4])
        if size == 348:
            dims = struct.unpack(endian + "8h", head[40:56])
            (datatype,) = struct.unpack(endian + "h", head[70:72])
            pixdim = struct.unpack(endian + "8f", head[76:108])
            vox_offset, slope, inter = struct.unpack(endian + "3f", head[108:120])
            qcode, scode = struct.unpack(endian + "2h", head[252:256])
            quatern = struct.unpack(endian + "6f", head[256:280])
            srow = struct.unpack(endian + "12f", head[280:328])
            version = 1
            break
        if size == 540 and len(head) >= 540:
            (datatype,) = struct.unpack(endian + "h", head[12:14])
            dims = struct.unpack(endian + "8q", head[16:80])
            pixdim = struct.unpack(endian + "8d", head[104:168])
            (vox_offset,) = struct.unpack(endian + "q", head[168:176])
            slope, inter = struct.unpack(endian + "2d", head[176:192])
            qcode, scode = struct.unpack(endian + "2i", head[344:352])
            quatern = struct.unpack(endian + "6d", head[352:400])
            srow = struct.unpack(endian + "12d", head[400:496])
            version = 2
            break
    else:
        return None
    ndim = max(0, min(int(dims[0]), 7))
    return NiftiHeader(
        endian, tuple(int(v) for v in dims[1 : ndim + 1]), tuple(float(v) for v in pixdim[1 : ndim + 1]),
        int(datatype), int(vox_offset) if np.isfinite(vox_offset) else -1, float(slope), float(inter), version,
        int(qcode), int(scode), _triple(quatern[:3]), _triple(quatern[3:]),
        -1.0 if pixdim[0] < 0 else 1.0, tuple(tuple(float(v) for v in srow[r * 4 : r * 4 + 4]) for r in range(3)),
    )
