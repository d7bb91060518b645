"""CT-RATE's metadata CSV, and the check-and-correct pass every downloaded volume goes through.

CT-RATE publishes, per volume, the DICOM rescale slope/intercept and the voxel spacing. The
``*_fixed`` volumes normally carry both already; `validate_and_correct` applies the metadata only
where a header evidently lacks it, and says what it did.
"""
from __future__ import annotations

import ast
import csv
import os
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import CtbenchError, InvalidVolume


class MetadataError(CtbenchError):
    code = "INVALID_ARGUMENT"


@dataclass(frozen=True)
class VolumeMetadata:
    """The parts of a CT-RATE metadata CSV row that decide whether a header needs correcting."""

    slope: float = 1.0
    intercept: float = 0.0
    spacing: tuple[float, float, float] | None = None  # (x, y, z) mm


def read_metadata_csv(path: str | Path) -> dict[str, VolumeMetadata]:
    """CT-RATE's metadata CSV -> volume name -> `VolumeMetadata` (columns VolumeName,
    RescaleSlope, RescaleIntercept, XYSpacing like "[0.75, 0.75]", ZSpacing)."""
    rows: dict[str, VolumeMetadata] = {}
    with Path(path).open(newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            name = (row.get("VolumeName") or "").strip()
            if not name:
                continue
            try:
                spacing = None
                if row.get("XYSpacing") and row.get("ZSpacing"):
                    xy = ast.literal_eval(row["XYSpacing"].strip())
                    spacing = (float(xy[0]), float(xy[1]), float(row["ZSpacing"]))
                rows[name] = VolumeMetadata(
                    slope=float(row.get("RescaleSlope") or 1.0),
                    intercept=float(row.get("RescaleIntercept") or 0.0),
                    spacing=spacing,
                )
            except (ValueError, SyntaxError, TypeError, IndexError) as exc:
                raise MetadataError(f"{path}:{line_no}: unreadable metadata row for {name} ({exc})") from None
    return rows


def validate_and_correct(path: Path, meta: VolumeMetadata | None) -> dict:
    """Open the volume (header and voxels) and apply CT-RATE metadata where the header needs it.

    * spacing: applied when the header's spacing is the NIfTI default (1, 1, 1) and the metadata
      says otherwise;
    * rescale: applied when the stored voxels are unsigned raw detector values (minimum >= 0)
      and the metadata has a non-identity slope/intercept (CT-RATE's HU have air near -1000).
    Returns what was found and done.
    """
    import numpy as np

    from ctbench.preprocess.volume import Volume, load_volume, save_volume

    try:
        volume = load_volume(path)
    except InvalidVolume as exc:
        raise InvalidVolume(f"{exc}; it is not recorded as done, so the next run fetches it again") from None
    corrections: list[str] = []
    info = {
        "shape_ijk": list(volume.shape_ijk),
        "spacing": list(volume.spacing),
        "orientation": volume.orientation,
        "corrections": corrections,
    }
    if meta is None:
        return info
    array, spacing = volume.array, volume.spacing
    if meta.spacing and np.allclose(spacing, 1.0) and not np.allclose(meta.spacing, 1.0):
        spacing = meta.spacing
        corrections.append(f"spacing {list(volume.spacing)} -> {list(meta.spacing)} from metadata")
    if (meta.slope, meta.intercept) != (1.0, 0.0) and float(array.min()) >= 0:
        array = array.astype(np.float32) * meta.slope + meta.intercept
        corrections.append(f"rescale slope {meta.slope} intercept {meta.intercept} from metadata")
    if corrections:
        fixed = Volume(array, spacing, volume.origin, volume.direction, source=str(path))
        tmp = path.with_name(path.name.replace(".nii", ".fixing.nii"))
        save_volume(fixed, tmp)
        os.replace(tmp, path)
        info["spacing"] = list(spacing)
    return info
