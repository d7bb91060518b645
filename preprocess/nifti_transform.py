"""Which of a NIfTI header's transforms places the voxels in the patient, and whether the two agree.

A NIfTI header can carry two voxel-to-world transforms, each with a code saying what it means
(0 unknown, 1 scanner, 2 aligned, 3 Talairach, 4 MNI, 5 template): the *qform* (a rotation as a
quaternion, pixdim and an offset) and the *sform* (a general affine, three rows). ctbench
chooses as the NIfTI standard (nifti1.h) and nibabel's ``get_best_affine`` do:

1. the sform when ``sform_code > 0``;
2. else the qform when ``qform_code > 0``;
3. else the base transform of pixdim alone (nifti1.h "method 1", the ANALYZE 7.5 way), read as
   nibabel's ``get_base_affine`` reads it: ANALYZE's radiological convention, i towards the
   patient's left, j anterior, k superior (RAS ``diag(-pixdim[1], pixdim[2], pixdim[3])``), the
   volume centred on the origin. Such a file says nothing reliable about the patient's sides;
   it is recorded as ``base``. (SimpleITK 2.5 agrees on i, but points j posterior.)

SimpleITK 2.5 does not follow this rule for every code pair (it takes the qform for sform code 2,
3 or 4 with qform code 1 or 2), so ctbench never asks SimpleITK for a NIfTI file's geometry.

When both codes are > 0 and the transforms *disagree* the file is ambiguous: some loaders mirror
the patient. They disagree when a direction cosine differs by more than `DIRECTION_TOLERANCE`
(0.01, about half a degree), a voxel size by more than `SPACING_TOLERANCE` (1 %), or the origin
by more than `ORIGIN_TOLERANCE_MM` (1 mm). Such a file still loads with the sform; the
disagreement is recorded in `HeaderGeometry.conflict` (and `ConflictingHeaders` refuses it where
the caller asks for that).

Geometry is returned in ITK's LPS convention (see `volume.py`): NIfTI's world is RAS, so the
first two rows of each transform change sign.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ctbench.errors import InvalidVolume
from ctbench.preprocess.nifti_header import NiftiHeader
from ctbench.preprocess.volume_errors import ConflictingHeaders, InvalidSpacing

__all__ = [
    "CONFLICT_POLICIES", "DIRECTION_TOLERANCE", "ORIGIN_TOLERANCE_MM", "SPACING_TOLERANCE", "XFORM_CODES",
    "HeaderGeometry", "header_geometry", "qform_affine", "sform_affine",
]

XFORM_CODES = {0: "unknown", 1: "scanner", 2: "aligned", 3: "talairach", 4: "mni", 5: "template"}
DIRECTION_TOLERANCE = 0.01
SPACING_TOLERANCE = 0.01
ORIGIN_TOLERANCE_MM = 1.0
CONFLICT_POLICIES = ("warn", "refuse")
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class HeaderGeometry:
    """The transform a NIfTI file's voxels were placed with, and what the other one said.

    `spacing` / `origin` / `direction` are ITK's (i, j, k) spacing, LPS origin and LPS direction
    columns of the chosen transform. `sform` / `qform` are the header's 4x4 RAS affines (None when
    that code is 0). `conflict` says how the two disagree ("" when they agree or one is unset).
    """

    source: str  # "sform" | "qform" | "base"
    sform_code: int
    qform_code: int
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    sform: np.ndarray | None = None
    qform: np.ndarray | None = None
    conflict: str = ""

    def describe(self) -> str:
        """One line: which transform, with both codes named."""
        return (f"{self.source} (sform_code {self.sform_code} {XFORM_CODES.get(self.sform_code, '?')}, "
                f"qform_code {self.qform_code} {XFORM_CODES.get(self.qform_code, '?')})")

    def to_json(self) -> dict:
        def matrix(m):
            return None if m is None else [[round(float(v), 6) for v in row] for row in m]

        return {
            "transform": self.source, "sform_code": self.sform_code, "qform_code": self.qform_code,
            "conflict": self.conflict, "sform_ras": matrix(self.sform), "qform_ras": matrix(self.qform),
        }

    def refuse_if_conflicted(self, where: str) -> None:
        """Raise `ConflictingHeaders` naming the file and both transforms when they disagree."""
        if self.conflict:
            raise ConflictingHeaders(
                f"{where}: the NIfTI sform (code {self.sform_code}) and qform (code {self.qform_code}) disagree "
                f"({self.conflict}); sform {_rows(self.sform)}, qform {_rows(self.qform)}. Loaders differ on "
                "such files (the standard takes the sform); fix the header or accept it with --conflicted-headers warn",
                self,
            )


def sform_affine(header: NiftiHeader) -> np.ndarray:
    """The header's sform as a 4x4 RAS affine (whatever its code)."""
    return np.vstack([np.asarray(header.srow, dtype=float), [0.0, 0.0, 0.0, 1.0]])


def qform_affine(header: NiftiHeader) -> np.ndarray:
    """The header's qform as a 4x4 RAS affine (whatever its code), as nifti1.h defines it."""
    b, c, d = header.quatern
    a = math.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d)))
    rotation = np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - b * b - c * c],
    ])
    pixdim = list(header.pixdim[:3]) + [1.0] * (3 - len(header.pixdim[:3]))
    affine = np.eye(4)
    affine[:3, :3] = rotation * np.array([pixdim[0], pixdim[1], pixdim[2] * header.qfac])
    affine[:3, 3] = header.qoffset
    return affine


def base_affine(header: NiftiHeader) -> np.ndarray:
    """The pixdim-only transform as nibabel's ``get_base_affine``: RAS ``diag(-dx, dy, dz)``, centred."""
    pixdim = np.array(list(header.pixdim[:3]) + [1.0] * (3 - len(header.pixdim[:3])), dtype=float)
    shape = np.array(list(header.dims[:3]) + [1] * (3 - len(header.dims[:3])), dtype=float)
    signs = np.array([-1.0, 1.0, 1.0])
    affine = np.diag(list(signs * pixdim) + [1.0])
    affine[:3, 3] = -signs * pixdim * (shape - 1) / 2
    return affine


def header_geometry(header: NiftiHeader, where: str = "volume") -> HeaderGeometry:
    """The standard's choice of transform for `header`, in ITK's LPS terms, with any disagreement.

    `InvalidVolume` (naming `where`) when the chosen transform holds non-finite values or
    collapses an axis (a zero column)."""
    sform = sform_affine(header) if header.sform_code > 0 else None
    qform = qform_affine(header) if header.qform_code > 0 else None
    if sform is not None:
        source, chosen = "sform", sform
    elif qform is not None:
        source, chosen = "qform", qform
    else:
        source, chosen = "base", base_affine(header)
    if not np.all(np.isfinite(chosen)):
        raise InvalidVolume(f"{where}: the NIfTI {source} holds non-finite values: {_rows(chosen)}")
    spacing, origin, direction = _itk_geometry(chosen)
    if min(spacing) <= 0:
        raise InvalidSpacing(f"{where}: the NIfTI {source} gives voxel sizes {_fmt(spacing)}: an axis has no extent")
    conflict = ""
    if sform is not None and qform is not None:
        conflict = _disagreement(sform, qform) if np.all(np.isfinite(qform)) else "the qform holds non-finite values"
    return HeaderGeometry(source, header.sform_code, header.qform_code, spacing, origin, direction, sform, qform, conflict)


def _itk_geometry(affine_ras: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float], np.ndarray]:
    lps = _RAS_TO_LPS @ affine_ras
    columns = lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    safe = np.where(spacing > 0, spacing, 1.0)
    (si, sj, sk), (oi, oj, ok) = spacing, lps[:3, 3]
    return (float(si), float(sj), float(sk)), (float(oi), float(oj), float(ok)), columns / safe


def _disagreement(sform: np.ndarray, qform: np.ndarray) -> str:
    """"" when the two transforms agree within the tolerances, else what differs, in words."""
    s_spacing, s_origin, s_direction = _itk_geometry(sform)
    q_spacing, q_origin, q_direction = _itk_geometry(qform)
    problems = []
    flipped = [axis for axis in range(3) if float(s_direction[:, axis] @ q_direction[:, axis]) < 0]
    turned = float(np.max(np.abs(s_direction - q_direction)))
    if flipped:
        problems.append("axis " + ", ".join("ijk"[a] for a in flipped) + " points the opposite way")
    elif turned > DIRECTION_TOLERANCE:
        problems.append(f"directions differ by up to {turned:.3f} (cosine)")
    ratio = max(abs(s - q) / max(s, q, 1e-12) for s, q in zip(s_spacing, q_spacing))
    if ratio > SPACING_TOLERANCE:
        problems.append(f"voxel sizes {_fmt(s_spacing)} vs {_fmt(q_spacing)} mm")
    shift = float(np.linalg.norm(np.subtract(s_origin, q_origin)))
    if shift > ORIGIN_TOLERANCE_MM:
        problems.append(f"origins {shift:.1f} mm apart")
    return "; ".join(problems)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _rows(affine: np.ndarray | None) -> str:
    if affine is None:
        return "unset"
    return "[" + "; ".join(" ".join(f"{v:g}" for v in np.round(row, 4)) for row in affine[:3]) + "]"
