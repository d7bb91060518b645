"""The `shuffle` control's assignment: each volume's questions go to another patient's volume.

Volumes are grouped by size class (voxel count within a factor of two), so a model cannot tell
from the size alone that the volume is not the one asked about; a class with fewer than two
patients joins its nearest class. Within a class the volumes are put in a seeded random order
and each gets the volume k places further on, for the smallest k that gives every volume
another patient's: a permutation, so every volume is shown as often as on the real run.
"""
from __future__ import annotations

import math
import random
import re
from pathlib import Path, PurePosixPath

from ctbench.errors import PreflightError

# CT-RATE names a reconstruction <split>_<patient>_<scan>_<reconstruction>.nii.gz
_CT_RATE = re.compile(r"^((?:train|valid)_\d+)_")


def patient_of(image_path: str) -> str:
    """The patient a volume belongs to: CT-RATE's patient prefix, else the file name."""
    name = PurePosixPath(image_path.replace("\\", "/")).name
    match = _CT_RATE.match(name)
    return match.group(1) if match else name


def size_class(path: Path) -> int:
    """log2 of the voxel count, rounded: volumes within a factor of about two share a class."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return -1  # unreadable here: its own questions fail when it is read; class it with the rest
    return round(math.log2(max(1, math.prod(reader.GetSize()))))


def shuffle_assignment(volumes: dict[str, Path], seed: int) -> dict[str, str]:
    """image path -> the image path whose volume its questions get (always another patient's).
    `volumes` maps image paths to files (for their size); raises `PreflightError` when there is
    only one patient."""
    patients = {image: patient_of(image) for image in volumes}
    if len(set(patients.values())) < 2:
        raise PreflightError(f"--control shuffle needs volumes of at least two patients; this run has "
                             f"{len(volumes)} volume(s) of one patient ({next(iter(patients.values()), '-')})")
    classes: dict[int, list[str]] = {}
    for image, path in volumes.items():
        classes.setdefault(size_class(path), []).append(image)
    classes = _merge_small(classes, patients)
    rng = random.Random(seed)
    assignment: dict[str, str] = {}
    for key in sorted(classes):
        order = sorted(classes[key])
        rng.shuffle(order)
        assignment.update(_rotate(order, patients))
    return assignment


def _merge_small(classes: dict[int, list[str]], patients: dict[str, str]) -> dict[int, list[str]]:
    classes = {k: list(v) for k, v in classes.items()}
    while len(classes) > 1:
        small = [k for k in sorted(classes) if len({patients[i] for i in classes[k]}) < 2]
        if not small:
            break
        key = small[0]
        nearest = min((k for k in classes if k != key), key=lambda k: (abs(k - key), k))
        classes[nearest] += classes.pop(key)
    return classes


def _rotate(order: list[str], patients: dict[str, str]) -> dict[str, str]:
    n = len(order)
    for k in range(1, n):
        if all(patients[order[i]] != patients[order[(i + k) % n]] for i in range(n)):
            return {order[i]: order[(i + k) % n] for i in range(n)}
    # no single rotation works (one patient holds most volumes): the nearest other patient's each
    out = {}
    for i, image in enumerate(order):
        out[image] = next(order[(i + k) % n] for k in range(1, n) if patients[order[(i + k) % n]] != patients[image])
    return out
