from __future__ import annotations

import numpy as np
import pytest

from ctbench.preprocess.intensity import (
    CastDtype,
    ClipHU,
    NormalizeMinMax,
    ScaleIntensityRange,
    cast_checked,
    clip_hu,
    normalize_min_max,
    scale_intensity_range,
)
from ctbench.preprocess.volume import Volume
from ctbench.preprocess.volume_errors import CastOverflow, InvalidVolume, NonFiniteVoxels

HU = np.array([-3000, -1024, -1000, -135, 0, 40, 80, 215, 1000, 1024, 3000], dtype=np.int16)


@pytest.mark.parametrize(
    "lower, upper, expected_dtype",
    [(-1000, 1000, np.int16), (-1024, 1024, np.int16), (-150.5, 250, np.float32), (-40000, 40000, np.int16)],
)
def test_clip_hu(lower, upper, expected_dtype):
    out = clip_hu(HU, lower, upper)
    assert out.dtype == expected_dtype
    assert out.min() >= max(lower, -32768) and out.max() <= min(upper, 32767)
    inside = (lower <= HU) & (upper >= HU)
    assert np.array_equal(out[inside], HU[inside])


@pytest.mark.parametrize(
    "window, target, samples",
    [
        ((-1000, 1000), (0, 1), {-1000: 0.0, 0: 0.5, 1000: 1.0, 3000: 1.0, -3000: 0.0}),
        ((-1000, 1000), (-1, 1), {-1000: -1.0, 0: 0.0, 1000: 1.0}),
        ((-1350, 150), (0, 1), {-1350: 0.0, 150: 1.0, -600: 0.5}),
        ((-150, 250), (0, 255), {50: 127.5, -150: 0.0, 250: 255.0}),
    ],
)
def test_scale_intensity_range(window, target, samples):
    values = np.array(list(samples), dtype=np.int16)
    out = scale_intensity_range(values, *window, *target)
    assert out.dtype == np.float32
    assert np.allclose(out, list(samples.values()), atol=1e-5)


def test_scale_without_clip_extrapolates():
    assert np.isclose(scale_intensity_range(np.array([2000.0]), -1000, 1000, 0, 1, clip=False)[0], 1.5)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.array([-1000, 0, 1000]), [0.0, 0.5, 1.0]),
        (np.array([5.0, 7.0]), [0.0, 1.0]),
        (np.array([3, 3, 3]), [0.0, 0.0, 0.0]),  # constant: b_min, no division by zero
    ],
)
def test_normalize_min_max(array, expected):
    assert np.allclose(normalize_min_max(array), expected)


def test_intensity_transforms_keep_volume_geometry():
    volume = Volume(np.arange(-4, 4, dtype=np.int16).reshape(2, 2, 2), (0.5, 0.6, 0.7), (1, 2, 3))
    for transform in (ClipHU(-2, 2), ScaleIntensityRange(-4, 4), NormalizeMinMax(), CastDtype("float32")):
        out = transform(volume)
        assert isinstance(out, Volume) and out.spacing == volume.spacing and out.origin == volume.origin


@pytest.mark.parametrize("window", [(-1000, 1000), (-1350, 150), (-40000, 40000), (-150.5, 250)])
def test_clip_on_a_volume_with_its_image_equals_numpy_clip(window):
    from ctbench.preprocess.sitk_images import as_sitk, cached_image

    rng = np.random.default_rng(3)
    volume = Volume(rng.integers(-3000, 3000, (4, 5, 6)).astype(np.int16), (0.5, 0.6, 0.7), (1, 2, 3))
    as_sitk(volume)  # as after loading: the reader's image is kept
    out = ClipHU(*window)(volume)
    assert np.array_equal(out.array, clip_hu(volume.array, *window))
    assert out.array.dtype == clip_hu(volume.array, *window).dtype
    assert out.spacing == volume.spacing and out.origin == volume.origin
    if float(window[0]).is_integer():
        assert cached_image(out) is not None  # handed on to the resampler without a copy


def test_clip_is_shared_between_presets_with_the_same_window():
    volume = Volume(np.arange(8, dtype=np.int16).reshape(2, 2, 2))
    assert ClipHU(1, 5)(volume) is ClipHU(1, 5)(volume)
    assert ClipHU(1, 5)(volume) is not ClipHU(1, 6)(volume)


@pytest.mark.parametrize(
    "array, dtype, expected",
    [
        (np.array([1.4, 1.6, -2.5]), "int16", [1, 2, -2]),
        (np.array([-32768.0, 32767.0]), np.int16, [-32768, 32767]),
        (np.array([0, 255], dtype=np.int32), "uint8", [0, 255]),
        (np.array([1e30]), "float32", [1e30]),
    ],
)
def test_cast_checked_good(array, dtype, expected):
    out = cast_checked(array, dtype)
    assert out.dtype == np.dtype(dtype) and np.allclose(out, expected)


@pytest.mark.parametrize(
    "array, dtype, error, message",
    [
        (np.array([0.0, 40000.0]), "int16", CastOverflow, r"\[0.0, 40000.0\], outside int16's range \[-32768, 32767\]"),
        (np.array([-1, 5], dtype=np.int32), "uint8", CastOverflow, r"\[-1, 5\]"),
        (np.array([32767.6]), "int16", CastOverflow, "32768"),
        (np.array([1e300]), "float32", CastOverflow, "float32"),
        (np.array([0.0, np.nan]), "int16", NonFiniteVoxels, "1 of 2 voxels"),
        (np.array([np.inf]), "float32", NonFiniteVoxels, "1 of 1"),
    ],
)
def test_cast_checked_bad(array, dtype, error, message):
    with pytest.raises(error, match=message) as info:
        cast_checked(array, dtype)
    assert isinstance(info.value, InvalidVolume)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: ClipHU(100, -100), r"lower=100.0, upper=-100.0"),
        (lambda: ClipHU(0, 0), r"lower=0.0, upper=0.0"),
        (lambda: ClipHU(float("nan"), 1), "finite"),
        (lambda: ScaleIntensityRange(1000, -1000), r"lower=1000.0, upper=-1000.0"),
        (lambda: ScaleIntensityRange(-1000, 1000, 1, 1), r"b_min=1, b_max=1"),
        (lambda: NormalizeMinMax(1, 0), r"lower=1.0, upper=0.0"),
        (lambda: CastDtype("nonsense-type"), "nonsense-type"),
    ],
)
def test_bad_intensity_arguments_fail_in_init(factory, message):
    with pytest.raises((ValueError, TypeError), match=message):
        factory()
