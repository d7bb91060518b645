"""Resampling to a voxel spacing and resizing to a shape, with SimpleITK (CPU, multi-threaded).

Geometry: a `Volume` (array ``[k, j, i]``, spacing/origin in (i, j, k) order, LPS direction). Both
operations keep the orientation and the physical *extent* of the volume: output voxel ``o`` along
an axis samples input position ``(o + 0.5) * n / m - 0.5`` (n input, m output voxels), i.e.
``torch.nn.functional.interpolate(..., align_corners=False)`` semantics, which is what CT-CLIP's
``resize_array`` and M3D's resize do. The output spacing is ``n * s / m`` and the origin moves by
half the spacing change, so voxel centres stay physically correct.

`resample_to_spacing` picks ``m = round(n * s / target)`` and therefore lands within half a voxel
of the requested spacing over the whole extent (MONAI's Spacing keeps the exact spacing and lets
the extent change instead; the difference is below one voxel).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from ctbench.preprocess.sitk_images import array_view, as_sitk, physical_source, remember_image
from ctbench.preprocess.volume import Volume

__all__ = [
    "BACKENDS",
    "DEFAULT_FILL_HU",
    "INTERPOLATION_ORDERS",
    "Resample",
    "Resize",
    "output_shape_for_spacing",
    "resample_to_spacing",
    "resampling_backend",
    "resize_to_shape",
]

DEFAULT_FILL_HU = -1024.0  # air; NOT a pixel-type enum (see MODEL_SPECS "Resampling fill value")
INTERPOLATION_ORDERS = {0: "nearest", 1: "linear", 3: "bspline"}
BACKENDS = ("sitk", "torch")
_DEFAULT_BACKEND = {"backend": "sitk", "device": "auto"}


@contextmanager
def resampling_backend(backend: str, device: str = "auto") -> Iterator[None]:
    """Within the block, `Resize` / `Resample` built without an explicit backend use `backend`
    ("sitk", the default, or "torch" on `device`: "auto" = CUDA if available). Steps torch cannot
    do the same way (B-spline, anti-aliasing) stay on SimpleITK. The setting is process-wide (not
    per thread): set it around a whole run, or pass ``backend=`` to the transform instead."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    previous = dict(_DEFAULT_BACKEND)
    _DEFAULT_BACKEND.update(backend=backend, device=device)
    try:
        yield
    finally:
        _DEFAULT_BACKEND.update(previous)


def _check_backend(backend: str | None, order: int, anti_alias: bool) -> str | None:
    if backend is None:
        return None
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch" and (order not in (0, 1) or anti_alias):
        raise ValueError(f"the torch backend does orders 0 and 1 without anti-aliasing, got order={order}, anti_alias={anti_alias}")
    return backend


def _run_on(backend: str | None, order: int, anti_alias: bool) -> tuple[str, str]:
    chosen = backend or _DEFAULT_BACKEND["backend"]
    if chosen == "torch" and (order not in (0, 1) or anti_alias):
        chosen = "sitk"
    return chosen, _DEFAULT_BACKEND["device"]


def _check_order(order: int) -> int:
    if order not in INTERPOLATION_ORDERS:
        raise ValueError(f"interpolation order must be one of {sorted(INTERPOLATION_ORDERS)}, got {order!r}")
    return order


def _check_triple(values: Sequence, what: str, integer: bool) -> tuple:
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{what} must be 3 numbers, got {values!r}") from None
    if len(values) != 3:
        raise ValueError(f"{what} must be 3 numbers, got {len(values)}: {values!r}")
    if integer:
        if any(int(v) != v or v < 1 for v in values):
            raise ValueError(f"{what} must be 3 positive integers, got {values!r}")
        return tuple(int(v) for v in values)
    if any(not np.isfinite(v) or v <= 0 for v in values):
        raise ValueError(f"{what} must be 3 positive finite numbers, got {values!r}")
    return tuple(float(v) for v in values)


def output_shape_for_spacing(volume: Volume, spacing_ijk: Sequence[float]) -> tuple[int, int, int]:
    """Array shape ``(k, j, i)`` that `resample_to_spacing` produces for `spacing_ijk`."""
    shape_ijk = [max(1, round(n * s / t)) for n, s, t in zip(volume.shape_ijk, volume.spacing, spacing_ijk)]
    return (shape_ijk[2], shape_ijk[1], shape_ijk[0])


def resize_to_shape(
    volume: Volume,
    shape: Sequence[int],
    order: int = 1,
    anti_alias: bool = False,
    fill_value: float = DEFAULT_FILL_HU,
) -> Volume:
    """Resize to array shape ``(k, j, i)`` (= D, H, W) over the same physical extent.

    `order` 0 nearest (keeps the dtype), 1 linear, 3 B-spline (float32 out). With `anti_alias`,
    axes that shrink are first smoothed with a Gaussian of sigma ``(s_out - s_in) / 2`` mm
    (scikit-image's rule). `fill_value` is used only for samples outside the input (none for
    pure resizing, up to half a voxel at the border otherwise).
    """
    import SimpleITK as sitk

    shape = _check_triple(shape, "resize shape (k, j, i)", integer=True)
    _check_order(order)
    size_ijk = (shape[2], shape[1], shape[0])
    if size_ijk == volume.shape_ijk:
        return volume
    image = as_sitk(physical_source(volume))
    in_spacing = np.asarray(volume.spacing)
    out_spacing = np.asarray(volume.shape_ijk) * in_spacing / np.asarray(size_ijk)
    if anti_alias and order > 0:
        sigma = np.maximum(0.0, (out_spacing - in_spacing) / 2.0)
        if sigma.any():
            smoother = sitk.DiscreteGaussianImageFilter()
            smoother.SetVariance([float(v) for v in sigma**2])
            smoother.SetUseImageSpacing(True)
            image = smoother.Execute(sitk.Cast(image, sitk.sitkFloat32))
    origin = volume.index_to_lps((out_spacing / in_spacing - 1.0) / 2.0)
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(v) for v in size_ijk])
    resampler.SetOutputSpacing([float(v) for v in out_spacing])
    resampler.SetOutputOrigin([float(v) for v in origin])
    resampler.SetOutputDirection([float(v) for v in volume.direction.flatten()])
    resampler.SetDefaultPixelValue(float(fill_value))
    if order == 0:
        resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    else:
        resampler.SetInterpolator(sitk.sitkLinear if order == 1 else sitk.sitkBSpline)
        resampler.SetOutputPixelType(sitk.sitkFloat32)
    out_image = resampler.Execute(image)
    result = Volume(  # a read-only view of the output image: no copy of the voxels
        array_view(out_image), tuple(out_spacing), tuple(origin), volume.direction, volume.source
    )
    remember_image(result, out_image)
    return result


def resample_to_spacing(
    volume: Volume,
    spacing: Sequence[float],
    order: int = 1,
    anti_alias: bool = False,
    fill_value: float = DEFAULT_FILL_HU,
) -> Volume:
    """Resample to voxel spacing ``(i, j, k)`` mm (same order as `Volume.spacing`), same extent.

    See the module docstring for the sampling rule; `order`, `anti_alias`, `fill_value` as in
    `resize_to_shape`. Orientation is unchanged (reorient first if the spacing is meant for,
    e.g., RAS axes).
    """
    spacing = _check_triple(spacing, "spacing (i, j, k) mm", integer=False)
    return resize_to_shape(volume, output_shape_for_spacing(volume, spacing), order, anti_alias, fill_value)


class Resize:
    """Volume -> Volume of array shape ``(D, H, W)`` = ``(k, j, i)``, same extent and orientation.

    `backend` None follows `resampling_backend` (SimpleITK unless changed); "torch" uses
    `torch_resampling` (CPU or CUDA).
    """

    def __init__(self, shape: Sequence[int], order: int = 1, anti_alias: bool = False, fill_value: float = DEFAULT_FILL_HU,
                 backend: str | None = None):
        self.shape = _check_triple(shape, "Resize shape (D, H, W)", integer=True)
        self.order = _check_order(order)
        self.anti_alias = bool(anti_alias)
        self.fill_value = float(fill_value)
        self.backend = _check_backend(backend, self.order, self.anti_alias)

    def __call__(self, volume: Volume) -> Volume:
        backend, device = _run_on(self.backend, self.order, self.anti_alias)
        if backend == "torch":
            from ctbench.preprocess.torch_resampling import resize_to_shape_torch

            return resize_to_shape_torch(volume, self.shape, self.order, device)
        return resize_to_shape(volume, self.shape, self.order, self.anti_alias, self.fill_value)

    def __repr__(self) -> str:
        return f"Resize({self.shape}, order={self.order}, anti_alias={self.anti_alias})"


class Resample:
    """Volume -> Volume at voxel spacing ``(i, j, k)`` mm, same extent and orientation.

    `backend` as for `Resize`.
    """

    def __init__(self, spacing: Sequence[float], order: int = 1, anti_alias: bool = False, fill_value: float = DEFAULT_FILL_HU,
                 backend: str | None = None):
        self.spacing = _check_triple(spacing, "Resample spacing (i, j, k) mm", integer=False)
        self.order = _check_order(order)
        self.anti_alias = bool(anti_alias)
        self.fill_value = float(fill_value)
        self.backend = _check_backend(backend, self.order, self.anti_alias)

    def __call__(self, volume: Volume) -> Volume:
        backend, device = _run_on(self.backend, self.order, self.anti_alias)
        if backend == "torch":
            from ctbench.preprocess.torch_resampling import resample_to_spacing_torch

            return resample_to_spacing_torch(volume, self.spacing, self.order, device)
        return resample_to_spacing(volume, self.spacing, self.order, self.anti_alias, self.fill_value)

    def __repr__(self) -> str:
        return f"Resample(spacing={self.spacing}, order={self.order}, anti_alias={self.anti_alias}, fill={self.fill_value:g})"
