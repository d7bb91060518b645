"""Which NIfTI transform places the patient: the sform when its code is > 0, else the qform, else
the base (pixdim-only) transform, for every code pair (sform 0..4 x qform 0..2) of a probe whose
other transform holds the left-right mirror. The markers must land on the patient's true side,
nibabel (where installed) must agree, and a disagreement is recorded and can be refused."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from nifti_files import mirror_left_right, ras_affine, write_nifti

from ctbench.errors import InvalidVolume
from ctbench.preprocess.input_spec import get_spec
from ctbench.preprocess.nifti_decode import decode_nifti
from ctbench.preprocess.nifti_header import parse_nifti_header
from ctbench.preprocess.nifti_transform import header_geometry
from ctbench.preprocess.orientation_probe import MARKERS, PROBE_CENTER_LPS, check_markers, make_probe_volume
from ctbench.preprocess.volume import load_volume
from ctbench.preprocess.volume_errors import ConflictingHeaders

CODE_PAIRS = list(itertools.product(range(5), range(3)))  # (sform_code, qform_code)
STORAGES = ["LPS", "RAS", "PIL"]
# Where each marker sits from the probe's centre, in LPS mm (left is +x, anterior -y, superior +z).
EXPECTED_OFFSET = {"L": (1, 0, 0), "A": (0, -1, 0), "S": (0, 0, 1)}


def _cases():
    for sform_code, qform_code in CODE_PAIRS:
        if sform_code == 0 and qform_code == 0:
            yield sform_code, qform_code, "LAS"  # the base transform can only say LAS (nibabel's reading)
        else:
            for storage in STORAGES:
                yield sform_code, qform_code, storage


CASES = list(_cases())


def _conflicted_file(tmp_path, sform_code: int, qform_code: int, storage: str):
    """The probe stored in `storage`, its true geometry in the transform the standard picks and the
    patient's mirror image in the other."""
    probe = make_probe_volume(storage)
    truth = ras_affine(probe)
    mirror = mirror_left_right(truth)
    truth_in_sform = sform_code > 0 or qform_code == 0
    path = tmp_path / f"probe-{storage}-s{sform_code}q{qform_code}.nii.gz"
    write_nifti(
        path, probe.array,
        sform=truth if truth_in_sform else mirror, qform=mirror if truth_in_sform else truth,
        sform_code=sform_code, qform_code=qform_code, pixdim=probe.spacing,
    )
    return path, probe


def _marker_offsets_lps(volume) -> dict[str, np.ndarray]:
    """Each marker's centre minus the volume's centre, in LPS mm, as the loaded geometry places it."""
    centre = volume.index_to_lps((np.asarray(volume.shape_ijk) - 1) / 2.0)
    offsets = {}
    for marker in MARKERS:
        kji = np.argwhere(volume.array == marker.hu)
        assert len(kji), f"marker {marker.name} not found in {volume.source}"
        offsets[marker.letter] = volume.index_to_lps(kji[:, ::-1].mean(axis=0)) - centre
    return offsets


@pytest.mark.parametrize("sform_code, qform_code, storage", CASES)
def test_markers_land_on_the_patients_true_side_for_every_code_pair(tmp_path, sform_code, qform_code, storage):
    path, _ = _conflicted_file(tmp_path, sform_code, qform_code, storage)
    volume = load_volume(path)
    offsets = _marker_offsets_lps(volume)
    for marker in MARKERS:
        expected = np.asarray(EXPECTED_OFFSET[marker.letter], dtype=float) * marker.distance_mm
        assert np.allclose(offsets[marker.letter], expected, atol=1.0), (
            f"s{sform_code}/q{qform_code}, stored {storage}: the {marker.name} marker sits at "
            f"{np.round(offsets[marker.letter], 1).tolist()} mm from the centre (LPS), expected {expected.tolist()}"
        )
    expected_source = "sform" if sform_code > 0 else "qform" if qform_code > 0 else "base"
    assert volume.header.source == expected_source


@pytest.mark.parametrize("sform_code, qform_code", [p for p in CODE_PAIRS if p != (0, 0)])
@pytest.mark.parametrize("name, variant", [("merlin", "authors"), ("medgemma", "authors")])
def test_reorienting_presets_feed_the_true_side_for_every_code_pair(tmp_path, sform_code, qform_code, name, variant):
    path, probe = _conflicted_file(tmp_path, sform_code, qform_code, "RAS")
    spec = get_spec(name, variant)
    problems = check_markers(spec, probe, spec.apply(load_volume(path)))
    assert not problems, f"{name}/{variant}, s{sform_code}/q{qform_code}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("sform_code, qform_code, storage", CASES)
def test_the_transform_chosen_is_nibabels(tmp_path, sform_code, qform_code, storage):
    nibabel = pytest.importorskip("nibabel", reason="nibabel is the oracle: pip install -e .[test]")
    path, _ = _conflicted_file(tmp_path, sform_code, qform_code, storage)
    ours = ras_affine(load_volume(path))
    theirs = nibabel.load(str(path)).affine
    assert np.allclose(ours, theirs, atol=1e-3), f"s{sform_code}/q{qform_code}: ours\n{ours}\nnibabel\n{theirs}"


@pytest.mark.parametrize("sform_code, qform_code", CODE_PAIRS)
def test_a_disagreement_is_recorded_only_when_both_codes_are_set(tmp_path, sform_code, qform_code):
    path, _ = _conflicted_file(tmp_path, sform_code, qform_code, "LPS" if (sform_code, qform_code) != (0, 0) else "LAS")
    header = load_volume(path).header
    both = sform_code > 0 and qform_code > 0
    assert bool(header.conflict) == both, header.to_json()
    if both:
        assert "axis i points the opposite way" in header.conflict
        assert header.to_json()["sform_code"] == sform_code and header.to_json()["qform_ras"] is not None


@pytest.mark.parametrize("sform_code, qform_code", [p for p in CODE_PAIRS if p[0] > 0 and p[1] > 0])
def test_refuse_names_the_file_and_both_transforms(tmp_path, sform_code, qform_code):
    path, _ = _conflicted_file(tmp_path, sform_code, qform_code, "LPS")
    with pytest.raises(ConflictingHeaders) as caught:
        decode_nifti(path.read_bytes(), str(path), conflicted_headers="refuse")
    message = str(caught.value)
    assert str(path) in message and f"sform (code {sform_code})" in message and f"qform (code {qform_code})" in message
    assert message.count("[") >= 2  # both matrices shown
    assert isinstance(caught.value, InvalidVolume) and caught.value.geometry.conflict


def test_refuse_accepts_a_file_whose_transforms_agree(tmp_path):
    probe = make_probe_volume("RAS")
    path = write_nifti(tmp_path / "ok.nii", probe.array, sform=ras_affine(probe), qform=ras_affine(probe),
                       sform_code=1, qform_code=1, pixdim=probe.spacing)
    volume = decode_nifti(path.read_bytes(), str(path), conflicted_headers="refuse")
    assert volume.header.conflict == "" and volume.orientation == "RAS"


def _rotation_z(degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    out = np.eye(4)
    out[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    return out


def _shifted(mm: float) -> np.ndarray:
    out = np.eye(4)
    out[0, 3] = mm
    return out


@pytest.mark.parametrize(
    "change, conflicted, words",
    [
        (_shifted(0.5), False, ""),
        (_shifted(2.0), True, "origins 2.0 mm apart"),
        (_rotation_z(0.2), False, ""),
        (_rotation_z(5.0), True, "directions differ"),
        (np.diag([1.0, 1.0, 1.005, 1.0]), False, ""),
        (np.diag([1.0, 1.0, 1.1, 1.0]), True, "voxel sizes"),
        (np.diag([1.0, -1.0, 1.0, 1.0]), True, "axis j points the opposite way"),
    ],
    ids=["0.5mm", "2mm", "0.2deg", "5deg", "0.5%", "10%", "j-flip"],
)
def test_the_tolerance_separates_rounding_from_disagreement(tmp_path, change, conflicted, words):
    probe = make_probe_volume("LPS")
    truth = ras_affine(probe)
    centred = np.eye(4)
    centred[:3, 3] = -(np.diag([-1.0, -1.0, 1.0]) @ PROBE_CENTER_LPS)
    other = np.linalg.inv(centred) @ change @ centred @ truth  # the change about the probe's centre
    path = write_nifti(tmp_path / "t.nii", probe.array, sform=other, qform=truth, sform_code=2, qform_code=1)
    geometry = header_geometry(parse_nifti_header(path.read_bytes()[:540]))
    assert bool(geometry.conflict) == conflicted, geometry.conflict
    assert words in geometry.conflict


@pytest.mark.parametrize(
    "srow, error, words",
    [
        ([[np.nan, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], InvalidVolume, "non-finite"),
        ([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], InvalidVolume, "no extent"),
    ],
    ids=["nan-sform", "zero-column"],
)
def test_an_unusable_chosen_transform_is_a_typed_error(tmp_path, srow, error, words):
    probe = make_probe_volume("LPS")
    sform = np.vstack([np.asarray(srow, dtype=float), [0, 0, 0, 1]])
    path = write_nifti(tmp_path / "bad.nii", probe.array, sform=sform, qform=ras_affine(probe), sform_code=1, qform_code=1,
                       pixdim=probe.spacing)
    with pytest.raises(error, match=words) as caught:
        load_volume(path)
    assert str(path) in str(caught.value)
