"""`geometric`: a classical volume-reading expert with no learning and no metadata.

It answers from voxels and the image header alone: HU thresholds, connected components and
morphology find the lungs, kidneys, liver, spleen and the lesions inside them; the direction
cosines and origin put every centroid in patient (LPS) millimetres, so its answers do not
depend on how the file is stored. It is the control that shows a question *can* be answered
from the image: a model that reads the volume should approach it; `blind` shows what priors buy.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ctbench.errors import ModelError, UnsupportedQuestion
from ctbench.model_servers.baselines.geometric_measure import answer_measured, segmented_label_map
from ctbench.model_servers.sdk import InputSpec, Model, QuestionItem
from ctbench.preprocess.volume import Volume

Found = TypeVar("Found")

if TYPE_CHECKING:
    from ctbench.datasets.measure.quantities import LabelMap

# HU bands (inclusive lower, exclusive upper).
BANDS = {"air_like": (-2000, -500), "lesion_like": (-300, 70), "liver": (75, 110), "spleen": (110, 138), "kidney": (138, 250)}


#: The voxel size (mm) the rules need: they find 5 mm nodules on the 4 x 4 x 6.25 mm phantom,
#: so finer volumes are subsampled (every n-th voxel, no averaging) to about this size first.
WORKING_VOXEL_MM = 4.0
#: Smallest structures kept, in mm^3 (so the thresholds mean the same at any voxel size).
MIN_LUNG_MM3 = MIN_KIDNEY_MM3 = 5_000.0
MIN_ORGAN_MM3 = 20_000.0
MIN_LESION_VOXELS = 2  # noise suppression works per voxel


@dataclass
class Region:
    """A segmented structure's geometry in LPS mm (its voxel mask lives only during analysis)."""

    centroid: np.ndarray  # LPS mm
    lo: np.ndarray  # bounding box in LPS mm
    hi: np.ndarray
    volume_mm3: float

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def diameter_mm(self) -> float:
        """Diameter of the sphere of equal volume."""
        return float((6 * self.volume_mm3 / np.pi) ** (1 / 3))


@dataclass
class Findings:
    midline_x: float | None
    lungs: dict[str, Region]
    nodule: Region | None
    nodule_lung: str | None
    nodule_abuts_pleura: bool | None
    kidneys: dict[str, Region]
    cyst: Region | None
    cyst_kidney: str | None
    abdominal_lesion: Region | None
    lesion_organ: str | None
    label_map: LabelMap | None = None  # what it segmented, for measured questions (geometric_measure.py)


class Geometry:
    """Index <-> LPS conversion for one volume (array axes k, j, i)."""

    def __init__(self, volume: Volume):
        self.volume = volume
        self.voxel_mm3 = float(np.prod(volume.spacing))

    def region(self, mask: np.ndarray, offset=(0, 0, 0)) -> Region:
        """`mask` is a window of the volume whose first voxel is at (k, j, i) = `offset`."""
        kji = np.argwhere(mask) + np.asarray(offset)
        lps = self.volume.index_to_lps(kji[:, ::-1].astype(float))
        return Region(lps.mean(axis=0), lps.min(axis=0), lps.max(axis=0), len(kji) * self.voxel_mm3)

    def ball(self, radius_mm: float) -> np.ndarray:
        """Ellipsoidal structuring element of `radius_mm` in array (k, j, i) index space."""
        sk, sj, si = reversed(self.volume.spacing)
        rk, rj, ri = (max(1, round(radius_mm / s)) for s in (sk, sj, si))
        k, j, i = np.ogrid[-rk : rk + 1, -rj : rj + 1, -ri : ri + 1]
        return (k * sk) ** 2 + (j * sj) ** 2 + (i * si) ** 2 <= radius_mm**2

    def min_voxels(self, mm3: float) -> int:
        return max(1, int(np.ceil(mm3 / self.voxel_mm3 - 1e-9)))


def working_resolution(volume: Volume, voxel_mm: float = WORKING_VOXEL_MM) -> Volume:
    """`volume` subsampled to about `voxel_mm` per axis (every n-th voxel: HU values stay exact).

    The first voxel is kept, so the origin and direction are unchanged; spacing grows by n.
    """
    steps = [max(1, int(voxel_mm / s + 1e-6)) for s in reversed(volume.spacing)]  # (k, j, i)
    if steps == [1, 1, 1]:
        return volume
    array = np.ascontiguousarray(volume.array[:: steps[0], :: steps[1], :: steps[2]])
    (si, sj, sk), (nk, nj, ni) = volume.spacing, steps
    spacing = (si * ni, sj * nj, sk * nk)
    return Volume(array, spacing, volume.origin, volume.direction, volume.source)


class _Components:
    """Connected components of a mask, largest first; a component's mask is built on request."""

    def __init__(self, mask: np.ndarray, min_voxels: int = 1):
        from scipy import ndimage

        self.labels, n = ndimage.label(mask)
        sizes = np.bincount(self.labels.ravel())[1:] if n else np.zeros(0, np.int64)
        order = np.argsort(sizes, kind="stable")[::-1]
        self.ids = [int(i) + 1 for i in order if sizes[i] >= min_voxels]
        self.sizes = {label: int(sizes[label - 1]) for label in self.ids}

    def on_border(self) -> set[int]:
        faces = [self.labels.take(end, axis=a) for a in range(3) for end in (0, -1)]
        return {int(v) for face in faces for v in np.unique(face) if v}

    def mask(self, label: int) -> np.ndarray:
        return self.labels == label


def _window(mask: np.ndarray, margin: tuple[int, int, int]) -> tuple[slice, ...]:
    """The bounding box of `mask` grown by `margin` voxels per axis, clipped to the array."""
    nonzero = [np.flatnonzero(mask.any(axis=tuple(b for b in range(3) if b != a))) for a in range(3)]
    return tuple(
        slice(max(0, int(idx[0]) - m), min(n, int(idx[-1]) + m + 1))
        for idx, m, n in zip(nonzero, margin, mask.shape)
    )


def _closed(mask: np.ndarray, structure: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    """Closing then hole filling of `mask`, computed in a window around it (2 radii + 1 of margin,
    so the result is the same as on the whole array) -> (window, closed mask in the window)."""
    from scipy import ndimage

    window = _window(mask, tuple(s + 1 for s in structure.shape))  # shape = 2 * radius + 1 per axis
    closed = ndimage.binary_closing(mask[window], structure=structure, iterations=1)
    return window, ndimage.binary_fill_holes(closed)


def _offset(window: tuple[slice, ...]) -> tuple[int, int, int]:
    return tuple(s.start for s in window)  # type: ignore[return-value]


def analyse(volume: Volume) -> Findings:
    """Find lungs, nodule, kidneys, cyst, liver/spleen and lesion in `volume` (any orientation)."""
    from scipy import ndimage

    volume = working_resolution(volume)
    geo = Geometry(volume)
    hu = volume.array.astype(np.float32, copy=False)

    def band(name: str) -> np.ndarray:
        lo, hi = BANDS[name]
        return (hu >= lo) & (hu < hi)

    tissue = hu > -500
    body = _Components(tissue)
    if not body.ids:
        return Findings(None, {}, None, None, None, {}, None, None, None, None)  # no body: all air
    midline_x = geo.region(body.mask(body.ids[0])).centroid[0]

    # Outside air touches the array border; lungs do not.
    air = _Components(band("air_like"), min_voxels=geo.min_voxels(MIN_LUNG_MM3))
    outside = air.on_border()
    lung_masks = [air.mask(label) for label in air.ids if label not in outside][:2]
    lungs: dict[str, tuple[Region, np.ndarray]] = {}
    for mask in lung_masks:
        region = geo.region(mask)
        lungs["left" if region.centroid[0] > midline_x else "right"] = (region, mask)

    nodule, nodule_lung, abuts = None, None, None
    candidates = []
    for side, (_, lung_mask) in lungs.items():
        window, closed = _closed(lung_mask, geo.ball(14.0))
        inside = closed & ~lung_mask[window] & tissue[window]
        found = _Components(inside, min_voxels=MIN_LESION_VOXELS)
        for label in found.ids:
            candidates.append((found.sizes[label], side, found.mask(label), closed, window))
    nodule_mask = None
    if candidates:
        _, nodule_lung, comp, closed, window = max(candidates, key=lambda c: c[0])
        nodule_mask = (comp, window)
        nodule = geo.region(comp, _offset(window))
        shell = ndimage.binary_dilation(comp, structure=geo.ball(1.5 * max(volume.spacing))) & ~comp
        abuts = bool((shell & ~closed).any())  # the window's margin exceeds this shell

    kidney_found = _Components(band("kidney"), min_voxels=geo.min_voxels(MIN_KIDNEY_MM3))
    kidneys: dict[str, tuple[Region, np.ndarray]] = {}
    for label in kidney_found.ids[:2]:
        mask = kidney_found.mask(label)
        region = geo.region(mask)
        kidneys["left" if region.centroid[0] > midline_x else "right"] = (region, mask)
    cyst, cyst_kidney, cyst_mask = _enclosed_lesion(kidneys, hu, geo)

    organs: dict[str, tuple[Region, np.ndarray]] = {}
    for organ in ("liver", "spleen"):
        found = _Components(band(organ), min_voxels=geo.min_voxels(MIN_ORGAN_MM3))
        if found.ids:
            mask = found.mask(found.ids[0])
            organs[organ] = (geo.region(mask), mask)
    lesion, lesion_organ, lesion_mask = _enclosed_lesion(organs, hu, geo)
    label_map = segmented_label_map(
        volume, {f"{side} lung": m for side, (_, m) in lungs.items()},
        {**{f"{side} kidney": m for side, (_, m) in kidneys.items()}, **{o: m for o, (_, m) in organs.items()}},
        {"pulmonary nodule": nodule_mask, "renal cyst": cyst_mask, "hypodense abdominal lesion": lesion_mask},
    )
    return Findings(
        midline_x, {side: r for side, (r, _) in lungs.items()}, nodule, nodule_lung, abuts,
        {side: r for side, (r, _) in kidneys.items()}, cyst, cyst_kidney, lesion, lesion_organ, label_map,
    )


def _enclosed_lesion(
    organs: dict[str, tuple[Region, np.ndarray]], hu: np.ndarray, geo: Geometry
) -> tuple[Region | None, str | None, tuple[np.ndarray, tuple[slice, ...]] | None]:
    """The largest hypodense component enclosed by one of `organs`, which organ holds it, and its
    mask (in its window)."""
    best = None
    lo, hi = BANDS["lesion_like"]
    for name, (_, mask) in organs.items():
        window, filled = _closed(mask, geo.ball(6.0))
        holes = filled & ~mask[window] & (hu[window] >= lo) & (hu[window] < hi)
        found = _Components(holes, min_voxels=MIN_LESION_VOXELS)
        for label in found.ids[:1]:
            if best is None or found.sizes[label] > best[0]:
                best = (found.sizes[label], name, found.mask(label), window)
    if best is None:
        return None, None, None
    return geo.region(best[2], _offset(best[3])), best[1], (best[2], best[3])


def _need(value: Found | None, what: str) -> Found:
    if value is None:
        raise UnsupportedQuestion(f"could not find {what} in the volume")
    return value


def _nodule_and_lung(f: Findings) -> tuple[Region, Region]:
    lung = f.lungs[_need(f.nodule_lung, "a pulmonary nodule")]
    return _need(f.nodule, "a pulmonary nodule"), lung


def _nodule_level(f: Findings) -> str:
    nodule, lung = _nodule_and_lung(f)
    return "upper" if nodule.centroid[2] > lung.center[2] else "lower"


def _cyst_pole(f: Findings) -> str:
    kidney = f.kidneys[_need(f.cyst_kidney, "a renal cyst")]
    return "upper pole" if _need(f.cyst, "a renal cyst").centroid[2] > kidney.center[2] else "lower pole"


def _nodule_depth(f: Findings) -> str:
    nodule, lung = _nodule_and_lung(f)
    return "posterior" if nodule.centroid[1] > lung.center[1] else "anterior"


def _nodule_centricity(f: Findings) -> str:
    nodule, lung = _nodule_and_lung(f)
    return "lateral" if abs(nodule.centroid[0] - f.midline_x) > abs(lung.center[0] - f.midline_x) else "medial"


def _lesion_large(f: Findings) -> str:
    return "yes" if _need(f.abdominal_lesion, "an abdominal lesion").diameter_mm > 30.0 else "no"


def _larger(f: Findings) -> str:
    nodule = _need(f.nodule, "a pulmonary nodule")
    cyst = _need(f.cyst, "a renal cyst")
    return "the pulmonary nodule" if nodule.volume_mm3 > cyst.volume_mm3 else "the renal cyst"


#: (words the question must all contain, the rule that answers it from the findings), in order.
RULES: list[tuple[tuple[str, ...], Callable[[Findings], str]]] = [
    (("pulmonary nodule", "lung contains"), lambda f: _need(f.nodule_lung, "a pulmonary nodule")),
    (("kidney contains",), lambda f: _need(f.cyst_kidney, "a renal cyst")),
    (("pulmonary nodule", "upper or the lower half"), _nodule_level),
    (("renal cyst", "pole"), _cyst_pole),
    (("anterior or the posterior",), _nodule_depth),
    (("medial or the lateral",), _nodule_centricity),
    (("abut the pleura",), lambda f: "yes" if _need(f.nodule_abuts_pleura, "a pulmonary nodule") else "no"),
    (("which organ contains",), lambda f: _need(f.lesion_organ, "an abdominal lesion")),
    (("greatest diameter",), _lesion_large),
    (("which is larger",), _larger),
]


def rule_for(text: str) -> Callable[[Findings], str]:
    """The rule that answers `text`, decided from the words alone; `UnsupportedQuestion` if none."""
    t = text.lower()
    for words, rule in RULES:
        if all(w in t for w in words):
            return rule
    raise UnsupportedQuestion(f"geometric does not know how to answer {text!r}")


def answer_question(text: str, f: Findings) -> str:
    measured = answer_measured(text)
    return measured(f.label_map) if measured is not None else rule_for(text)(f)


class LazyFindings:
    """A volume's findings, analysed on the first question a rule can answer (never for a volume
    whose questions are all open ones). The volume is released once analysed."""

    def __init__(self, volume: Volume):
        self._volume: Volume | None = volume
        self._findings: Findings | None = None
        self._lock = threading.Lock()

    def get(self) -> Findings:
        with self._lock:
            if self._findings is None:
                assert self._volume is not None  # released only after the analysis
                self._findings = analyse(self._volume)
                self._volume = None
            return self._findings

    def stored_array(self) -> np.ndarray:
        """The volume's voxels, until the analysis releases them."""
        volume = self._volume
        if volume is None:
            raise ModelError("the volume was released once analysed")
        return volume.array


class GeometricExpert(Model):
    version = "1"
    description = "Classical expert: HU thresholds, connected components, header geometry (LPS); no learning."
    license = "Apache-2.0"
    max_batch_size = 32

    def input_spec(self) -> InputSpec:
        return InputSpec(
            name="geometric", variant="authors", kind="volume3d", orientation="",
            axis_order="DHW", intensity="raw HU thresholds",
            notes="Works in the stored orientation; every position is mapped to LPS mm through the header.",
        )

    def preprocess(self, volume: Volume) -> LazyFindings:
        return LazyFindings(volume)  # nothing analysed until a question needs it

    def model_input(self, prepared: LazyFindings):
        """The stored voxels (HU, [k, j, i]) the rules read, as InspectInput shows them."""
        return prepared.stored_array()

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        results: list[str | Exception] = []
        for item in batch:
            try:
                measured = answer_measured(item.text)  # a measured question: decided from its words
                if measured is not None:
                    results.append(measured(item.prepared.get().label_map))
                    continue
                rule = rule_for(item.text)  # decided before any voxel is looked at
                results.append(rule(item.prepared.get()))
            except UnsupportedQuestion as exc:
                results.append(exc)
        return results
