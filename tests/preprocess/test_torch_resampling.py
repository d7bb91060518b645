"""The optional torch path, on CPU: same geometry as SimpleITK, same values inside the volume."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ctbench.preprocess.resampling import (
    Resample,
    Resize,
    resample_to_spacing,
    resampling_backend,
    resize_to_shape,
)
from ctbench.preprocess.slicing import resize_slices
from ctbench.preprocess.torch_resampling import (
    resample_to_spacing_torch,
    resize_slices_torch,
    resize_to_shape_torch,
    torch_device,
)
from ctbench.preprocess.volume import Volume


def smooth_volume():
    k, j, i = np.meshgrid(np.arange(12), np.arange(14), np.arange(16), indexing="ij")
    array = (100 * np.sin(i / 3.0) + 50 * np.cos(j / 4.0) + 10 * k).astype(np.float32)
    return Volume(array, (0.7, 0.8, 2.0), (5.0, -3.0, 8.0))


def test_auto_device_is_cpu_without_a_gpu():
    assert torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch_device("cpu") == "cpu"


@pytest.mark.parametrize("shape", [(6, 7, 8), (24, 28, 32), (12, 20, 9)])
def test_torch_resize_matches_sitk_inside_and_in_geometry(shape):
    volume = smooth_volume()
    a = resize_to_shape(volume, shape)
    b = resize_to_shape_torch(volume, shape, device="cpu")
    assert a.array.shape == b.array.shape == shape
    assert np.allclose(a.spacing, b.spacing) and np.allclose(a.origin, b.origin)
    inner = (slice(1, -1),) * 3  # the outermost half voxel differs: torch clamps, ITK extrapolates the edge
    assert np.allclose(a.array[inner], b.array[inner], atol=1e-2)


def test_torch_resample_to_spacing_matches_sitk():
    volume = smooth_volume()
    a = resample_to_spacing(volume, (1.5, 1.5, 3.0))
    b = resample_to_spacing_torch(volume, (1.5, 1.5, 3.0), device="cpu")
    assert a.array.shape == b.array.shape
    assert np.allclose(a.array[1:-1, 1:-1, 1:-1], b.array[1:-1, 1:-1, 1:-1], atol=1e-2)


def test_torch_nearest_keeps_integer_dtype():
    volume = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    out = resize_to_shape_torch(volume, (4, 6, 8), order=0, device="cpu")
    assert out.array.dtype == np.int16 and set(np.unique(out.array)) <= set(range(24))


@pytest.mark.parametrize("shape, size", [((3, 20, 24, 3), (36, 40)), ((2, 16, 16), (28, 28))])
def test_torch_slice_resize_within_one_grey_level_of_sitk(shape, size):
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, size=shape, dtype=np.uint8)
    a = resize_slices(stack, size, backend="sitk")
    b = resize_slices_torch(stack, size)
    assert a.shape == b.shape and b.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda v: resize_to_shape_torch(v, (4, 4, 4), order=3), "order 0 or 1, got 3"),
        (lambda v: resize_to_shape_torch(v, (4, 0, 4)), r"\(4, 0, 4\)"),
        (lambda v: resample_to_spacing_torch(v, (1.0, -1.0, 1.0)), r"\(1.0, -1.0, 1.0\)"),
    ],
)
def test_torch_path_rejects_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(smooth_volume())


def test_transforms_switch_to_torch_inside_the_backend_block_and_back():
    volume = smooth_volume()
    sitk_out = Resize((6, 7, 8))(volume)
    with resampling_backend("torch", device="cpu"):
        torch_out = Resize((6, 7, 8))(volume)
        bspline = Resize((6, 7, 8), order=3)(volume)  # torch cannot: stays on SimpleITK
        assert bspline.array.shape == (6, 7, 8)
    assert np.allclose(sitk_out.array[1:-1, 1:-1, 1:-1], torch_out.array[1:-1, 1:-1, 1:-1], atol=1e-2)
    assert np.allclose(Resample((1.4, 1.6, 4.0), backend="torch")(volume).spacing, Resample((1.4, 1.6, 4.0))(volume).spacing)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: Resize((4, 4, 4), order=3, backend="torch"), "order=3"),
        (lambda: Resize((4, 4, 4), anti_alias=True, backend="torch"), "anti_alias=True"),
        (lambda: Resample((1, 1, 1), backend="cupy"), "got 'cupy'"),
    ],
)
def test_torch_backend_rejects_what_it_cannot_do(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_the_presets_give_the_same_arrays_on_the_torch_backend():
    from ctbench.preprocess.input_spec import get_spec
    from ctbench.preprocess.orientation_probe import check_markers, make_probe_volume
    probe = make_probe_volume("RAS")
    with resampling_backend("torch", device="cpu"):
        for name in ("merlin", "m3d-lamed"):
            spec = get_spec(name)
            assert check_markers(spec, probe, spec.apply(probe)) == []
