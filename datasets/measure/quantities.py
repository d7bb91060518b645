"""Exact quantities of labelled structures, in patient (LPS) millimetres, from a label map.

A label map is a `Volume` whose voxels are label values (0 = background), read with ctbench's own
loader, so its header decides where every voxel is: index (i, j, k) -> LPS mm through spacing,
origin and direction (`Volume.index_to_lps`), whatever the storage orientation.

Definitions (what the answers mean):

* **volume** (mL): voxel count x voxel volume.
* **centroid** (LPS mm): the mean position of the structure's voxel centres.
* **extent** (mm) along each patient axis (left-right, anterior-posterior, craniocaudal): from the
  outer face of the first voxel to the outer face of the last, i.e. the span of voxel centres
  plus one voxel's footprint along that axis.
* **centroid distance** (mm): Euclidean distance between the two centroids.
* **surface distance** (mm): the shortest distance between a voxel centre of one structure and a
  voxel centre of the other (touching structures are one voxel step apart). Computed on the
  structures' boundary voxels with a k-d tree: the nearest pair always lies on the boundaries.
* **contact**: a voxel of one structure shares a face with a voxel of the other.
* **containment** (A within B): every voxel sharing a face with A, and not in A, belongs to B
  (a structure on the edge of the image is within nothing).

Memory is bounded by the label map plus each structure's bounding box: every structure is
measured in its own box (`scipy.ndimage.find_objects`), never on a full-size copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctbench.datasets.measure.label_table import LabelTable, Structure
from ctbench.errors import DatasetError
from ctbench.preprocess.volume import Volume

AXES = ("left_right", "anterior_posterior", "craniocaudal")  # LPS x, y, z


@dataclass
class StructureMeasure:
    structure: Structure
    voxels: int
    volume_ml: float
    centroid: np.ndarray  # LPS mm
    extent_mm: np.ndarray  # along LPS x, y, z
    window: tuple[slice, ...]  # the structure's box grown by one voxel, array (k, j, i) order
    boundary: np.ndarray = field(repr=False)  # LPS mm of its boundary voxels' centres, (n, 3)
    neighbours: dict[int, int] = field(default_factory=dict)  # label value -> voxels sharing a face with it
    on_edge: bool = False  # has a voxel on the image's outer faces

    @property
    def name(self) -> str:
        return self.structure.name

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.structure.value, "voxels": self.voxels, "volume_ml": round(self.volume_ml, 4),
            "centroid_lps_mm": [round(float(c), 3) for c in self.centroid],
            "extent_mm": {axis: round(float(e), 3) for axis, e in zip(AXES, self.extent_mm)},
        }


@dataclass(frozen=True)
class PairMeasure:
    a: str
    b: str
    centroid_distance_mm: float
    surface_distance_mm: float
    contact: bool
    a_within_b: bool
    b_within_a: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "centroid_distance_mm": round(self.centroid_distance_mm, 3),
            "surface_distance_mm": round(self.surface_distance_mm, 3), "contact": self.contact,
            "a_within_b": self.a_within_b, "b_within_a": self.b_within_a,
        }


def integer_labels(labels: Volume, where: str) -> np.ndarray:
    """The label map's voxels as an integer array; `DatasetError` for fractional or negative values."""
    array = labels.array
    if np.issubdtype(array.dtype, np.integer):
        if array.dtype.kind == "i" and array.size and int(array.min()) < 0:
            raise DatasetError(f"label map has negative values (min {int(array.min())})", where)
        return array
    rounded = np.rint(array)
    if not np.array_equal(rounded, array):
        raise DatasetError("label map holds non-integer values; expected one integer label per voxel", where)
    if array.size and float(array.min()) < 0:
        raise DatasetError(f"label map has negative values (min {float(array.min()):g})", where)
    return rounded.astype(np.int32)


class LabelMap:
    """One label map and its table; measures each structure once, pairs on request."""

    def __init__(self, labels: Volume, table: LabelTable, where: str = ""):
        self.volume = labels
        self.table = table
        self.where = where or labels.source or "label map"
        self.array = integer_labels(labels, self.where)
        self._footprint = np.abs(labels.direction) @ np.asarray(labels.spacing)  # one voxel's span along x, y, z
        self._voxel_ml = float(np.prod(labels.spacing)) / 1000.0
        self._measures: dict[str, StructureMeasure] | None = None
        self._pairs: dict[tuple[str, str], PairMeasure] = {}
        self._trees: dict[str, object] = {}  # name -> k-d tree of its boundary voxels

    def structures(self) -> dict[str, StructureMeasure]:
        """Every structure of the table present in the map (at least one voxel), in table order."""
        if self._measures is None:
            from scipy import ndimage

            top = max(s.value for s in self.table.structures)
            boxes = ndimage.find_objects(self.array, max_label=top)
            measures = {}
            for structure in self.table.structures:
                box = boxes[structure.value - 1]
                if box is not None:
                    measures[structure.name] = self._measure(structure, box)
            self._measures = measures
        return self._measures

    def structure(self, name: str) -> StructureMeasure | None:
        return self.structures().get(name)

    def _measure(self, structure: Structure, box: tuple[slice, ...]) -> StructureMeasure:
        from scipy import ndimage

        window = tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, self.array.shape))
        mask = self.array[window] == structure.value
        offset = np.array([s.start for s in window])
        per_k = mask.sum(axis=(1, 2), dtype=np.int64)  # projections: the centroid without voxel coordinates
        count = int(per_k.sum())
        per_j, per_i = mask.sum(axis=(0, 2), dtype=np.int64), mask.sum(axis=(0, 1), dtype=np.int64)
        centroid_ijk = np.array([
            float(per_i @ np.arange(len(per_i))), float(per_j @ np.arange(len(per_j))), float(per_k @ np.arange(len(per_k))),
        ]) / count + offset[::-1]
        edge = mask & ~ndimage.binary_erosion(mask)
        boundary_kji = np.argwhere(edge) + offset
        boundary = self.volume.index_to_lps(boundary_kji[:, ::-1].astype(float))
        extent = boundary.max(axis=0) - boundary.min(axis=0) + self._footprint
        shell = ndimage.binary_dilation(mask) & ~mask  # the face neighbours (the window has room for them)
        values, counts = np.unique(self.array[window][shell], return_counts=True)
        return StructureMeasure(
            structure, count, count * self._voxel_ml, self.volume.index_to_lps(centroid_ijk), extent, window, boundary,
            {int(v): int(c) for v, c in zip(values, counts)}, _touches_edge(mask, window, self.array.shape),
        )

    def pair(self, a: str, b: str) -> PairMeasure:
        key = (a, b)
        if key not in self._pairs:
            from scipy.spatial import cKDTree

            ma, mb = self.require(a), self.require(b)
            small, large = sorted((ma, mb), key=lambda m: len(m.boundary))  # the distance is symmetric
            if large.name not in self._trees:
                self._trees[large.name] = cKDTree(large.boundary)
            distance = _min_distance(self._trees[large.name], large.boundary, small.boundary)
            self._pairs[key] = PairMeasure(
                a, b, float(np.linalg.norm(ma.centroid - mb.centroid)), distance,
                mb.structure.value in ma.neighbours, _within(ma, mb), _within(mb, ma),
            )
        return self._pairs[key]

    def require(self, name: str) -> StructureMeasure:
        """`structure(name)`, or DatasetError when the map holds no voxel of it."""
        measure = self.structure(name)
        if measure is None:
            raise DatasetError(f"no voxels of {name!r} in the label map", self.where)
        return measure


def _min_distance(tree, tree_points: np.ndarray, points: np.ndarray, sample: int = 64) -> float:
    """The smallest distance from `points` to `tree`'s points, exactly, querying few points: a
    sample gives an upper bound U, and only points within U of the tree's bounding box can beat it."""
    upper = float(tree.query(points[:: max(1, len(points) // sample)], k=1)[0].min())
    lo, hi = tree_points.min(axis=0), tree_points.max(axis=0)
    gap = np.maximum(0.0, np.maximum(lo - points, points - hi))
    near = points[np.einsum("ij,ij->i", gap, gap) <= upper * upper * (1 + 1e-9)]
    if len(near):
        found = tree.query(near, k=1, distance_upper_bound=upper * (1 + 1e-9) + 1e-9)[0]
        upper = min(upper, float(found.min()))
    return upper


def _within(inner: StructureMeasure, outer: StructureMeasure) -> bool:
    """Every face neighbour of `inner` belongs to `outer`, and `inner` is not on the image's edge."""
    return not inner.on_edge and set(inner.neighbours) == {outer.structure.value}


def _touches_edge(mask: np.ndarray, window: tuple[slice, ...], shape: tuple[int, ...]) -> bool:
    """Whether `mask` (a window of an array of `shape`) has a voxel on the array's outer faces."""
    for axis, (s, n) in enumerate(zip(window, shape)):
        if s.start == 0 and mask.take(0, axis=axis).any():
            return True
        if s.stop == n and mask.take(-1, axis=axis).any():
            return True
    return False


def check_same_grid(volume: Volume, labels: Volume, where: str) -> None:
    """A label map must lie on its CT volume's voxel grid; `DatasetError` with both headers otherwise."""
    problems = []
    if volume.array.shape != labels.array.shape:
        problems.append(f"shape {labels.shape_ijk} vs the volume's {volume.shape_ijk}")
    if not np.allclose(volume.spacing, labels.spacing, rtol=1e-4, atol=1e-5):
        problems.append(f"spacing {labels.spacing} vs {volume.spacing}")
    if not np.allclose(volume.origin, labels.origin, atol=1e-2):
        problems.append(f"origin {labels.origin} vs {volume.origin}")
    if not np.allclose(volume.direction, labels.direction, atol=1e-4):
        problems.append(f"direction {labels.orientation} vs {volume.orientation}")
    if problems:
        raise DatasetError("label map is not on its volume's grid: " + "; ".join(problems), where)
