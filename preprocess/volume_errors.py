"""Typed errors for volumes that cannot be turned into model input.

Every class subclasses `ctbench.errors.InvalidVolume` (gRPC INVALID_ARGUMENT) so callers that
only care about "bad volume" catch one type; tests and servers that care about *why* catch the
specific one. Messages carry the actual values seen (shape, spacing, matrix, counts, UIDs).
"""
from __future__ import annotations

from ctbench.errors import InvalidVolume, VolumeTooLarge

__all__ = [
    "CastOverflow",
    "ConflictingHeaders",
    "EmptyDicomFolder",
    "InvalidSpacing",
    "InvalidVolume",
    "MixedDicomSeries",
    "NonFiniteVoxels",
    "NonOrthogonalDirection",
    "NotThreeDimensional",
    "TruncatedVolume",
    "UnsupportedVolumeFormat",
    "UnsupportedVoxelType",
    "VolumeTooLarge",
]


class NotThreeDimensional(InvalidVolume):
    """A 2D image, or a 4D image whose fourth axis is longer than 1, or an empty axis."""


class InvalidSpacing(InvalidVolume):
    """Zero, negative or non-finite voxel spacing."""


class NonOrthogonalDirection(InvalidVolume):
    """Direction cosines that are not an orthonormal 3x3 matrix (sheared or scaled axes)."""


class NonFiniteVoxels(InvalidVolume):
    """NaN or infinite voxel values."""


class UnsupportedVoxelType(InvalidVolume):
    """Voxels that are not one real number each: complex, RGB, 128-bit float, binary."""


class TruncatedVolume(InvalidVolume):
    """A file that ends before the last voxel its header declares."""


class UnsupportedVolumeFormat(InvalidVolume):
    """A file format the model card does not accept (NIfTI is the default and the usual one)."""


class CastOverflow(InvalidVolume):
    """Values that do not fit the integer type they were asked to be cast to."""


class EmptyDicomFolder(InvalidVolume):
    """A folder given as a DICOM series that holds no DICOM series."""


class MixedDicomSeries(InvalidVolume):
    """A folder holding more than one DICOM series, with no series chosen."""

    def __init__(self, message: str, series_uids: list[str]):
        super().__init__(message)
        self.series_uids = list(series_uids)


class ConflictingHeaders(InvalidVolume):
    """A NIfTI file whose sform and qform (both with codes > 0) place the patient differently,
    refused where the caller asked for that (`nifti_transform.py` says when they disagree)."""

    def __init__(self, message: str, geometry=None):
        super().__init__(message)
        self.geometry = geometry
