"""Small synthetic volumes and DICOM series for the preprocessing tests."""
from __future__ import annotations

import locale

import numpy as np
import pytest

from ctbench.preprocess.volume import Volume


def _make_volume(shape_kji=(6, 7, 8), spacing=(0.8, 0.9, 2.5), origin=(10.0, -5.0, 3.0), direction=None, dtype=np.int16, seed=0):
    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 1000, size=shape_kji).astype(dtype)
    return Volume(array, spacing, origin, np.eye(3) if direction is None else direction, source="synthetic")


def _write_dicom_series(folder, array_kji, series_uid, spacing=(0.8, 0.8, 2.0), study_uid="1.2.826.0.1.3680043.2.1125.1"):
    """Write a (k, j, i) int16 array as an axial CT series of 2D DICOM files, one per k.

    File names run in the opposite order to the slice positions, so a reader that sorted by
    name instead of by ImagePositionPatient would stack the slices upside down.

    GDCM's DICOM writer switches the process to the C locale and leaves it there, which makes
    Python's default text encoding ASCII for every later test; the locale is put back.
    """
    import SimpleITK as sitk

    saved = locale.setlocale(locale.LC_ALL)
    try:
        _write_slices(sitk, folder, array_kji, series_uid, spacing, study_uid)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_slices(sitk, folder, array_kji, series_uid, spacing, study_uid):
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(array_kji.shape[0]):
        image = sitk.GetImageFromArray(np.ascontiguousarray(array_kji[k]))
        image.SetSpacing(spacing[:2])
        tags = {
            "0008|0060": "CT",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|000d": study_uid,
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0032": f"0\\0\\{k * spacing[2]}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0018|0050": str(spacing[2]),
        }
        for key, value in tags.items():
            image.SetMetaData(key, value)
        position_rank = array_kji.shape[0] - 1 - k
        writer.SetFileName(str(folder / f"{series_uid.rsplit('.', 1)[-1]}_{position_rank:03d}.dcm"))
        writer.Execute(image)


@pytest.fixture
def make_volume():
    """Factory: a random int16 Volume, array (k, j, i), LPS identity direction unless given."""
    return _make_volume


@pytest.fixture
def write_dicom_series():
    """Factory: write a (k, j, i) int16 array as a DICOM series into a folder."""
    return _write_dicom_series
