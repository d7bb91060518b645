"""The input presets the VLM servers use: `ctbench.preprocess`'s InputSpec registry.

Servers call only these functions, so what each model is fed is declared once, in
`ctbench.preprocess.presets`, and the card's `input` is that declaration (the `InputSpec`).
`slice_pipeline` rebuilds a slice preset with a different slice count or size (the
`num_slices` / `slice_size` options: small slices keep CI fast) from the same transforms.
"""
from __future__ import annotations

from collections.abc import Callable

from ctbench.preprocess.compose import Compose
from ctbench.preprocess.input_spec import InputSpec, get_spec
from ctbench.preprocess.orientation import Reorient, ToAxisOrder
from ctbench.preprocess.slicing import ResizeSlices, SampleSlices
from ctbench.preprocess.windows import MultiWindowRGB


def preset(name: str, variant: str | None = None) -> InputSpec:
    """The registered preset `name` in `variant` (default: the authors' input)."""
    return get_spec(name, variant)


def input_spec_for(name: str, variant: str) -> InputSpec:
    """The card's input for preset `name` in `variant` (the preset's `InputSpec` itself)."""
    return preset(name, variant)


def slice_pipeline(spec: InputSpec, num_slices: int, size: tuple[int, int] | None) -> Compose:
    """The preset's slice pipeline (reorient, D/H/W, linspace slices, one window per RGB channel,
    optional bilinear resize) with `num_slices` and `size` in place of the preset's.
    Output: (N, rows, cols, 3) uint8."""
    if spec.kind != "slices2d" or len(spec.windows) != 3:
        raise ValueError(f"{spec.name}/{spec.variant} is not a three-window slice preset")
    steps: list[Callable] = [Reorient(spec.orientation)] if spec.orientation else []
    steps += [ToAxisOrder("DHW"), SampleSlices(num_slices, axis=0), MultiWindowRGB(spec.windows)]
    if size is not None:
        steps.append(ResizeSlices(size, order=1))
    return Compose(steps)


def sized_slice_spec(spec: InputSpec, num_slices: int | None = None,
                     size: tuple[int, int] | str | None = "preset") -> InputSpec:
    """`spec` with another slice count and/or size (`size="preset"` keeps the preset's, None is
    native): the same declaration and transforms via `slice_pipeline`, so the card and the
    orientation contract describe exactly what is fed. Raises ValueError for presets
    `slice_pipeline` cannot rebuild (not three windows)."""
    import dataclasses

    count = spec.num_slices if num_slices is None else num_slices
    if isinstance(size, str):
        if size != "preset":
            raise ValueError(f"size must be 'preset', None or (rows, cols), got {size!r}")
        slice_size = spec.slice_size
    else:
        slice_size = size
    if count == spec.num_slices and slice_size == spec.slice_size:
        return spec
    slice_pipeline(spec, count, slice_size)  # validates now, not at the first volume
    details = dict(spec.details)
    details["slice_size"] = "native" if slice_size is None else f"{slice_size[0]}x{slice_size[1]}"
    shape = (count, *slice_size) if slice_size else ((count, *spec.target_shape[1:]) if spec.target_shape else ())
    return dataclasses.replace(spec, num_slices=count, target_shape=shape, details=details,
                               build=lambda: slice_pipeline(spec, count, slice_size))
