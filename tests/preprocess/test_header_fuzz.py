"""Property-based fuzzing of NIfTI header validation, with a fixed, small budget.

Whatever a header claims (dimensions, voxel type, sizes, offsets, scaling, either version or
byte order, gzipped or not), decoding gives a valid `Volume` that matches the header, or an
`InvalidVolume` subclass: never another exception, and never more decompressed bytes than the
decoded-size bound allows.
"""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="needs hypothesis: pip install -e .[test]")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctbench.errors import InvalidVolume
from ctbench.preprocess.nifti_decode import decoded_size_bound
from ctbench.preprocess.nifti_header import REAL_DATATYPES
from ctbench.preprocess.volume import Volume, load_volume_bytes

BUDGET = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
MAX_BYTES = 1 << 20
DATATYPES = sorted(REAL_DATATYPES) + [0, 1, 32, 128, 1536, 1792, 2304, -7, 9999]
_BITPIX = {2: 8, 4: 16, 8: 32, 16: 32, 64: 64, 256: 8, 512: 16, 768: 32, 1024: 64, 1280: 64}

def mostly(plausible, hostile):
    """Usually a plausible value (so checks deep in the decoder are reached), sometimes a hostile one."""
    return st.integers(min_value=0, max_value=7).flatmap(lambda n: hostile if n == 0 else plausible)


floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
sizes = mostly(st.floats(min_value=0.125, max_value=5.0, width=32), st.one_of(floats, st.sampled_from([0.0, -1.0])))
dims = mostly(st.integers(min_value=1, max_value=5), st.integers(min_value=-(1 << 15), max_value=(1 << 15) - 1))


@st.composite
def nifti1(draw) -> bytes:
    endian = draw(st.sampled_from("<>"))
    ndim = draw(mostly(st.sampled_from([3, 4]), st.integers(min_value=-1, max_value=8)))
    shape = [draw(dims) for _ in range(3)] + [draw(mostly(st.just(1), dims))] + [1, 1, 1]
    datatype = draw(mostly(st.sampled_from(sorted(REAL_DATATYPES)), st.sampled_from(DATATYPES)))
    pixdim = [draw(floats)] + [draw(sizes) for _ in range(7)]
    vox_offset = draw(mostly(st.just(352.0), st.one_of(st.sampled_from([348.0, 0.0, 1e30, float("nan")]), floats)))
    slope, inter = draw(mostly(st.sampled_from([0.0, 1.0, 2.0]), floats)), draw(mostly(st.sampled_from([0.0, -1024.0]), floats))
    qform, sform = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    header = bytearray(352)
    struct.pack_into(endian + "i", header, 0, 348)
    struct.pack_into(endian + "8h", header, 40, ndim, *shape)
    struct.pack_into(endian + "hh", header, 70, datatype, _BITPIX.get(datatype, 0))
    struct.pack_into(endian + "8f", header, 76, *pixdim)
    struct.pack_into(endian + "3f", header, 108, vox_offset, slope, inter)
    struct.pack_into(endian + "hh", header, 252, qform, sform)
    struct.pack_into(endian + "7f", header, 256, *[draw(mostly(st.just(0.0), floats)) for _ in range(7)])  # quatern, offsets
    struct.pack_into(endian + "12f", header, 280, *[draw(mostly(st.sampled_from([0.0, 1.0]), floats)) for _ in range(12)])  # srow
    header[344:348] = b"n+1\0"
    count = int(np.prod([max(0, s) for s in shape[: max(0, min(ndim, 7))]] or [0]))
    fitting = count * (_BITPIX.get(datatype, 8) // 8)
    body = draw(mostly(st.just(fitting), st.integers(min_value=0, max_value=4096)))
    payload = draw(st.binary(min_size=min(body, 4096), max_size=min(body, 4096)))
    return bytes(header) + payload


@BUDGET
@given(data=nifti1(), gz=st.booleans())
def test_any_nifti1_header_gives_a_valid_volume_or_an_invalid_volume(data, gz):
    _check(gzip.compress(data, compresslevel=1) if gz else data, "fuzz.nii.gz" if gz else "fuzz.nii")


@BUDGET
@given(data=st.binary(max_size=2048), gz=st.booleans())
def test_random_bytes_are_an_invalid_volume(data, gz):
    _check(gzip.compress(data, compresslevel=1) if gz else data, "noise.nii.gz" if gz else "noise.nii")


def _check(data: bytes, name: str) -> None:
    try:
        volume = load_volume_bytes(data, name, max_bytes=MAX_BYTES)
    except InvalidVolume as exc:
        assert str(exc).startswith(f"{name} (inline)"), str(exc)
        return
    assert isinstance(volume, Volume)
    assert volume.array.ndim == 3 and min(volume.array.shape) >= 1
    assert decoded_size_bound(volume.array.shape) <= MAX_BYTES
    assert all(np.isfinite(s) and s > 0 for s in volume.spacing) and all(np.isfinite(volume.origin))
    assert volume.array.dtype.kind in "iuf"
