"""Loading a CT volume from disk: a NIfTI file (via `volume.load_volume`) or a DICOM series folder.

Both come back as a validated `Volume` (array ``[k, j, i]`` = (z, y, x), LPS geometry, see
`volume.py`), with the reader's SimpleITK image kept for later resampling.
Bad input raises the typed errors of `volume_errors` with the values seen.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ctbench.errors import InvalidVolume, VolumeNotFound, VolumeTooLarge
from ctbench.preprocess.intensity import cast_checked
from ctbench.preprocess.nifti_decode import BYTES_PER_VOXEL_BOUND
from ctbench.preprocess.sitk_images import remember_image
from ctbench.preprocess.volume import NIFTI_SUFFIXES, Volume, load_volume, read_image_checked, volume_from_sitk
from ctbench.preprocess.volume_errors import EmptyDicomFolder, MixedDicomSeries

__all__ = ["LoadVolume", "dicom_series_uids", "load", "load_dicom_series"]



def dicom_series_uids(folder: str | os.PathLike) -> list[str]:
    """Series Instance UIDs of the DICOM series directly inside `folder` (GDCM's scan)."""
    import SimpleITK as sitk

    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def load_dicom_series(
    folder: str | os.PathLike, series_uid: str | None = None, max_bytes: int | None = None
) -> Volume:
    """Read one DICOM series from `folder` (slices sorted by position, rescale slope/intercept applied).

    Raises `EmptyDicomFolder` when the folder holds no series, `MixedDicomSeries` when it holds
    several and `series_uid` does not pick one (the message lists the UIDs), `VolumeTooLarge`
    when rows x columns x slices x 4 bytes exceeds `max_bytes`.
    """
    import SimpleITK as sitk

    folder = Path(folder)
    where = str(folder)
    if not folder.is_dir():
        raise VolumeNotFound(f"{where}: no such DICOM folder")
    uids = dicom_series_uids(folder)
    if not uids:
        count = sum(1 for p in folder.iterdir() if p.is_file())
        raise EmptyDicomFolder(f"{where}: no DICOM series found among its {count} files")
    if series_uid is None:
        if len(uids) > 1:
            raise MixedDicomSeries(
                f"{where}: holds {len(uids)} DICOM series, pick one: " + ", ".join(uids), uids
            )
        series_uid = uids[0]
    elif series_uid not in uids:
        raise MixedDicomSeries(f"{where}: no series {series_uid!r}; it holds: " + ", ".join(uids), uids)
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(where, series_uid))
    if max_bytes is not None:
        header = sitk.ImageFileReader()
        header.SetFileName(files[0])
        header.ReadImageInformation()
        columns, rows = header.GetSize()[:2]
        estimate = int(columns) * int(rows) * len(files) * BYTES_PER_VOXEL_BOUND
        if estimate > max_bytes:
            raise VolumeTooLarge(
                f"{where}: series of {len(files)} slices of {columns}x{rows} needs about {estimate} bytes, "
                f"over the bound of {max_bytes}"
            )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InvalidVolume(f"{where}: cannot read DICOM series {series_uid}: {str(exc).strip().splitlines()[-1]}") from None
    volume = volume_from_sitk(image, where)
    remember_image(volume, image)
    return volume


def load(
    path: str | os.PathLike, max_bytes: int | None = None, dtype=None, series_uid: str | None = None,
    keep_image: bool = True,
) -> Volume:
    """Load a NIfTI file or a DICOM series folder; optionally cast voxels with an overflow check.

    `dtype` (e.g. "int16") casts with `cast_checked`: values that do not fit raise `CastOverflow`.
    With `keep_image` a non-NIfTI reader's SimpleITK image is kept alongside the array, so
    resampling needs no second copy of the voxels (memory: twice the voxels while the volume
    lives; pass False to a long-lived cache of many volumes). NIfTI voxels are decoded by numpy;
    their SimpleITK image is built only if a resampling step asks for it.
    """
    path = Path(path)
    if path.is_dir():
        volume = load_dicom_series(path, series_uid=series_uid, max_bytes=max_bytes)
    elif str(path).endswith(NIFTI_SUFFIXES):
        volume = load_volume(path, max_bytes=max_bytes)  # read once, decoded from memory
    else:
        image = read_image_checked(path, max_bytes=max_bytes)
        volume = volume_from_sitk(image, str(path))
        if keep_image and image.GetDimension() == 3:
            remember_image(volume, image)
    if dtype is not None and np.dtype(dtype) != volume.array.dtype:
        volume = volume.with_array(cast_checked(volume.array, dtype, where=str(path)))
    return volume


class LoadVolume:
    """path -> Volume (NIfTI file or DICOM series folder), with an optional memory bound and cast."""

    def __init__(self, max_bytes: int | None = None, dtype=None):
        if max_bytes is not None and (int(max_bytes) != max_bytes or max_bytes <= 0):
            raise ValueError(f"LoadVolume max_bytes must be a positive integer, got {max_bytes!r}")
        if dtype is not None:
            try:
                np.dtype(dtype)
            except TypeError as exc:
                raise ValueError(f"LoadVolume dtype is not a numpy dtype: {dtype!r}") from exc
        self.max_bytes, self.dtype = max_bytes, dtype

    def __call__(self, path: str | os.PathLike) -> Volume:
        return load(path, max_bytes=self.max_bytes, dtype=self.dtype)

    def __repr__(self) -> str:
        return f"LoadVolume(max_bytes={self.max_bytes}, dtype={self.dtype})"
