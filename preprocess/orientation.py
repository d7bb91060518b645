"""Exact reorientation (axis permutation and flips) and axis orders.

Conventions (see `volume.py`): `Volume.array` is indexed ``[k, j, i]``; an orientation code such as
``"RAS"`` names the patient direction each index axis (i, j, k) points *towards* (DICOM style;
SimpleITK's identity direction is ``"LPS"``, nibabel's identity affine is ``"RAS"``).

An *axis order* names the array axes handed to a model, using ``D`` (the k axis, slices), ``H``
(the j axis, image rows) and ``W`` (the i axis, image columns) of the oriented volume: ``"DHW"`` is
the array as stored in a `Volume` (SimpleITK's (z, y, x)); ``"HWD"`` is (y, x, z); ``"WHD"`` is
(x, y, z), nibabel's and MONAI's order. The letters ``z``, ``y``, ``x`` are accepted for D, H, W.
"""
from __future__ import annotations

import numpy as np

from ctbench.preprocess.sitk_images import derived, record_same_physics
from ctbench.preprocess.volume import Volume

__all__ = [
    "AXIS_LETTERS",
    "Reorient",
    "ToAxisOrder",
    "direction_for_code",
    "normalize_axis_order",
    "normalize_orientation",
    "reorient",
    "to_axis_order",
]

# LPS physical axis index and sign for each letter.
_LETTER_AXIS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}
AXIS_LETTERS = "DHW"
_AXIS_SYNONYMS = {"z": "D", "y": "H", "x": "W", "d": "D", "h": "H", "w": "W"}
_ARRAY_POSITION = {"D": 0, "H": 1, "W": 2}  # position in Volume.array ([k, j, i])


def normalize_orientation(code: str) -> str:
    """Validate a 3-letter orientation code (one of L/R, one of A/P, one of S/I), upper-cased."""
    if not isinstance(code, str) or len(code) != 3:
        raise ValueError(f"orientation code must be 3 letters such as 'RAS' or 'LPS', got {code!r}")
    code = code.upper()
    if any(c not in _LETTER_AXIS for c in code) or len({_LETTER_AXIS[c][0] for c in code}) != 3:
        raise ValueError(
            f"orientation code {code!r} must use one letter from each of L/R, A/P and S/I"
        )
    return code


def normalize_axis_order(order: str) -> str:
    """Validate an axis order ("DHW", "HWD", "zyx", "xyz", ...) and return it in D/H/W letters."""
    if not isinstance(order, str) or len(order) != 3:
        raise ValueError(f"axis order must be a permutation of 'DHW' (or 'zyx'), got {order!r}")
    letters = "".join(_AXIS_SYNONYMS.get(c, c) for c in order)
    if sorted(letters) != sorted(AXIS_LETTERS):
        raise ValueError(f"axis order must be a permutation of 'DHW' (or 'zyx'), got {order!r}")
    return letters


def direction_for_code(code: str) -> np.ndarray:
    """The 3x3 LPS direction matrix whose index axes (i, j, k) point towards `code`'s letters."""
    code = normalize_orientation(code)
    direction = np.zeros((3, 3))
    for column, letter in enumerate(code):
        axis, sign = _LETTER_AXIS[letter]
        direction[axis, column] = sign
    return direction


def reorient(volume: Volume, code: str) -> Volume:
    """Re-index `volume` so its (i, j, k) axes point towards `code` ("RAS", "LPS", "PIR", ...).

    Exact: only axis permutations and flips, no interpolation. Spacing is permuted, the direction
    matrix's columns are permuted and negated, and the origin moves to the physical position of
    the new first voxel, so every voxel keeps its physical (LPS) position. The returned array is a
    view where numpy allows. For an oblique volume the nearest axis-aligned code is used.
    """
    target = normalize_orientation(code)
    current = volume.orientation
    if current == target:
        return volume
    # For each target axis t: which source index axis holds the same physical axis, and flipped?
    source_axis = []
    flip = []
    for letter in target:
        axis, sign = _LETTER_AXIS[letter]
        for c, have in enumerate(current):
            have_axis, have_sign = _LETTER_AXIS[have]
            if have_axis == axis:
                source_axis.append(c)
                flip.append(have_sign != sign)
                break
    array_ijk = volume.array.transpose(2, 1, 0)
    new_ijk = array_ijk.transpose(source_axis)
    slicer = tuple(slice(None, None, -1) if f else slice(None) for f in flip)
    new_ijk = new_ijk[slicer]
    shape_ijk = volume.shape_ijk
    first_voxel = np.zeros(3)
    for t, c in enumerate(source_axis):
        if flip[t]:
            first_voxel[c] = shape_ijk[c] - 1
    origin = volume.index_to_lps(first_voxel)
    direction = volume.direction[:, source_axis] * np.where(flip, -1.0, 1.0)[None, :]
    spacing = (volume.spacing[source_axis[0]], volume.spacing[source_axis[1]], volume.spacing[source_axis[2]])
    result = Volume(new_ijk.transpose(2, 1, 0), spacing, tuple(origin), direction, volume.source)
    record_same_physics(result, volume)
    return result


def to_axis_order(array: np.ndarray, order: str) -> np.ndarray:
    """Transpose a ``[k, j, i]`` (D, H, W) array to `order`, e.g. "HWD" -> ``array[k, j, i]`` as (j, i, k).

    Returns a view; no orientation change (apply `reorient` first for that).
    """
    order = normalize_axis_order(order)
    return np.transpose(array, [_ARRAY_POSITION[letter] for letter in order])


class Reorient:
    """Volume -> Volume re-indexed so (i, j, k) point towards `orientation` (exact, see `reorient`)."""

    def __init__(self, orientation: str):
        self.orientation = normalize_orientation(orientation)

    def __call__(self, volume: Volume) -> Volume:
        return derived(volume, ("reorient", self.orientation), lambda: reorient(volume, self.orientation))

    def __repr__(self) -> str:
        return f"Reorient({self.orientation!r})"


class ToAxisOrder:
    """Volume (array [k, j, i] = DHW) -> numpy array in `axis_order` ("DHW", "HWD", "WHD", ...).

    This ends the geometric part of a pipeline: the result is a plain array.
    """

    def __init__(self, axis_order: str):
        self.axis_order = normalize_axis_order(axis_order)

    def __call__(self, data) -> np.ndarray:
        array = data.array if isinstance(data, Volume) else np.asarray(data)
        if array.ndim != 3:
            raise ValueError(f"ToAxisOrder needs a 3D array, got shape {array.shape}")
        return to_axis_order(array, self.axis_order)

    def __repr__(self) -> str:
        return f"ToAxisOrder({self.axis_order!r})"
