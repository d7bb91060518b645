"""Each NIfTI volume's header transforms, read once per run before anything is streamed.

The runner never decodes voxels, but it reads each NIfTI volume's header (the first bytes only)
and asks `preprocess/nifti_transform.py` which transform the standard picks and whether the
sform and qform disagree. Loaders differ on such files (SimpleITK takes the qform for several
code pairs, nibabel and MONAI the sform), so a model may be fed the patient's mirror image:
with `--conflicted-headers warn` (the default) each such volume is announced once and recorded
in run.json's ``volume_headers`` (the report lists them); with ``refuse`` the run stops with a
`ConflictingHeaders` error naming the file and both transforms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ctbench.datasets.qa_items import Dataset
from ctbench.errors import CtbenchError
from ctbench.preprocess.nifti_decode import nifti_header_of
from ctbench.preprocess.nifti_transform import CONFLICT_POLICIES, header_geometry
from ctbench.preprocess.volume import NIFTI_SUFFIXES

__all__ = ["HeaderCheck", "check_volume_headers"]

HEAD_BYTES = 1 << 16  # enough compressed bytes for a .nii.gz's 540-byte header


@dataclass
class HeaderCheck:
    """The run's NIfTI headers: how many were read, and the conflicted ones (image path -> record)."""

    policy: str
    checked: int = 0
    conflicts: dict[str, dict] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One warning line per conflicted volume."""
        return [f"warning: {path}: NIfTI sform (code {r['sform_code']}) and qform (code {r['qform_code']}) disagree "
                f"({r['conflict']}); it is read with the {r['transform']}, as the standard says, but loaders that "
                "prefer the qform see another patient (--conflicted-headers refuse stops such runs)"
                for path, r in self.conflicts.items()]

    def to_json(self) -> dict:
        return {"policy": self.policy, "checked": self.checked, "conflicts": self.conflicts}


def check_volume_headers(dataset: Dataset, policy: str = "warn") -> HeaderCheck:
    """Read every NIfTI volume's header; raise `ConflictingHeaders` for the first conflicted one
    under ``policy="refuse"``. A header that cannot be read is left to the servers to report."""
    if policy not in CONFLICT_POLICIES:
        raise ValueError(f"--conflicted-headers must be one of {', '.join(CONFLICT_POLICIES)}, got {policy!r}")
    check = HeaderCheck(policy)
    for image_path in dataset.by_volume():
        path = dataset.volume_path(image_path)
        if not str(path).endswith(NIFTI_SUFFIXES):
            continue
        try:
            with open(path, "rb") as handle:
                head = handle.read(HEAD_BYTES)
            geometry = header_geometry(nifti_header_of(head, str(path)), str(path))
        except (OSError, CtbenchError):
            continue  # preflight or the server says what is wrong with it
        check.checked += 1
        if not geometry.conflict:
            continue
        if policy == "refuse":
            geometry.refuse_if_conflicted(str(path))
        check.conflicts[image_path] = geometry.to_json()
    return check
