"""A deterministic CT-like torso with lesions of controlled side, level, depth and size.

Everything is specified in LPS patient millimetres (+x towards the patient's left, +y towards
posterior, +z towards superior) and rasterised onto a canonical grid whose index axes (i, j, k)
point L, P, S. Storage orientation is applied afterwards (generate.py), so the anatomy and its
ground truth never depend on how the file is laid out on disk.

HU values are textbook-plausible and chosen so organs are separable by intensity: air -1000,
lung -850, fat -100, soft tissue 40, liver 95 and spleen 125 (portal venous phase), kidney 150
(nephrographic phase), bone 700; cysts 10, solid lung nodules 40.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HU = {
    "air": -1000, "lung": -850, "fat": -100, "soft": 40, "liver": 95, "spleen": 125,
    "kidney": 150, "bone": 700, "cyst": 10, "nodule": 40,
}

# Organs as ellipsoids: centre (x, y, z) and semi-axes in mm, LPS.
LUNG = {"left": ((78.0, 5.0, 95.0), (58.0, 70.0, 95.0)), "right": ((-78.0, 5.0, 95.0), (58.0, 70.0, 95.0))}
LIVER = ((-70.0, -5.0, -45.0), (68.0, 72.0, 48.0))
SPLEEN = ((85.0, 35.0, -45.0), (35.0, 40.0, 45.0))
KIDNEY = {"left": ((65.0, 55.0, -135.0), (28.0, 30.0, 45.0)), "right": ((-65.0, 55.0, -135.0), (28.0, 30.0, 45.0))}
BODY = ((165.0, 115.0), (150.0, 100.0))  # outer (fat) and inner (soft tissue) semi-axes x, y
SPINE = ((0.0, 80.0), 16.0)

#: The phantom's label maps: value -> (name as questions say it, laterality, kind). Painted in the
#: same order as the intensities, so a lesion's voxels carry the lesion's label, not its organ's.
LABELS = (
    (1, "left lung", "left", "organ"), (2, "right lung", "right", "organ"), (3, "liver", "right", "organ"),
    (4, "spleen", "left", "organ"), (5, "left kidney", "left", "organ"), (6, "right kidney", "right", "organ"),
    (7, "pulmonary nodule", "", "lesion"), (8, "renal cyst", "", "lesion"), (9, "hypodense abdominal lesion", "", "lesion"),
)
LESION_LABELS = {"nodule": 7, "cyst": 8, "abdominal_lesion": 9}


@dataclass(frozen=True)
class Sphere:
    name: str
    center: tuple[float, float, float]
    radius: float
    hu: int


@dataclass(frozen=True)
class Grid:
    """Canonical LPS grid: array[k, j, i], i->L, j->P, k->S."""

    shape_ijk: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def origin(self) -> tuple[float, float, float]:
        (ni, nj, nk), (si, sj, sk) = self.shape_ijk, self.spacing
        return -(ni - 1) * si / 2.0, -(nj - 1) * sj / 2.0, -(nk - 1) * sk / 2.0

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Physical coordinates (mm) along i, j, k."""
        (oi, oj, ok), (ni, nj, nk), (si, sj, sk) = self.origin, self.shape_ijk, self.spacing
        return oi + np.arange(ni) * si, oj + np.arange(nj) * sj, ok + np.arange(nk) * sk


@dataclass
class Anatomy:
    grid: Grid
    lesions: list[Sphere] = field(default_factory=list)

    def render(self, noise_hu: float, rng: np.random.Generator) -> np.ndarray:
        x, y, z = self.grid.axes()
        shape = tuple(reversed(self.grid.shape_ijk))
        vol = np.full(shape, HU["air"], dtype=np.float32)
        X, Y = np.meshgrid(x, y, indexing="xy")  # (j, i)
        (fat_a, fat_b), (soft_a, soft_b) = BODY
        body_slice = np.where((X / fat_a) ** 2 + (Y / fat_b) ** 2 <= 1, HU["fat"], HU["air"])
        body_slice = np.where((X / soft_a) ** 2 + (Y / soft_b) ** 2 <= 1, HU["soft"], body_slice)
        (sx, sy), sr = SPINE
        body_slice = np.where((X - sx) ** 2 + (Y - sy) ** 2 <= sr**2, HU["bone"], body_slice)
        vol[:] = body_slice  # the torso runs through the whole field of view, as in a chest CT
        for center, radii in LUNG.values():
            _paint(vol, x, y, z, center, radii, HU["lung"])
        _paint(vol, x, y, z, *LIVER, HU["liver"])
        _paint(vol, x, y, z, *SPLEEN, HU["spleen"])
        for center, radii in KIDNEY.values():
            _paint(vol, x, y, z, center, radii, HU["kidney"])
        for lesion in self.lesions:
            _paint(vol, x, y, z, lesion.center, (lesion.radius,) * 3, lesion.hu)
        if noise_hu > 0:
            body = vol > -990
            vol[body] += rng.normal(0.0, noise_hu, size=int(body.sum())).astype(np.float32)
        return np.clip(np.rint(vol), -1024, 3071).astype(np.int16)

    def labels(self) -> np.ndarray:
        """The label map (uint8, values of `LABELS`, 0 elsewhere) on the same grid as `render`."""
        x, y, z = self.grid.axes()
        labels = np.zeros(tuple(reversed(self.grid.shape_ijk)), dtype=np.uint8)
        for value, (center, radii) in ((1, LUNG["left"]), (2, LUNG["right"]), (3, LIVER), (4, SPLEEN),
                                       (5, KIDNEY["left"]), (6, KIDNEY["right"])):
            _paint(labels, x, y, z, center, radii, value)
        for lesion in self.lesions:
            _paint(labels, x, y, z, lesion.center, (lesion.radius,) * 3, LESION_LABELS[lesion.name])
        return labels


def _paint(vol, x, y, z, center, radii, value) -> None:
    """Set voxels inside an ellipsoid to `value`, touching only its bounding box."""
    idx = []
    for axis, c, r in zip((x, y, z), center, radii):
        lo, hi = np.searchsorted(axis, c - r), np.searchsorted(axis, c + r, side="right")
        idx.append(slice(lo, hi))
    xs, ys, zs = x[idx[0]], y[idx[1]], z[idx[2]]
    if not (len(xs) and len(ys) and len(zs)):
        return
    d = (
        ((zs[:, None, None] - center[2]) / radii[2]) ** 2
        + ((ys[None, :, None] - center[1]) / radii[1]) ** 2
        + ((xs[None, None, :] - center[0]) / radii[0]) ** 2
    )
    block = vol[idx[2], idx[1], idx[0]]
    block[d <= 1.0] = value


def lung_nodule_center(side: str, lateral: bool, anterior: bool, upper: bool, abutting: bool, radius: float) -> tuple[float, float, float]:
    """Nodule centre inside a lung. Halves are unambiguous: the centre sits >= 0.35 semi-axes off
    the lung's centre on every axis. Abutting nodules touch the pleura from inside; the others
    keep >= 12 mm of lung around them."""
    (cx, cy, cz), (ax, ay, az) = LUNG[side]
    outward = 1.0 if side == "left" else -1.0  # lateral = away from the midline
    signs = np.array([outward if lateral else -outward, -1.0 if anterior else 1.0, 1.0 if upper else -1.0])
    radii = np.array([ax, ay, az])
    center = np.array([cx, cy, cz])
    direction = signs * 0.36  # normalised ellipsoid coordinates
    if not abutting:
        return tuple(center + direction * radii)
    # Walk outwards until the sphere touches the surface (normalised distance of the sphere's
    # outermost point along the surface normal reaches 1).
    unit = direction / np.linalg.norm(direction)
    for t in np.linspace(0.6, 1.0, 400):
        p = unit * t * radii  # offset in mm
        normal = p / radii**2
        normal /= np.linalg.norm(normal)
        outer = p + normal * radius
        if np.sum((outer / radii) ** 2) >= 1.0:
            return tuple(center + p)
    raise AssertionError("nodule does not fit its lung")  # pragma: no cover - geometry is fixed
