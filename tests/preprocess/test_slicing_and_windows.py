from __future__ import annotations

import numpy as np
import pytest

from ctbench.preprocess.slicing import (
    PickSlice,
    ResizeSlices,
    SampleSlices,
    pick_slice,
    resize_slices,
    sample_slice_indices,
    sample_slices,
)
from ctbench.preprocess.windows import (
    CT_RGB_WINDOWS,
    GrayToRGB,
    MultiWindowRGB,
    WindowToUint8,
    multi_window_rgb,
    window_to_uint8,
)


@pytest.mark.parametrize(
    "length, count, expected",
    [
        (10, 3, [0, 4, 9]),  # linspace 0, 4.5, 9 -> round half to even
        (5, 85, [0, 1, 2, 3, 4]),  # fewer slices than asked: all of them
        (85, 85, list(range(85))),
        (300, 1, [0]),
        (7, 2, [0, 6]),
    ],
)
def test_sample_slice_indices(length, count, expected):
    assert sample_slice_indices(length, count).tolist() == expected


def test_floor_rounding_matches_numpy_linspace_dtype_int():
    assert sample_slice_indices(10, 4, "floor").tolist() == np.linspace(0, 9, 4, dtype=int).tolist()


@pytest.mark.parametrize("axis, slice_shape", [(0, (7, 8)), (1, (6, 8)), (2, (6, 7))])
def test_sample_slices_along_an_axis(axis, slice_shape):
    array = np.arange(6 * 7 * 8).reshape(6, 7, 8)
    out = sample_slices(array, 3, axis=axis)
    assert out.shape == (3,) + slice_shape
    assert np.array_equal(out[-1], np.take(array, array.shape[axis] - 1, axis=axis))


@pytest.mark.parametrize("length, middle", [(5, 2), (6, 3), (1, 0)])
def test_pick_middle_slice(length, middle):
    array = np.arange(length)[:, None, None] * np.ones((1, 2, 3))
    out = pick_slice(array)
    assert out.shape == (1, 2, 3) and np.all(out == middle)


def test_pick_slice_index_out_of_range():
    with pytest.raises(IndexError, match="index 9 out of range for axis 0 of length 3"):
        pick_slice(np.zeros((3, 2, 2)), index=9)


@pytest.mark.parametrize("backend", ["sitk", "auto"])
@pytest.mark.parametrize("shape, size", [((2, 4, 6, 3), (8, 12)), ((3, 5, 5), (9, 7)), ((1, 10, 10, 3), (4, 4))])
def test_resize_slices_shape_dtype_and_constant(shape, size, backend):
    stack = np.full(shape, 77, dtype=np.uint8)
    out = resize_slices(stack, size, backend=backend)
    assert out.shape == (shape[0],) + tuple(size) + shape[3:] and out.dtype == np.uint8
    assert np.all(out == 77)


def test_resize_slices_bilinear_is_half_pixel_centred():
    stack = np.array([[[0.0, 100.0]]], dtype=np.float32)  # 1 slice, 1 row, 2 cols
    out = resize_slices(stack, (1, 4), backend="sitk")
    assert np.allclose(out[0, 0], [0.0, 25.0, 75.0, 100.0])


@pytest.mark.parametrize(
    "lower, upper, rounding, samples",
    [
        (-150, 250, "floor", {-1000: 0, -150: 0, 50: 127, 250: 255, 3000: 255}),
        (-150, 250, "round", {50: 128, 0: 96}),
        (-1024, 1024, "round", {-1024: 0, 0: 128, 1024: 255}),
        (0, 80, "round", {-5: 0, 40: 128, 80: 255}),
    ],
)
def test_window_to_uint8(lower, upper, rounding, samples):
    out = window_to_uint8(np.array(list(samples), dtype=np.int16), lower, upper, rounding)
    assert out.dtype == np.uint8 and out.tolist() == list(samples.values())


@pytest.mark.parametrize("rounding", ["round", "floor"])
@pytest.mark.parametrize("window", [(-150, 250), (-1225, 1025), (0, 80), (-135.5, 215.25)])
def test_lookup_table_path_for_int16_equals_float_arithmetic(window, rounding):
    hu = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16).reshape(16, 64, 64)  # > 65536 voxels
    assert np.array_equal(window_to_uint8(hu, *window, rounding), window_to_uint8(hu.astype(np.float32), *window, rounding))


def test_lookup_table_path_for_rgb_equals_float_arithmetic():
    hu = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16).reshape(16, 64, 64)
    assert np.array_equal(multi_window_rgb(hu), multi_window_rgb(hu.astype(np.float32)))
    assert np.array_equal(multi_window_rgb(hu.view(np.uint16)), multi_window_rgb(hu.view(np.uint16).astype(np.float32)))


def test_multi_window_rgb_channels_follow_the_windows():
    hu = np.array([[[-1024, 40, 2000]]], dtype=np.int16)
    rgb = multi_window_rgb(hu, CT_RGB_WINDOWS)
    assert rgb.shape == (1, 1, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 0, 1].tolist() == [132, 128, 128]
    assert rgb[0, 0, 2].tolist() == [255, 255, 255]


def test_gray_to_rgb_repeats():
    out = GrayToRGB()(np.array([[1, 2]], dtype=np.uint8))
    assert out.shape == (1, 2, 3) and out[0, 1].tolist() == [2, 2, 2]


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: SampleSlices(0), "got 0"),
        (lambda: SampleSlices(2.5), "got 2.5"),
        (lambda: SampleSlices(4, axis=3), "got 3"),
        (lambda: SampleSlices(4, rounding="up"), "got 'up'"),
        (lambda: PickSlice(axis=-1), "got -1"),
        (lambda: PickSlice(index="first"), "got 'first'"),
        (lambda: ResizeSlices((896,)), r"got \(896,\)"),
        (lambda: ResizeSlices((0, 4)), r"got \(0, 4\)"),
        (lambda: ResizeSlices((4, 4), order=3), "got 3"),
        (lambda: ResizeSlices((4, 4), backend="gpu"), "got 'gpu'"),
        (lambda: WindowToUint8(80, 0), r"\(80.0, 0.0\)"),
        (lambda: WindowToUint8(0, 80, rounding="ceil"), "got 'ceil'"),
        (lambda: MultiWindowRGB([(-1024, 1024), (0, 80)]), "got 2"),
        (lambda: MultiWindowRGB([(-1024, 1024), (0, 80), (5,)]), r"got \(5,\)"),
    ],
)
def test_bad_slice_and_window_arguments_fail_in_init(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
