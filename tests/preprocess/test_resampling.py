from __future__ import annotations

import numpy as np
import pytest

from ctbench.preprocess.orientation import reorient
from ctbench.preprocess.resampling import (
    DEFAULT_FILL_HU,
    Resample,
    Resize,
    output_shape_for_spacing,
    resample_to_spacing,
    resize_to_shape,
)
from ctbench.preprocess.volume import Volume


def ramp_volume(shape_kji=(10, 12, 14), spacing=(1.0, 1.5, 2.0)):
    """Values linear in physical position: linear interpolation must reproduce them exactly."""
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape_kji), indexing="ij")
    array = (3.0 * i * spacing[0] - 2.0 * j * spacing[1] + 1.0 * k * spacing[2]).astype(np.float32)
    return Volume(array, spacing, (4.0, -7.0, 12.0))


def ramp_value(volume_in, volume_out):
    """Expected ramp values at every output voxel, from its physical position."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in volume_out.array.shape), indexing="ij")
    lps = volume_out.index_to_lps(np.stack([i, j, k], axis=-1))
    rel = lps - np.asarray(volume_in.origin)
    return 3.0 * rel[..., 0] - 2.0 * rel[..., 1] + 1.0 * rel[..., 2]


@pytest.mark.parametrize(
    "shape",
    [(5, 6, 7), (20, 24, 28), (10, 12, 14), (3, 30, 9)],
)
def test_resize_linear_reproduces_a_linear_ramp_inside_the_extent(shape):
    source = ramp_volume()
    out = resize_to_shape(source, shape)
    assert out.array.shape == shape and out.array.dtype == np.float32
    expected = ramp_value(source, out)
    # interior voxels sample inside the input grid: exact up to float32
    inner = tuple(slice(1, -1) if n > 2 else slice(None) for n in shape)
    assert np.allclose(out.array[inner], expected[inner], atol=1e-3)


@pytest.mark.parametrize("shape", [(5, 6, 7), (20, 24, 28)])
def test_resize_keeps_physical_extent_and_centre(shape):
    source = ramp_volume()
    out = resize_to_shape(source, shape)
    for volume in (source, out):
        assert np.allclose(np.asarray(volume.spacing) * np.asarray(volume.shape_ijk), [14.0, 18.0, 20.0])

    def centre(v):
        return v.index_to_lps((np.asarray(v.shape_ijk) - 1) / 2.0)

    assert np.allclose(centre(source), centre(out))


@pytest.mark.parametrize(
    "spacing, expected_shape",
    [((2.0, 3.0, 4.0), (5, 6, 7)), ((0.5, 0.75, 1.0), (20, 24, 28)), ((1.0, 1.5, 2.0), (10, 12, 14)), ((3.0, 1.0, 0.7), (29, 18, 5))],
)
def test_resample_to_spacing_shape_and_spacing(spacing, expected_shape):
    source = ramp_volume()
    assert output_shape_for_spacing(source, spacing) == expected_shape
    out = resample_to_spacing(source, spacing)
    assert out.array.shape == expected_shape
    # spacing lands within half a voxel of the target over the extent
    extent = np.asarray(source.spacing) * np.asarray(source.shape_ijk)
    assert np.all(np.abs(np.asarray(out.spacing) - spacing) * np.asarray(out.shape_ijk) <= np.asarray(spacing) / 2 + 1e-9)
    assert np.allclose(np.asarray(out.spacing) * np.asarray(out.shape_ijk), extent)


def test_constant_volume_stays_constant_so_no_fill_value_leaks_in():
    volume = Volume(np.full((8, 9, 10), 40, np.int16), (0.7, 0.7, 1.25))
    for out in (resample_to_spacing(volume, (0.75, 0.75, 1.5)), resize_to_shape(volume, (17, 3, 31))):
        assert np.all(out.array == 40), np.unique(out.array)


def test_fill_value_is_hu_not_a_pixel_type_enum():
    assert DEFAULT_FILL_HU == -1024.0
    assert Resample((1, 1, 1)).fill_value == -1024.0
    assert Resample((1, 1, 1), fill_value=-1000).fill_value == -1000.0


def test_nearest_keeps_dtype_and_values():
    volume = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    out = resize_to_shape(volume, (4, 6, 8), order=0)
    assert out.array.dtype == np.int16
    assert set(np.unique(out.array)) <= set(range(24))


def test_anti_aliasing_damps_a_checkerboard_when_shrinking():
    checker = (np.indices((16, 16, 16)).sum(axis=0) % 2 * 1000).astype(np.float32)
    volume = Volume(checker)
    plain = resize_to_shape(volume, (5, 5, 5)).array
    smooth = resize_to_shape(volume, (5, 5, 5), anti_alias=True).array
    assert smooth.std() < plain.std()


def test_resample_of_a_reoriented_volume_matches_resample_of_a_copy():
    source = ramp_volume()
    ras = reorient(source, "RAS")  # a view: resampling reads the source's image in physical space
    copy = Volume(np.ascontiguousarray(ras.array), ras.spacing, ras.origin, ras.direction)
    a = resample_to_spacing(ras, (2.0, 2.0, 2.0))
    b = resample_to_spacing(copy, (2.0, 2.0, 2.0))
    assert np.allclose(a.array, b.array) and np.allclose(a.origin, b.origin) and a.orientation == "RAS"


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: Resize((0, 4, 4)), r"positive integers, got \(0, 4, 4\)"),
        (lambda: Resize((4, 4)), r"3 numbers, got 2"),
        (lambda: Resize((4, 4, 4.5)), r"positive integers, got \(4, 4, 4.5\)"),
        (lambda: Resize((4, 4, 4), order=2), r"one of \[0, 1, 3\], got 2"),
        (lambda: Resample((1.0, 0.0, 1.0)), r"positive finite numbers, got \(1.0, 0.0, 1.0\)"),
        (lambda: Resample((1.0, -1.0, 1.0)), r"got \(1.0, -1.0, 1.0\)"),
        (lambda: Resample((1.0, float("nan"), 1.0)), r"positive finite"),
        (lambda: Resample(1.0), r"3 numbers, got 1.0"),
    ],
)
def test_bad_resampling_arguments_fail_in_init(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_resampled_voxels_are_a_read_only_view_that_keeps_its_image_alive():
    import gc

    out = resize_to_shape(ramp_volume(), (5, 6, 7)).array
    gc.collect()
    assert not out.flags.writeable
    expected = out.copy()
    _ = [np.ones(10_000) for _ in range(100)]  # churn the allocator: a dangling view would change
    assert np.array_equal(out, expected)
