"""The one volume type every part of ctbench passes around, and the NIfTI loader.

Axis conventions (stated once, relied on everywhere):

* ``Volume.array`` is indexed ``[k, j, i]`` — SimpleITK's ``GetArrayFromImage`` order, usually
  described as (z, y, x) or (D, H, W).
* ``spacing`` and ``origin`` are in ITK index order ``(i, j, k)``, millimetres.
* ``direction`` is ITK's 3x3 direction matrix in LPS physical space: column ``c`` is the unit
  vector, in LPS, along which index axis ``c`` (i, j, k) increases.
* ``orientation`` is the DICOM-style code of the letters each index axis (i, j, k) points
  *towards*: an identity direction is ``"LPS"``; nibabel's identity affine would be ``"RAS"``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ctbench.errors import InvalidVolume, VolumeNotFound, VolumeTooLarge
from ctbench.preprocess.volume_errors import (
    InvalidSpacing,
    NonFiniteVoxels,
    NonOrthogonalDirection,
    NotThreeDimensional,
)

if TYPE_CHECKING:
    from ctbench.preprocess.nifti_transform import HeaderGeometry

_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))  # LPS +, -
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True, eq=False)
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    source: str = ""
    header: HeaderGeometry | None = None  # a NIfTI file's transforms: which one placed it, any conflict

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", np.asarray(self.direction, dtype=float).reshape(3, 3))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        validate_geometry(self.array, self.spacing, self.direction, where=self.source or "volume")
        if not all(np.isfinite(self.origin)):
            raise InvalidVolume(f"{self.source or 'volume'}: origin must be finite, got {self.origin}")

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def orientation(self) -> str:
        return orientation_code(self.direction)

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous index (..., 3) in (i, j, k) order -> LPS millimetres (..., 3)."""
        ijk = np.asarray(ijk, dtype=float)
        return np.asarray(self.origin) + (ijk * np.asarray(self.spacing)) @ self.direction.T

    def with_array(self, array: np.ndarray) -> Volume:
        return Volume(array, self.spacing, self.origin, self.direction, self.source, self.header)


def orientation_code(direction: np.ndarray) -> str:
    """DICOM-style orientation code (letters the i, j, k axes point towards) of a direction matrix."""
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    letters = []
    for c in range(3):
        column = direction[:, c]
        axis = int(np.argmax(np.abs(column)))
        letters.append(_AXIS_LETTERS[axis][0 if column[axis] > 0 else 1])
    return "".join(letters)


def validate_geometry(array: np.ndarray, spacing, direction: np.ndarray, where: str) -> None:
    if array.ndim != 3:
        raise NotThreeDimensional(f"{where}: expected a 3D volume, got {array.ndim}D with shape {array.shape}")
    if min(array.shape) < 1:
        raise NotThreeDimensional(f"{where}: empty volume, shape {array.shape}")
    if any(not np.isfinite(s) or s <= 0 for s in spacing):
        raise InvalidSpacing(f"{where}: spacing must be positive and finite, got {tuple(spacing)}")
    gram = direction.T @ direction
    if not np.allclose(gram, np.eye(3), atol=1e-3):
        raise NonOrthogonalDirection(
            f"{where}: direction cosines are not orthonormal: {np.round(direction, 4).tolist()}"
        )


def check_finite(array: np.ndarray, where: str) -> None:
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            raise NonFiniteVoxels(
                f"{where}: {int(bad.sum())} of {array.size} voxels are NaN or infinite"
            )


def load_volume(path: str | os.PathLike, max_bytes: int | None = None) -> Volume:
    """Read a NIfTI (.nii / .nii.gz) volume into a validated `Volume`; other formats via SimpleITK.

    NIfTI files are read once and decoded from those bytes (`nifti_decode.decode_nifti`): NIfTI
    scaling (scl_slope/scl_inter) is applied; zero or negative voxel sizes in the header raise
    `InvalidSpacing`, NaN/inf voxels `NonFiniteVoxels` (ITK's reader would silently make the
    spacing 1 mm / positive and the voxels 0), a file shorter than its header promises
    `TruncatedVolume`, complex or RGB voxels `UnsupportedVoxelType`. A 4D image whose fourth axis
    has length 1 is accepted as 3D; any other 4D image, 2D image or multi-component image is an
    `InvalidVolume`. `max_bytes` bounds voxels x 4 bytes, checked from the header before decoding.
    """
    path = Path(path)
    if str(path).endswith(NIFTI_SUFFIXES):
        return load_volume_bytes(read_volume_file(path), str(path), max_bytes=max_bytes, where=str(path))
    return volume_from_sitk(read_image_checked(path, max_bytes), str(path))


def read_volume_file(path: str | os.PathLike) -> bytes:
    """The bytes of a volume file; `VolumeNotFound` / `InvalidVolume` saying why it cannot be read."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise VolumeNotFound(f"{path}: no such volume file") from None
    except OSError as exc:
        raise InvalidVolume(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_image_checked(path: str | os.PathLike, max_bytes: int | None = None):
    """The SimpleITK image of a non-NIfTI volume file (MetaImage, NRRD, ...), its decoded size
    checked against `max_bytes` from the header before the voxels are read."""
    import SimpleITK as sitk

    from ctbench.preprocess.nifti_decode import decoded_size_bound

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise VolumeNotFound(f"{where}: no such volume file")
    reader = sitk.ImageFileReader()
    reader.SetFileName(where)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InvalidVolume(f"{where}: not a readable image ({_first_line(exc)})") from None
    size = reader.GetSize()
    if max_bytes is not None:
        estimate = decoded_size_bound(size)
        if estimate > max_bytes:
            raise VolumeTooLarge(
                f"{where}: volume of size {size} needs about {estimate} bytes, over the bound of {max_bytes}"
            )
    _check_real_pixels(reader.GetPixelID(), reader.GetNumberOfComponents(), where)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InvalidVolume(f"{where}: cannot decode voxels, truncated or corrupt? ({_first_line(exc)})") from None
    return image


def _check_real_pixels(pixel_id: int, components: int, where: str) -> None:
    import SimpleITK as sitk

    if components != 1:
        raise InvalidVolume(f"{where}: expected one intensity per voxel, got {components} components")
    if pixel_id in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
        from ctbench.preprocess.volume_errors import UnsupportedVoxelType

        raise UnsupportedVoxelType(
            f"{where}: voxels of type {sitk.GetPixelIDValueAsString(pixel_id)}; expected one real value per voxel"
        )


def volume_from_sitk(image, where: str = "volume") -> Volume:
    """SimpleITK image -> `Volume`, squeezing a singleton 4th axis; validates as `load_volume`."""
    import SimpleITK as sitk

    _check_real_pixels(image.GetPixelID(), image.GetNumberOfComponentsPerPixel(), where)
    dim = image.GetDimension()
    if dim == 4 and image.GetSize()[3] == 1:
        image = sitk.Extract(image, list(image.GetSize()[:3]) + [0], [0, 0, 0, 0])
        dim = 3
    if dim != 3:
        raise NotThreeDimensional(f"{where}: expected a 3D volume, got {dim}D with size {image.GetSize()}")
    array = sitk.GetArrayFromImage(image)
    check_finite(array, where)
    return Volume(
        array=array,
        spacing=image.GetSpacing(),
        origin=image.GetOrigin(),
        direction=np.asarray(image.GetDirection()).reshape(3, 3),
        source=where,
    )


def volume_to_sitk(volume: Volume):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(volume.direction.flatten()))
    return image


def save_volume(volume: Volume, path: str | os.PathLike) -> None:
    import SimpleITK as sitk

    sitk.WriteImage(volume_to_sitk(volume), str(path), useCompression=str(path).endswith(".gz"))


def load_volume_bytes(data: bytes, filename: str, max_bytes: int | None = None, where: str | None = None) -> Volume:
    """Decode an in-memory NIfTI file (as sent inline over gRPC, or read once from disk).

    `filename` names the volume (its suffix must be .nii or .nii.gz; gzip is recognised by its
    magic bytes); `where` is how errors name it, by default ``"<filename> (inline)"``.
    """
    from ctbench.preprocess.nifti_decode import decode_nifti
    from ctbench.preprocess.volume_errors import UnsupportedVolumeFormat

    where = where or f"{filename} (inline)"
    if not filename.endswith(NIFTI_SUFFIXES):
        raise UnsupportedVolumeFormat(f"{where}: only NIfTI volumes (.nii, .nii.gz) can be decoded from bytes")
    volume = decode_nifti(data, where, max_bytes=max_bytes)
    return Volume(volume.array, volume.spacing, volume.origin, volume.direction, source=filename, header=volume.header)


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # SimpleITK's messages start with a source location; the useful part is usually last.
    return lines[-1] if lines else type(exc).__name__
