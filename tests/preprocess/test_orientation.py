from __future__ import annotations

import itertools

import numpy as np
import pytest

from ctbench.preprocess.orientation import (
    Reorient,
    ToAxisOrder,
    direction_for_code,
    normalize_axis_order,
    reorient,
    to_axis_order,
)
from ctbench.preprocess.volume import orientation_code

# All 48 axis-aligned orientation codes.
CODES = [
    "".join(letters)
    for perm in itertools.permutations([("L", "R"), ("P", "A"), ("S", "I")])
    for letters in itertools.product(*perm)
]


def physical_positions(volume):
    k, j, i = np.meshgrid(*(np.arange(n) for n in volume.array.shape), indexing="ij")
    return volume.index_to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3)), volume.array.reshape(-1)


def test_there_are_48_codes_and_each_direction_round_trips():
    assert len(set(CODES)) == 48
    for code in CODES:
        assert orientation_code(direction_for_code(code)) == code


@pytest.mark.parametrize("target", ["RAS", "LPS", "PIL", "ASR", "IRP", "LAI"])
@pytest.mark.parametrize("start", ["LPS", "RAS", "SPL"])
def test_reorient_keeps_every_voxel_at_its_physical_position(start, target, make_volume):
    base = reorient(make_volume(), start)
    result = reorient(base, target)
    assert result.orientation == target
    before_xyz, before_values = physical_positions(base)
    after_xyz, after_values = physical_positions(result)
    before = {tuple(np.round(p, 6)): v for p, v in zip(before_xyz, before_values)}
    after = {tuple(np.round(p, 6)): v for p, v in zip(after_xyz, after_values)}
    assert before == after


@pytest.mark.parametrize("code", CODES)
def test_reorient_there_and_back_is_identity(code, make_volume):
    volume = make_volume(direction=direction_for_code("RAI"))
    back = reorient(reorient(volume, code), "RAI")
    assert np.array_equal(back.array, volume.array)
    assert np.allclose(back.origin, volume.origin) and np.allclose(back.direction, volume.direction)
    assert back.spacing == volume.spacing


@pytest.mark.parametrize(
    "target, shape_kji, spacing_ijk",
    [
        ("LPS", (6, 7, 8), (0.8, 0.9, 2.5)),
        ("RAS", (6, 7, 8), (0.8, 0.9, 2.5)),
        ("SAL", (8, 7, 6), (2.5, 0.9, 0.8)),  # i <- S (k), j <- A (j), k <- L (i)
        ("PLI", (6, 8, 7), (0.9, 0.8, 2.5)),
    ],
)
def test_reorient_permutes_shape_and_spacing(target, shape_kji, spacing_ijk, make_volume):
    result = reorient(make_volume(), target)
    assert result.array.shape == shape_kji
    assert result.spacing == spacing_ijk


def test_reorient_same_code_returns_same_volume(make_volume):
    volume = make_volume()
    assert reorient(volume, "lps") is volume


def test_ras_flip_moves_first_voxel_to_opposite_corner(make_volume):
    volume = make_volume()
    ras = reorient(volume, "RAS")
    assert ras.array[0, 0, 0] == volume.array[0, -1, -1]
    assert np.allclose(ras.origin, volume.index_to_lps([7, 6, 0]))


@pytest.mark.parametrize(
    "order, expected_shape",
    [("DHW", (6, 7, 8)), ("zyx", (6, 7, 8)), ("HWD", (7, 8, 6)), ("WHD", (8, 7, 6)), ("xyz", (8, 7, 6)), ("DWH", (6, 8, 7))],
)
def test_axis_order_transposes(order, expected_shape, make_volume):
    volume = make_volume()
    out = ToAxisOrder(order)(volume)
    assert out.shape == expected_shape
    assert isinstance(out, np.ndarray) and np.shares_memory(out, volume.array)  # a view, no copy


def test_axis_order_index_mapping(make_volume):
    volume = make_volume()
    out = to_axis_order(volume.array, "HWD")
    assert out[2, 3, 1] == volume.array[1, 2, 3]


@pytest.mark.parametrize("bad", ["RAR", "XYZ", "RA", "RASL", "", 3, "LRS"])
def test_bad_orientation_codes_raise_value_error_with_the_value(bad):
    with pytest.raises(ValueError, match="orientation code"):
        Reorient(bad)


@pytest.mark.parametrize("bad", ["DHD", "ABC", "DH", "xyzw", None])
def test_bad_axis_orders_raise_value_error_with_the_value(bad):
    with pytest.raises(ValueError, match=repr(bad).replace("[", r"\[")):
        normalize_axis_order(bad)


def test_to_axis_order_rejects_non_3d():
    with pytest.raises(ValueError, match=r"shape \(4, 4\)"):
        ToAxisOrder("DHW")(np.zeros((4, 4)))
