"""Every preset variant's declared claims hold on twelve storage orientations of one probe:

* ``reorients`` (an ``orientation`` is declared): the input is the same whatever the storage
  (unless the slice index is declared to come from the stored file); used as stored: it changes
  with every storage that is not the preset's reference (LPS).
* ``differs_from_authors``: "" means the same tensor the authors' variant gives on every storage;
  anything else means it differs on at least one.

"The same" allows interpolation rounding (a reoriented volume is resampled from its source's
physical image): 1 grey level for uint8 slices, 1e-3 of the value range otherwise. Presets whose
input exceeds 4M voxels (RadFM, CT-CHAT) are checked on four of the twelve storages (LPS, a flip,
two permutations), to keep the test within a minute or two on two cores.
"""
from __future__ import annotations

import numpy as np
import pytest

from ctbench.errors import InvalidVolume
from ctbench.preprocess.input_spec import PRESETS, get_spec, preset_names
from ctbench.preprocess.orientation_probe import make_probe_volume

STORAGES = ["LPS", "RAS", "LAS", "RPS", "LPI", "RAI", "PIL", "SAR", "ILP", "ASL", "IRA", "PSR"]
AXIAL_K = {code for code in STORAGES if code[2] in "SI"}  # k runs inferior-superior
HEAVY_STORAGES = ["LPS", "RAS", "PIL", "IRA"]
SPECS = [(name, variant) for name in preset_names() for variant in sorted(PRESETS.get(name).variants)]
_OUTPUTS: dict[tuple[str, str, str], object] = {}
_SIGNATURE_ELEMENTS = 1 << 18


def _storages(name: str) -> list[str]:
    heavy = any(np.prod(get_spec(name, v).target_shape or (1,)) > 4_000_000 for v in PRESETS.get(name).variants)
    return HEAVY_STORAGES if heavy else STORAGES


@pytest.fixture(scope="module")
def probes():
    return {code: make_probe_volume(code) for code in STORAGES}


def _output(probes, name: str, variant: str, storage: str):
    """The preset's output on the probe stored `storage`, strided to at most 256K values (every
    marker spans several voxels, so a stride keeps it), or the name of the error it raises."""
    key = (name, variant, storage)
    if key not in _OUTPUTS:
        try:
            out = get_spec(name, variant).apply(probes[storage])
        except InvalidVolume as exc:
            _OUTPUTS[key] = f"error: {type(exc).__name__}"
        else:
            strided = [a for a in range(out.ndim) if out.shape[a] > 8]  # not channels, not a short slice stack
            stride = max(1, int(np.ceil((out.size / _SIGNATURE_ELEMENTS) ** (1 / max(1, len(strided))))))
            index = tuple(slice(None, None, stride) if a in strided else slice(None) for a in range(out.ndim))
            _OUTPUTS[key] = (out.shape, out.dtype, out[index].astype(np.float32))
    return _OUTPUTS[key]


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    (shape_a, dtype_a, values_a), (shape_b, dtype_b, values_b) = a, b
    if shape_a != shape_b or dtype_a != dtype_b:
        return False
    span = max(float(values_a.max() - values_a.min()), 1e-6)
    tolerance = 1.0 if dtype_a == np.uint8 else 1e-3 * span
    return float(np.max(np.abs(values_a - values_b))) <= tolerance


@pytest.mark.parametrize("name, variant", SPECS)
def test_the_orientation_claim_holds_on_twelve_storages(probes, name, variant):
    spec = get_spec(name, variant)
    storages = _storages(name)
    reference = _output(probes, name, variant, "LPS")
    same = {code for code in storages if _same(_output(probes, name, variant, code), reference)}
    if spec.reorients and not spec.slice_index_from_storage:
        assert same == set(storages), f"{name}/{variant} claims to reorient, yet differs on {sorted(set(storages) - same)}"
    elif spec.reorients:
        assert same == AXIAL_K & set(storages), (
            f"{name}/{variant} reorients and takes its slice index from the stored k axis: "
            f"expected the same input for {sorted(AXIAL_K)}, got {sorted(same)}")
    else:
        assert same == {"LPS"}, f"{name}/{variant} claims to use the volume as stored, yet ignores storage for {sorted(same - {'LPS'})}"


@pytest.mark.parametrize("name, variant", [s for s in SPECS if s[1] != "authors"])
def test_differs_from_authors_says_whether_the_input_differs(probes, name, variant):
    spec = get_spec(name, variant)
    differing = [code for code in _storages(name)
                 if not _same(_output(probes, name, variant, code), _output(probes, name, "authors", code))]
    if spec.differs_from_authors:
        assert differing, f"{name}/{variant} claims to differ from authors ({spec.differs_from_authors}) but is identical on all 12"
    else:
        assert not differing, f"{name}/{variant} claims the authors' input but differs on {differing}"


@pytest.mark.parametrize("name, variant", [s for s in SPECS if s[1] != "authors"])
def test_a_variant_that_does_not_reorient_where_authors_do_says_so(name, variant):
    spec, authors = get_spec(name, variant), get_spec(name, "authors")
    if authors.reorients and not spec.reorients:
        assert "as stored" in spec.differs_from_authors, f"{name}/{variant}: {spec.differs_from_authors!r}"


def test_every_published_variant_is_described():
    for name, variant in SPECS:
        if variant != "authors":
            spec = get_spec(name, variant)
            assert spec.notes, f"{name}/{variant} has no notes"
