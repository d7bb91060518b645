"""`InputSpec`: what a model is fed, declared as data, with the pipeline that produces it.

A spec's fields mirror the proto message ``ctbench.v1.InputSpec`` (`to_dict` returns exactly its
fields), so a model server's `Describe` can report how every volume it answered was prepared.
`to_proto` and `from_proto` are the spec's one conversion each way to that message (the model
card's, `model_servers/sdk/model_card.py`, goes through them); `from_dict` reads `to_dict`'s form
back and names any key the message does not define.
Spatial conventions of the declared fields:

* ``orientation``: the code the volume is reoriented to before anything else ("" = used as
  stored on disk, as the published harness did for several models).
* ``axis_order``: the order of the array axes handed to the model, in D/H/W letters of the
  oriented volume (D = k, slices; H = j, rows; W = i, columns; see `orientation.py`).
* ``target_shape``: the spatial shape in ``axis_order`` (for slice models ``[N, rows, cols]``,
  empty where slices keep their native size); channel and batch axes the model adds are in
  ``details["model_tensor"]``.
* ``target_spacing_mm``: voxel spacing in the oriented volume's (i, j, k) order, empty when the
  model resizes to a shape instead.

``details["geometry"]`` says how the shape is reached: ``resize`` (whole extent to
target_shape), ``resample_crop`` (to target_spacing_mm, then centre crop/pad to target_shape),
``slices`` (``num_slices`` linspace slices along D, optionally resized to ``details["slice_size"]``)
or ``middle_slice`` (``details["slice_index"]`` says which: ``n_slices // 2`` of the oriented
stack, or ``stored k // 2`` when the index comes from the file as stored). The
orientation-contract tests use these declarations, not the pipeline, to work out where each
probe marker must land.

``differs_from_authors`` (not part of the proto) says, in words, how a variant's input differs
from the ``authors`` variant's ("" = the same tensor); `tests/preprocess/test_preset_claims.py`
checks it, and the orientation claim, on twelve storage orientations.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ctbench.errors import UnknownName
from ctbench.preprocess.compose import Compose
from ctbench.preprocess.orientation import normalize_axis_order, normalize_orientation
from ctbench.registry import Registry

__all__ = ["KINDS", "PRESETS", "InputSpec", "PresetFamily", "get_spec", "preset_names"]

KINDS = ("volume3d", "slices2d", "none")
GEOMETRIES = ("resize", "resample_crop", "slices", "middle_slice", "none")


@dataclass(frozen=True, eq=False)
class InputSpec:
    name: str
    variant: str
    kind: str
    orientation: str = ""
    axis_order: str = "DHW"
    target_shape: tuple[int, ...] = ()
    target_spacing_mm: tuple[float, ...] = ()
    intensity: str = ""
    num_slices: int = 0
    windows: tuple[tuple[float, float], ...] = ()
    notes: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    build: Callable[[], Compose] | None = field(default=None, repr=False)
    differs_from_authors: str = ""

    @property
    def reorients(self) -> bool:
        """Whether the volume is reoriented before anything else (False: used as stored)."""
        return bool(self.orientation)

    @property
    def slice_index_from_storage(self) -> bool:
        """A single slice whose index comes from the stored file's k axis, not the oriented stack."""
        return self.details.get("slice_index", "").startswith("stored")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"InputSpec {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.orientation:
            object.__setattr__(self, "orientation", normalize_orientation(self.orientation))
        if self.kind != "none":
            object.__setattr__(self, "axis_order", normalize_axis_order(self.axis_order))
        object.__setattr__(self, "target_shape", tuple(int(v) for v in self.target_shape))
        object.__setattr__(self, "target_spacing_mm", tuple(float(v) for v in self.target_spacing_mm))
        object.__setattr__(self, "windows", tuple((float(lo), float(hi)) for lo, hi in self.windows))
        details = {str(k): str(v) for k, v in self.details.items()}
        geometry = details.get("geometry", "none")
        if geometry not in GEOMETRIES:
            raise ValueError(f"InputSpec {self.name!r}: details['geometry'] must be one of {GEOMETRIES}, got {geometry!r}")
        object.__setattr__(self, "details", details)

    @property
    def geometry(self) -> str:
        return self.details.get("geometry", "none")

    @property
    def slice_size(self) -> tuple[int, int] | None:
        """(rows, cols) slices are resized to, or None for native size."""
        size = self.details.get("slice_size", "native")
        if size == "native":
            return None
        rows, cols = size.split("x")
        return (int(rows), int(cols))

    def pipeline(self) -> Compose:
        """The transforms that produce this input from a `Volume` (built once)."""
        if self.build is None:
            raise ValueError(f"InputSpec {self.name}/{self.variant} has no pipeline (kind {self.kind!r})")
        return self._built_pipeline

    @functools.cached_property
    def _built_pipeline(self) -> Compose:
        # cached_property writes the instance __dict__ directly, so it works on a frozen dataclass
        if self.build is None:
            raise ValueError(f"InputSpec {self.name}/{self.variant} has no pipeline (kind {self.kind!r})")
        return self.build()

    def apply(self, volume) -> np.ndarray:
        """Model-ready numpy array, C-contiguous and writable (``torch.from_numpy`` takes it as is):
        ``target_shape`` float32 for volume3d, ``(N, rows, cols, 3)`` uint8 for slices2d (a stack
        of HxWx3 slices, slice 0 first)."""
        out = np.ascontiguousarray(self.pipeline()(volume))
        return out if out.flags.writeable else out.copy()

    def to_dict(self) -> dict:
        """The proto ``InputSpec`` fields, JSON-ready."""
        return {
            "name": self.name,
            "variant": self.variant,
            "kind": self.kind,
            "orientation": self.orientation,
            "axis_order": self.axis_order if self.kind != "none" else "",
            "target_shape": list(self.target_shape),
            "target_spacing_mm": list(self.target_spacing_mm),
            "intensity": self.intensity,
            "num_slices": int(self.num_slices),
            "windows": [[lo, hi] for lo, hi in self.windows],
            "notes": self.notes,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, fields: Mapping[str, object]) -> InputSpec:
        """The spec `to_dict` wrote (declarations only, no pipeline). A key that is not a proto
        field raises `UnknownInputKey` naming it; ``None`` values and a missing variant or
        axis order read as the field's default. Raises ValueError for an invalid declaration."""
        unknown = sorted(set(fields) - set(WIRE_FIELDS))
        if unknown:
            raise UnknownInputKey(unknown)
        given = {k: v for k, v in fields.items() if v is not None}
        given.setdefault("name", "")
        given.setdefault("variant", "")
        given.setdefault("kind", "volume3d")
        if not given.get("axis_order"):
            given.pop("axis_order", None)
        return cls(**given)  # type: ignore[arg-type]

    def to_proto(self):
        """As a ``ctbench.v1.InputSpec`` message (imports protobuf lazily)."""
        from ctbench.v1 import answer_volume_question_pb2 as pb

        fields = self.to_dict()
        windows = [pb.IntensityWindow(lower=lo, upper=hi) for lo, hi in fields.pop("windows")]
        return pb.InputSpec(windows=windows, **fields)

    @classmethod
    def from_proto(cls, message) -> InputSpec:
        """The spec a ``ctbench.v1.InputSpec`` message declares (declarations only, no pipeline).
        Raises ValueError naming the field when a declaration is not valid."""
        return cls(
            name=message.name, variant=message.variant, kind=message.kind,
            orientation=message.orientation, axis_order=message.axis_order or "DHW",
            target_shape=tuple(message.target_shape), target_spacing_mm=tuple(message.target_spacing_mm),
            intensity=message.intensity, num_slices=message.num_slices,
            windows=tuple((w.lower, w.upper) for w in message.windows), notes=message.notes,
            details=dict(message.details))


#: The fields the proto message ``ctbench.v1.InputSpec`` has: what `to_dict` writes.
WIRE_FIELDS = ("name", "variant", "kind", "orientation", "axis_order", "target_shape", "target_spacing_mm",
               "intensity", "num_slices", "windows", "notes", "details")


class UnknownInputKey(ValueError):
    """`InputSpec.from_dict` got keys the proto message does not define (`keys` names them)."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        super().__init__(f"unknown input key(s) {', '.join(keys)} (known: {', '.join(sorted(WIRE_FIELDS))})")


@dataclass(frozen=True)
class PresetFamily:
    """One model's specs: the authors' input (the default) and the published harness's variant(s)."""

    name: str
    variants: Mapping[str, InputSpec]
    default: str = "authors"

    def get(self, variant: str | None = None) -> InputSpec:
        variant = variant or self.default
        try:
            return self.variants[variant]
        except KeyError:
            raise UnknownName(
                f"Unknown variant {variant!r} of preset {self.name!r}. Available: {', '.join(sorted(self.variants))}"
            ) from None


PRESETS: Registry[PresetFamily] = Registry("input spec preset")


def get_spec(name: str, variant: str | None = None) -> InputSpec:
    """The registered spec ``name`` (e.g. "medgemma") in `variant` (default: the authors' input)."""
    import ctbench.preprocess.presets  # noqa: F401  (registers the presets)

    return PRESETS.get(name).get(variant)


def preset_names() -> list[str]:
    import ctbench.preprocess.presets  # noqa: F401

    return PRESETS.names()
