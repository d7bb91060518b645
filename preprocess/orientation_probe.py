"""The orientation probe: a phantom with one marker on the patient's left, one anterior and one
superior, storable in any orientation, and the oracle that says where each marker must land in a
preset's output.

The phantom is defined in patient space: air (-1000 HU) with three cubes (half-size
`MARKER_HALF_SIZE_MM`) on the axes through its centre, at *different* distances and HU values
(`MARKERS`), so a swapped axis moves a marker to a place where no marker is expected, and the
three can be told apart by rank in any monotone intensity mapping the presets use (every HU
value lies inside every preset window). `make_probe_volume(code)` samples it on a grid whose
(i, j, k) axes point towards `code`'s letters; extents and spacings differ per anatomical axis.

`expected_marker_positions(spec, probe)` works from the spec's *declared* fields only
(orientation, axis order, target shape / spacing, slice count), never from the pipeline, and
`check_markers` compares an output against it, describing where each marker went on failure.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ctbench.preprocess.cropping import crop_or_pad_offsets
from ctbench.preprocess.orientation import direction_for_code, normalize_orientation
from ctbench.preprocess.slicing import sample_slice_indices
from ctbench.preprocess.volume import Volume

__all__ = [
    "MARKERS",
    "PROBE_CENTER_LPS",
    "Marker",
    "check_markers",
    "expected_marker_positions",
    "make_probe_volume",
    "marker_values",
]

BACKGROUND_HU = -1000.0
MARKER_HALF_SIZE_MM = 6.0
PROBE_CENTER_LPS = np.array([12.0, -20.0, 35.0])  # deliberately not the origin


@dataclass(frozen=True)
class Marker:
    name: str
    letter: str  # patient direction from the centre: L, A or S
    distance_mm: float
    hu: float


MARKERS = (
    Marker("left", "L", 20.0, -100.0),
    Marker("anterior", "A", 36.0, 20.0),
    Marker("superior", "S", 52.0, 140.0),
)
# Per anatomical axis (0: L-R, 1: P-A, 2: I-S): voxel count and spacing (mm), all different.
_GRID = {0: (56, 2.0), 1: (60, 1.6), 2: (52, 2.5)}
_LETTER = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}


def _marker_center_lps(marker: Marker) -> np.ndarray:
    axis, sign = _LETTER[marker.letter]
    offset = np.zeros(3)
    offset[axis] = sign * marker.distance_mm
    return PROBE_CENTER_LPS + offset


def make_probe_volume(orientation: str = "LPS", dtype=np.int16) -> Volume:
    """The probe sampled on a grid whose index axes (i, j, k) point towards `orientation`.

    Every orientation holds the same physical image: ``reorient(make_probe_volume(a), b)`` equals
    ``make_probe_volume(b)`` voxel for voxel.
    """
    code = normalize_orientation(orientation)
    direction = direction_for_code(code)
    anatomical = [_LETTER[letter][0] for letter in code]
    size_ijk = [_GRID[a][0] for a in anatomical]
    spacing = [_GRID[a][1] for a in anatomical]
    half = (np.asarray(size_ijk) - 1) / 2.0 * np.asarray(spacing)
    origin = PROBE_CENTER_LPS - direction @ half
    k, j, i = np.meshgrid(*(np.arange(n) for n in size_ijk[::-1]), indexing="ij")
    ijk = np.stack([i, j, k], axis=-1) * np.asarray(spacing)
    lps = origin + ijk @ direction.T
    array = np.full(lps.shape[:3], BACKGROUND_HU, dtype=np.float64)
    for marker in MARKERS:
        inside = np.all(np.abs(lps - _marker_center_lps(marker)) <= MARKER_HALF_SIZE_MM + 1e-6, axis=-1)
        array[inside] = marker.hu
    return Volume(array.astype(dtype), (spacing[0], spacing[1], spacing[2]), tuple(origin), direction, source=f"probe-{code}")


def _oriented_indices(code: str, marker: Marker) -> tuple[list[float], list[int], list[float]]:
    """Continuous (i, j, k) index of the marker centre in the probe sampled in `code`, with sizes and spacings."""
    index, sizes, spacings = [], [], []
    axis, sign = _LETTER[marker.letter]
    for letter in code:
        a, s = _LETTER[letter]
        n, spacing = _GRID[a]
        centre = (n - 1) / 2.0
        index.append(centre + (s * sign * marker.distance_mm / spacing if a == axis else 0.0))
        sizes.append(n)
        spacings.append(spacing)
    return index, sizes, spacings


def _resized(c: float, n: int, m: int) -> float:
    return (c + 0.5) * m / n - 0.5


def expected_marker_positions(spec, probe: Volume) -> dict[str, tuple[float, ...] | None]:
    """Where each marker's centre must be in ``spec.apply(probe)``: a continuous index in the output
    array's axes (``(slice, row, col)`` for slice models), or None where the spec's declared
    geometry leaves the marker out (e.g. the superior marker and a single middle axial slice).

    Uses only the spec's declarations: ``orientation`` ("" = the probe's own), ``axis_order``,
    ``target_shape``, ``target_spacing_mm``, ``num_slices``, ``details['geometry']``,
    ``details['slice_size']`` and ``details['spacing_source']``.
    """
    code = spec.orientation or probe.orientation
    geometry = spec.geometry
    assumes_1mm = spec.details.get("spacing_source") == "assumed 1 mm"
    positions: dict[str, tuple[float, ...] | None] = {}
    for marker in MARKERS:
        ijk, sizes, spacings = _oriented_indices(code, marker)
        if geometry == "resize":
            order = spec.axis_order
            target = dict(zip(order, spec.target_shape))
            out_ijk = [_resized(ijk[a], sizes[a], target[letter]) for a, letter in enumerate("WHD")]
        elif geometry == "resample_crop":
            order = spec.axis_order
            target = dict(zip(order, spec.target_shape))
            out_ijk = []
            for a, letter in enumerate("WHD"):
                spacing = 1.0 if assumes_1mm else spacings[a]
                m = max(1, round(sizes[a] * spacing / spec.target_spacing_mm[a]))
                offset = crop_or_pad_offsets([m], [target[letter]])[0]
                out_ijk.append(_resized(ijk[a], sizes[a], m) - offset)
        elif geometry in ("slices", "middle_slice"):
            order = spec.axis_order
            n_slices = sizes[2]
            if geometry == "slices":
                picked = sample_slice_indices(n_slices, spec.num_slices)
            elif spec.slice_index_from_storage:  # the published VILA-M3 harness: nib.shape[2] // 2
                picked = np.array([probe.shape_ijk[2] // 2])
            else:
                picked = np.array([n_slices // 2])
            distance_mm = np.abs(picked - ijk[2]) * spacings[2]
            nearest = int(np.argmin(distance_mm))
            if distance_mm[nearest] > MARKER_HALF_SIZE_MM - spacings[2] / 2:
                positions[marker.name] = None
                continue
            size = spec.slice_size
            rows = _resized(ijk[1], sizes[1], size[0]) if size else ijk[1]
            cols = _resized(ijk[0], sizes[0], size[1]) if size else ijk[0]
            positions[marker.name] = (float(nearest), rows, cols)
            continue
        else:
            raise ValueError(f"spec {spec.name}/{spec.variant} declares no geometry the probe can check: {geometry!r}")
        by_letter = dict(zip("WHD", out_ijk))
        positions[marker.name] = tuple(by_letter[letter] for letter in order)
    return positions


def marker_values(output: np.ndarray, position) -> float:
    """Output value at a (rounded) position; RGB slices are summed over channels."""
    index = tuple(round(p) for p in position)
    value = np.asarray(output)[index]
    return float(np.sum(value, dtype=np.float64))


def check_markers(spec, probe: Volume, output: np.ndarray) -> list[str]:
    """Problems found (empty list = the contract holds): each visible marker must sit at its
    expected position, brighter than the background, in the rank order left < anterior < superior,
    with background at the mirror position. Messages say which marker went where."""
    output = np.asarray(output)
    expected = expected_marker_positions(spec, probe)
    spatial_shape = output.shape[:3]
    centre = tuple((n - 1) / 2.0 for n in spatial_shape)
    problems: list[str] = []
    background = None
    seen: list[tuple[Marker, float]] = []
    for marker in MARKERS:
        position = expected[marker.name]
        if position is None:
            continue
        if any(not (-0.5 <= p < n - 0.5) for p, n in zip(position, spatial_shape)):
            problems.append(f"{marker.name} marker: expected position {np.round(position, 1).tolist()} is outside the output {spatial_shape}")
            continue
        mirror = tuple(2 * c - p if abs(p - c) > 1 else p for p, c in zip(position, centre))
        if spec.kind == "slices2d":  # slices: mirror in-plane only; the slice axis may not be centred
            mirror = (position[0],) + mirror[1:]
        if background is None:
            background = _background_value(output, spec)
        value = marker_values(output, position)
        mirror_value = marker_values(output, mirror) if all(-0.5 <= p < n - 0.5 for p, n in zip(mirror, spatial_shape)) else background
        if not value > background + 1e-3 * max(1.0, abs(background)):
            problems.append(
                f"{marker.name} marker ({marker.hu:g} HU, {marker.distance_mm:g} mm {marker.letter}) missing at expected "
                f"output index {_fmt(position)} (value {value:.4g} = background {background:.4g}); "
                f"{_where_it_went(output, _probe_centre(spec, position, centre), background)}"
            )
            continue
        if abs(mirror_value - background) > 1e-3 * max(1.0, abs(background)) and mirror != position:
            problems.append(
                f"{marker.name} marker: the mirror position {_fmt(mirror)} is not background (value {mirror_value:.4g})"
            )
        seen.append((marker, value))
    for (low, low_value), (high, high_value) in itertools.pairwise(seen):
        if not high_value > low_value:
            problems.append(
                f"marker order broken: {low.name} ({low.hu:g} HU) reads {low_value:.4g} but {high.name} ({high.hu:g} HU) "
                f"reads {high_value:.4g} at their expected positions: markers swapped?"
            )
    return problems


def _probe_centre(spec, position, centre) -> tuple:
    """The output point the probe's centre maps to (slices: the marker's slice, centred in-plane)."""
    if spec.kind == "slices2d":
        return (position[0],) + tuple(centre[1:])
    return tuple(centre)


def _background_value(output: np.ndarray, spec) -> float:
    """Value at the centre of the output (the probe's centre is air, markers are off-centre)."""
    shape = output.shape[:3]
    centre = tuple(n // 2 for n in shape)
    if spec.kind == "slices2d":
        centre = (0,) + centre[1:]
    return marker_values(output, centre)


def _where_it_went(output: np.ndarray, centre, background: float) -> str:
    """What the output holds along each axis through its centre, on each side: the markers sit
    on those lines, so this says where each one actually went (the brightest voxel per half-line)."""
    output = np.asarray(output)
    shape = output.shape[:3]
    middle = [round(c) for c in centre]
    found = []
    for axis in range(3):
        line_index = list(middle)
        line_index[axis] = slice(None)
        line = output[tuple(line_index)]
        values = line.reshape(line.shape[0], -1).sum(axis=1, dtype=np.float64)
        for sign, part in (("+", slice(middle[axis] + 1, shape[axis])), ("-", slice(0, middle[axis]))):
            segment = values[part]
            if segment.size and segment.max() > background + 1e-3 * max(1.0, abs(background)):
                peak = int(np.argmax(segment)) + (part.start or 0)
                found.append(f"axis {axis} {sign}: peak {segment.max():.4g} at index {peak}")
    ranking = " < ".join(f"{m.name} {m.hu:g} HU" for m in MARKERS)
    return (
        "along the axes through the centre " + _fmt(middle) + ": " + ("; ".join(found) if found else "nothing but background")
        + f" (brightness ranks {ranking})"
    )


def _fmt(position) -> str:
    return "(" + ", ".join(f"{p:.1f}" for p in position) + ")"
