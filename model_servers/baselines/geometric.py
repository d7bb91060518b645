"""`geometric`: a classical volume-reading expert with no learning and no metadata.

It answers from voxels and the image header alone: HU thresholds, connected components and
morphology find the lungs, kidneys, liver, spleen and the lesions inside them; the direction
cosines and origin put every centroid in patient (LPS) millimetres, so its answers do not
depend on how the file is stored. It is the control that shows a question *can* be answered
from the image: a model that reads the volume should approach it; `blind` shows what priors buy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctbench.errors import UnsupportedQuestion
from ctbench.model_servers.registry import MODELS
from ctbench.model_servers.sdk import Model, QuestionItem
from ctbench.preprocess.volume import Volume

# HU bands (inclusive lower, exclusive upper).
BANDS = {"air_like": (-2000, -500), "lesion_like": (-300, 70), "liver": (75, 110), "spleen": (110, 138), "kidney": (138, 250)}


@dataclass
class Region:
    """A segmented structure: its voxel mask and geometry in LPS mm."""

    mask: np.ndarray
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
    midline_x: float
    lungs: dict[str, Region]
    nodule: Region | None
    nodule_lung: str | None
    nodule_abuts_pleura: bool | None
    kidneys: dict[str, Region]
    cyst: Region | None
    cyst_kidney: str | None
    abdominal_lesion: Region | None
    lesion_organ: str | None


class Geometry:
    """Index <-> LPS conversion for one volume (array axes k, j, i)."""

    def __init__(self, volume: Volume):
        self.volume = volume
        self.voxel_mm3 = float(np.prod(volume.spacing))

    def region(self, mask: np.ndarray) -> Region:
        kji = np.argwhere(mask)
        lps = self.volume.index_to_lps(kji[:, ::-1].astype(float))
        return Region(mask, lps.mean(axis=0), lps.min(axis=0), lps.max(axis=0), len(kji) * self.voxel_mm3)

    def ball(self, radius_mm: float) -> np.ndarray:
        """Ellipsoidal structuring element of `radius_mm` in array (k, j, i) index space."""
        sk, sj, si = reversed(self.volume.spacing)
        rk, rj, ri = (max(1, int(round(radius_mm / s))) for s in (sk, sj, si))
        k, j, i = np.ogrid[-rk : rk + 1, -rj : rj + 1, -ri : ri + 1]
        return (k * sk) ** 2 + (j * sj) ** 2 + (i * si) ** 2 <= radius_mm**2


def _components(mask: np.ndarray, min_voxels: int = 1) -> list[np.ndarray]:
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    return [labels == (index + 1) for index in order if sizes[index] >= min_voxels]


def _touches_border(mask: np.ndarray) -> bool:
    return any(mask.take(0, axis=a).any() or mask.take(-1, axis=a).any() for a in range(3))


def analyse(volume: Volume) -> Findings:
    from scipy import ndimage

    geo = Geometry(volume)
    hu = volume.array.astype(np.float32, copy=False)

    def band(name: str) -> np.ndarray:
        lo, hi = BANDS[name]
        return (hu >= lo) & (hu < hi)

    # Outside air touches the array border; lungs do not.
    air = [c for c in _components(band("air_like"), min_voxels=50) if not _touches_border(c)]
    lung_regions = [geo.region(c) for c in air[:2]]
    tissue = hu > -500
    body_mask = _components(tissue)[0]
    midline_x = geo.region(body_mask).centroid[0]
    lungs = {("left" if r.centroid[0] > midline_x else "right"): r for r in lung_regions}

    nodule, nodule_lung, abuts = None, None, None
    candidates = []
    for side, lung in lungs.items():
        closed = ndimage.binary_closing(lung.mask, structure=geo.ball(14.0), iterations=1)
        closed = ndimage.binary_fill_holes(closed)
        inside = closed & ~lung.mask & tissue
        for comp in _components(inside, min_voxels=2):
            candidates.append((comp.sum(), side, comp, closed))
    if candidates:
        _, nodule_lung, comp, closed = max(candidates, key=lambda c: c[0])
        nodule = geo.region(comp)
        shell = ndimage.binary_dilation(comp, structure=geo.ball(1.5 * max(volume.spacing))) & ~comp
        abuts = bool((shell & ~closed).any())

    kidney_regions = [geo.region(c) for c in _components(band("kidney"), min_voxels=50)[:2]]
    kidneys = {("left" if r.centroid[0] > midline_x else "right"): r for r in kidney_regions}
    cyst, cyst_kidney = _enclosed_lesion(kidneys, hu, geo)

    organs = {}
    for organ in ("liver", "spleen"):
        comps = _components(band(organ), min_voxels=200)
        if comps:
            organs[organ] = geo.region(comps[0])
    lesion, lesion_organ = _enclosed_lesion(organs, hu, geo)
    return Findings(midline_x, lungs, nodule, nodule_lung, abuts, kidneys, cyst, cyst_kidney, lesion, lesion_organ)


def _enclosed_lesion(organs: dict[str, Region], hu: np.ndarray, geo: Geometry) -> tuple[Region | None, str | None]:
    """The largest hypodense component enclosed by one of `organs`, and which organ holds it."""
    from scipy import ndimage

    best = None
    for name, organ in organs.items():
        filled = ndimage.binary_fill_holes(ndimage.binary_closing(organ.mask, structure=geo.ball(6.0)))
        holes = filled & ~organ.mask & (hu >= BANDS["lesion_like"][0]) & (hu < BANDS["lesion_like"][1])
        for comp in _components(holes, min_voxels=2)[:1]:
            if best is None or comp.sum() > best[0]:
                best = (comp.sum(), name, comp)
    if best is None:
        return None, None
    return geo.region(best[2]), best[1]


def answer_question(text: str, f: Findings) -> str:
    t = text.lower()

    def need(value, what: str):
        if value is None:
            raise UnsupportedQuestion(f"could not find {what} in the volume")
        return value

    if "pulmonary nodule" in t and "lung contains" in t:
        return need(f.nodule_lung, "a pulmonary nodule")
    if "kidney contains" in t:
        return need(f.cyst_kidney, "a renal cyst")
    if "pulmonary nodule" in t and "upper or the lower half" in t:
        lung = f.lungs[need(f.nodule_lung, "a pulmonary nodule")]
        return "upper" if f.nodule.centroid[2] > lung.center[2] else "lower"
    if "renal cyst" in t and "pole" in t:
        kidney = f.kidneys[need(f.cyst_kidney, "a renal cyst")]
        return "upper pole" if f.cyst.centroid[2] > kidney.center[2] else "lower pole"
    if "anterior or the posterior" in t:
        lung = f.lungs[need(f.nodule_lung, "a pulmonary nodule")]
        return "posterior" if f.nodule.centroid[1] > lung.center[1] else "anterior"
    if "medial or the lateral" in t:
        lung = f.lungs[need(f.nodule_lung, "a pulmonary nodule")]
        return "lateral" if abs(f.nodule.centroid[0] - f.midline_x) > abs(lung.center[0] - f.midline_x) else "medial"
    if "abut the pleura" in t:
        return "yes" if need(f.nodule_abuts_pleura, "a pulmonary nodule") else "no"
    if "which organ contains" in t:
        return need(f.lesion_organ, "an abdominal lesion")
    if "greatest diameter" in t:
        need(f.abdominal_lesion, "an abdominal lesion")
        return "yes" if f.abdominal_lesion.diameter_mm > 30.0 else "no"
    if "which is larger" in t:
        need(f.nodule, "a pulmonary nodule")
        need(f.cyst, "a renal cyst")
        return "the pulmonary nodule" if f.nodule.volume_mm3 > f.cyst.volume_mm3 else "the renal cyst"
    raise UnsupportedQuestion(f"geometric does not know how to answer {text!r}")


@MODELS.register("geometric")
class GeometricExpert(Model):
    name = "geometric"
    version = "1"
    description = "Classical expert: HU thresholds, connected components, header geometry (LPS); no learning."
    license = "Apache-2.0"
    max_batch_size = 32

    def input_spec(self) -> dict:
        return {
            "name": "geometric", "variant": "authors", "kind": "volume3d", "orientation": "",
            "axis_order": "DHW", "intensity": "raw HU thresholds",
            "notes": "Works in the stored orientation; every position is mapped to LPS mm through the header.",
        }

    def preprocess(self, volume: Volume) -> Findings:
        return analyse(volume)

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        results: list[str | Exception] = []
        for item in batch:
            try:
                results.append(answer_question(item.text, item.prepared))
            except UnsupportedQuestion as exc:
                results.append(exc)
        return results
