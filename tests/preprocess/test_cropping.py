from __future__ import annotations

import numpy as np
import pytest

from ctbench.preprocess.cropping import CenterCropOrPad, center_crop_or_pad, crop_or_pad_offsets
from ctbench.preprocess.volume import Volume


@pytest.mark.parametrize(
    "shape, target, offsets",
    [((10,), (4,), [3]), ((10,), (5,), [2]), ((4,), (10,), [-3]), ((5,), (10,), [-2]), ((7,), (7,), [0])],
)
def test_offsets_follow_ct_clip_rule(shape, target, offsets):
    assert crop_or_pad_offsets(shape, target) == offsets


@pytest.mark.parametrize(
    "shape, target",
    [((6, 7, 8), (4, 7, 10)), ((6, 7, 8), (6, 7, 8)), ((3, 3, 3), (8, 1, 5)), ((9, 2, 4), (2, 9, 4))],
)
def test_crop_or_pad_shape_and_content(shape, target):
    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 1
    out = center_crop_or_pad(array, target, pad_value=-1)
    assert out.shape == target
    kept = min(array.size, out.size)
    assert (out > 0).sum() == np.prod([min(a, t) for a, t in zip(shape, target)]) <= kept
    assert set(np.unique(out[out <= 0])) <= {-1.0}


def test_crop_then_pad_back_restores_the_centre():
    array = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    cropped = center_crop_or_pad(array, (3, 4, 5))
    restored = center_crop_or_pad(cropped, (5, 6, 7), pad_value=-1)
    assert np.array_equal(restored[1:4, 1:5, 1:6], array[1:4, 1:5, 1:6])


def test_volume_crop_keeps_voxels_at_their_physical_position():
    volume = Volume(np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8), (0.5, 0.7, 2.0), (3.0, 4.0, 5.0))
    out = CenterCropOrPad((4, 9, 8), pad_value=-1024)(volume)
    # output voxel (i=0, j=1, k=0) is input voxel (i=0, j=0, k=1): check both value and position
    assert out.array[0, 1, 0] == volume.array[1, 0, 0]
    assert np.allclose(out.index_to_lps([0, 1, 0]), volume.index_to_lps([0, 0, 1]))
    assert out.array[0, 0, 0] == -1024


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: CenterCropOrPad((0, 4, 4)), r"\(0, 4, 4\)"),
        (lambda: CenterCropOrPad((4.5, 4, 4)), r"\(4.5, 4, 4\)"),
        (lambda: CenterCropOrPad(()), r"\(\)"),
        (lambda: CenterCropOrPad((4, 4, 4), pad_value=float("nan")), "nan"),
    ],
)
def test_bad_crop_arguments_fail_in_init(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_volume_needs_three_axes():
    with pytest.raises(ValueError, match=r"got \(4, 4\)"):
        CenterCropOrPad((4, 4))(Volume(np.zeros((2, 2, 2))))
