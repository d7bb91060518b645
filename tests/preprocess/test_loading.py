"""Loading NIfTI and DICOM series, and every kind of bad input giving its typed error."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from ctbench.errors import InvalidVolume, VolumeNotFound, VolumeTooLarge
from ctbench.preprocess.loading import LoadVolume, dicom_series_uids, load, load_dicom_series
from ctbench.preprocess.volume import Volume, load_volume_bytes, save_volume
from ctbench.preprocess.volume_errors import (
    CastOverflow,
    EmptyDicomFolder,
    InvalidSpacing,
    MixedDicomSeries,
    NonFiniteVoxels,
    NonOrthogonalDirection,
    NotThreeDimensional,
)

SERIES_A = "1.2.826.0.1.3680043.2.1125.7.1"
SERIES_B = "1.2.826.0.1.3680043.2.1125.7.2"


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("code", ["LPS", "RAS", "PIL"])
def test_nifti_round_trip_keeps_voxels_and_geometry(tmp_path, make_volume, suffix, code):
    from ctbench.preprocess.orientation import reorient

    volume = reorient(make_volume(), code)
    path = tmp_path / f"v{suffix}"
    save_volume(Volume(np.ascontiguousarray(volume.array), volume.spacing, volume.origin, volume.direction), path)
    loaded = load(path)
    assert loaded.orientation == code
    assert np.array_equal(loaded.array, volume.array)
    assert np.allclose(loaded.spacing, volume.spacing) and np.allclose(loaded.origin, volume.origin, atol=1e-4)


def test_4d_nifti_with_a_single_volume_is_accepted_as_3d(tmp_path):
    image = sitk.JoinSeries([sitk.GetImageFromArray(np.arange(60, dtype=np.int16).reshape(3, 4, 5))])
    path = _write(tmp_path / "single.nii.gz", image)
    volume = load(path)
    assert volume.array.shape == (3, 4, 5) and volume.array[2, 3, 4] == 59


def test_dicom_series_loads_sorted_by_position_with_spacing(tmp_path, write_dicom_series):
    array = (np.arange(4)[:, None, None] * 100 + np.zeros((4, 5, 6))).astype(np.int16)
    write_dicom_series(tmp_path / "ct", array, SERIES_A, spacing=(0.8, 0.7, 2.5))
    volume = load(tmp_path / "ct")
    assert volume.array.shape == (4, 5, 6)
    assert np.allclose(volume.spacing, (0.8, 0.7, 2.5))
    assert volume.orientation == "LPS"
    assert [int(volume.array[k, 0, 0]) for k in range(4)] == [0, 100, 200, 300]


def test_writing_a_dicom_series_leaves_the_text_encoding_alone(tmp_path, write_dicom_series):
    import locale

    before = locale.getpreferredencoding(False)
    write_dicom_series(tmp_path / "ct", np.zeros((2, 4, 4), np.int16), SERIES_A)
    load(tmp_path / "ct")
    assert locale.getpreferredencoding(False) == before


def test_mixed_series_lists_the_uids_and_one_can_be_chosen(tmp_path, write_dicom_series):
    folder = tmp_path / "mixed"
    write_dicom_series(folder, np.zeros((2, 4, 4), np.int16), SERIES_A)
    write_dicom_series(folder, np.ones((3, 4, 4), np.int16), SERIES_B)
    assert sorted(dicom_series_uids(folder)) == [SERIES_A, SERIES_B]
    with pytest.raises(MixedDicomSeries) as info:
        load(folder)
    assert SERIES_A in str(info.value) and SERIES_B in str(info.value)
    assert sorted(info.value.series_uids) == [SERIES_A, SERIES_B]
    assert load_dicom_series(folder, series_uid=SERIES_B).array.shape == (3, 4, 4)
    with pytest.raises(MixedDicomSeries, match="no series '9.9'"):
        load_dicom_series(folder, series_uid="9.9")


def _write(path, image):
    sitk.WriteImage(image, str(path))
    return path


def _nifti_with_pixdim(tmp_path, value, gz):
    path = _write(tmp_path / "ok.nii", sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16)))
    data = bytearray(path.read_bytes())
    data[80:84] = struct.pack("<f", value)  # pixdim[1]
    out = tmp_path / ("bad.nii.gz" if gz else "bad.nii")
    out.write_bytes(gzip.compress(bytes(data)) if gz else bytes(data))
    return out


def _float_nifti(tmp_path, values):
    return _write(tmp_path / "f.nii.gz", sitk.GetImageFromArray(np.asarray(values, dtype=np.float32).reshape(1, 1, -1)))


def _image_4d():
    return sitk.JoinSeries([sitk.Image(4, 4, 4, sitk.sitkInt16), sitk.Image(4, 4, 4, sitk.sitkInt16)])


BAD_FILES = [
    # (id, make(tmp_path, write_dicom_series) -> path, load kwargs, error type, message fragment)
    ("4d", lambda t, w: _write(t / "4d.nii.gz", _image_4d()), {}, NotThreeDimensional, r"4D with size \(4, 4, 4, 2\)"),
    ("2d", lambda t, w: _write(t / "2d.nii", sitk.Image(6, 5, sitk.sitkInt16)), {}, NotThreeDimensional, r"2D with size \(6, 5\)"),
    ("zero spacing", lambda t, w: _nifti_with_pixdim(t, 0.0, gz=False), {}, InvalidSpacing, r"got \(0.0, 1.0, 1.0\)"),
    ("negative spacing", lambda t, w: _nifti_with_pixdim(t, -2.0, gz=True), {}, InvalidSpacing, r"got \(-2.0, 1.0, 1.0\)"),
    ("nan", lambda t, w: _float_nifti(t, [0.0, np.nan, 1.0]), {}, NonFiniteVoxels, "1 of 3 voxels"),
    ("inf", lambda t, w: _float_nifti(t, [np.inf, -np.inf]), {}, NonFiniteVoxels, "2 of 2 voxels"),
    ("overflow", lambda t, w: _float_nifti(t, [0.0, 70000.0]), {"dtype": "int16"}, CastOverflow, r"\[0.0, 70000.0\]"),
    ("too large nifti", lambda t, w: _write(t / "big.nii", sitk.Image(10, 10, 10, sitk.sitkInt16)), {"max_bytes": 1000},
     VolumeTooLarge, r"size \(10, 10, 10\) needs about 4000 bytes, over the bound of 1000"),
    ("too large dicom", lambda t, w: (w(t / "d", np.zeros((3, 8, 8), np.int16), SERIES_A), t / "d")[1], {"max_bytes": 100},
     VolumeTooLarge, "3 slices of 8x8 needs about 768 bytes"),
    ("empty dicom folder", lambda t, w: (t / "empty").mkdir() or t / "empty", {}, EmptyDicomFolder, "no DICOM series found among its 0 files"),
    ("folder of non-dicom", lambda t, w: ((t / "txt").mkdir(), (t / "txt" / "a.txt").write_text("x"), t / "txt")[2], {},
     EmptyDicomFolder, "among its 1 files"),
    ("missing file", lambda t, w: t / "nope.nii.gz", {}, VolumeNotFound, "no such volume file"),
    ("not an image", lambda t, w: ((t / "junk.nii").write_bytes(b"junk" * 10), t / "junk.nii")[1], {}, InvalidVolume, "junk.nii"),
]


@pytest.mark.parametrize("make, kwargs, error, message", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_bad_files_raise_typed_errors_with_values(tmp_path, write_dicom_series, make, kwargs, error, message):
    path = make(tmp_path, write_dicom_series)
    with pytest.raises(error, match=message) as info:
        load(path, **kwargs)
    assert isinstance(info.value, InvalidVolume)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"spacing": (0.0, 1.0, 1.0)}, InvalidSpacing, r"got \(0.0, 1.0, 1.0\)"),
        ({"spacing": (1.0, -0.5, 1.0)}, InvalidSpacing, r"got \(1.0, -0.5, 1.0\)"),
        ({"direction": [[1, 0.3, 0], [0, 1, 0], [0, 0, 1]]}, NonOrthogonalDirection, r"\[\[1.0, 0.3, 0.0\]"),
        ({"direction": np.eye(3) * 2}, NonOrthogonalDirection, "not orthonormal"),
        ({"origin": (0.0, float("inf"), 0.0)}, InvalidVolume, r"origin must be finite, got \(0.0, inf, 0.0\)"),
    ],
)
def test_bad_geometry_in_memory_raises(kwargs, error, message):
    with pytest.raises(error, match=message):
        Volume(np.zeros((2, 2, 2)), **kwargs)


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 4, 5), (0, 3, 3)])
def test_bad_array_shapes_raise(shape):
    with pytest.raises(NotThreeDimensional, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        Volume(np.zeros(shape))


def test_inline_bytes_get_the_same_checks(tmp_path):
    path = _nifti_with_pixdim(tmp_path, 0.0, gz=True)
    with pytest.raises(InvalidSpacing):
        load_volume_bytes(path.read_bytes(), "inline.nii.gz")


def test_load_volume_transform_validates_arguments():
    with pytest.raises(ValueError, match="got -5"):
        LoadVolume(max_bytes=-5)
    with pytest.raises(ValueError, match="'int17'"):
        LoadVolume(dtype="int17")
