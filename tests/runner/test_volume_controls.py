"""The volume controls' transforms and question changes (`runners/controls/`), on the phantom's
six storage orientations and on header variants (sform only, qform only, uint16 with scl_inter)."""
from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from ctbench.datasets.qa_items import QAItem
from ctbench.errors import InvalidVolume, PreflightError, UnknownName
from ctbench.runners.controls import parse_controls
from ctbench.runners.controls.laterality import flips_under_mirror, laterality_words, swap_laterality
from ctbench.runners.controls.nifti_voxels import read_nifti_voxels
from ctbench.runners.controls.prepare import mirrored_item
from ctbench.runners.controls.shuffle import patient_of, shuffle_assignment
from ctbench.runners.controls.transforms import blank, mirror_lr, noise

ORIENTATIONS = ("LPS", "RAS", "RPI", "PLS", "SRA", "LAI")


@pytest.fixture(scope="module")
def phantom6(tmp_path_factory):
    from ctbench.datasets.phantom.generate import PhantomConfig, generate

    qa = generate(tmp_path_factory.mktemp("phantom6"), PhantomConfig(n_volumes=6))
    return qa.parent


def _sitk(path):
    import SimpleITK as sitk

    return sitk.ReadImage(str(path))


def _lps_array(path) -> np.ndarray:
    """The volume resampled to LPS storage ([z, y, x], x running right to left of the patient)."""
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.DICOMOrient(_sitk(path), "LPS"))


def _volume(phantom6, v: int):
    return phantom6 / "volumes" / f"phantom_{v:03d}.nii.gz"


@pytest.mark.parametrize("v", range(6), ids=ORIENTATIONS)
def test_mirror_is_a_left_right_mirror_in_patient_space_whatever_the_storage(phantom6, tmp_path, v):
    source = _volume(phantom6, v)
    out = tmp_path / "mirrored.nii.gz"
    mirror_lr(read_nifti_voxels(source)).write(out)
    assert np.array_equal(_lps_array(out), np.flip(_lps_array(source), axis=2))
    # and the nodule the ground truth puts on one side is found on the other, in patient millimetres
    truth = json.loads((phantom6 / "ground_truth.json").read_text())[source.name]
    nodule = next(l for l in truth["lesions"] if l["name"] == "nodule")
    original, mirrored = _sitk(source), _sitk(out)
    size = np.array(original.GetSize()) - 1
    ends = [np.array(original.TransformContinuousIndexToPhysicalPoint([float(x) for x in size * s])) for s in (0, 1)]
    centre_x = (ends[0][0] + ends[1][0]) / 2
    point = np.array(nodule["center"], dtype=float)
    reflected = point.copy()
    reflected[0] = 2 * centre_x - point[0]
    assert mirrored[mirrored.TransformPhysicalPointToIndex(tuple(reflected))] == original[original.TransformPhysicalPointToIndex(tuple(point))]
    assert mirrored[mirrored.TransformPhysicalPointToIndex(tuple(point))] != original[original.TransformPhysicalPointToIndex(tuple(point))]


@pytest.mark.parametrize("v", range(6), ids=ORIENTATIONS)
def test_a_control_keeps_every_header_byte_and_mirroring_twice_gives_the_file_back(phantom6, tmp_path, v):
    source = _volume(phantom6, v)
    volume = read_nifti_voxels(source)
    once = mirror_lr(volume)
    assert once.head == volume.head and not np.array_equal(once.raw, volume.raw)
    twice = tmp_path / "twice.nii.gz"
    mirror_lr(once).write(twice)
    assert gzip.decompress(twice.read_bytes()) == gzip.decompress(source.read_bytes())


def _patched(source, out, **fields):
    """A copy of a NIfTI-1 file with header fields changed ({name: (offset, format, value)})."""
    data = bytearray(gzip.decompress(source.read_bytes()))
    for offset, fmt, value in fields.values():
        struct.pack_into("<" + fmt, data, offset, value)
    out.write_bytes(gzip.compress(bytes(data)))
    return out


@pytest.mark.parametrize("which", ["sform only", "qform only"])
def test_mirror_follows_the_transform_the_header_declares(phantom6, tmp_path, which):
    # phantom_004 is stored SRA: its left-right axis is the file's second (j), not the first
    fields = {"qform_code": (252, "h", 0)} if which == "sform only" else {"sform_code": (254, "h", 0)}
    source = _patched(_volume(phantom6, 4), tmp_path / "variant.nii.gz", **fields)
    out = tmp_path / "mirrored.nii.gz"
    volume = read_nifti_voxels(source)
    assert volume.lr_axis == 1
    mirror_lr(volume).write(out)
    assert np.array_equal(_lps_array(out), np.flip(_lps_array(source), axis=2))


def _uint16_with_intercept(phantom6, tmp_path):
    """phantom_001 stored as uint16 with scl_inter -1024 (HU = raw - 1024), as some scanners write."""
    volume = read_nifti_voxels(_volume(phantom6, 1))
    head = bytearray(volume.head)
    struct.pack_into("<hh", head, 70, 512, 16)
    struct.pack_into("<ff", head, 112, 1.0, -1024.0)
    raw = (volume.raw.astype(np.int32) + 1024).astype("<u2")
    path = tmp_path / "uint16.nii.gz"
    path.write_bytes(gzip.compress(bytes(head) + raw.tobytes()))
    return path


def test_blank_is_air_in_hu_whatever_the_storage_scaling(phantom6, tmp_path):
    import SimpleITK as sitk

    for source in (_volume(phantom6, 0), _uint16_with_intercept(phantom6, tmp_path)):
        out = tmp_path / "blank.nii.gz"
        blank(read_nifti_voxels(source)).write(out)
        original, air = _sitk(source), _sitk(out)
        assert np.all(sitk.GetArrayFromImage(air) == -1000)
        assert (air.GetSize(), air.GetSpacing(), air.GetOrigin(), air.GetDirection()) == \
               (original.GetSize(), original.GetSpacing(), original.GetOrigin(), original.GetDirection())


def test_mirror_of_a_scaled_uint16_volume_keeps_its_hu(phantom6, tmp_path):
    source = _uint16_with_intercept(phantom6, tmp_path)
    out = tmp_path / "mirrored.nii.gz"
    mirror_lr(read_nifti_voxels(source)).write(out)
    assert np.array_equal(_lps_array(out), np.flip(_lps_array(_volume(phantom6, 1)), axis=2))


def test_noise_is_seeded_per_volume_and_matches_the_volume_statistics(phantom6, tmp_path):
    volume = read_nifti_voxels(_volume(phantom6, 0))
    a, b, c = noise(volume, 0, "volumes/a.nii.gz"), noise(volume, 0, "volumes/a.nii.gz"), noise(volume, 1, "volumes/a.nii.gz")
    assert np.array_equal(a.raw, b.raw) and not np.array_equal(a.raw, c.raw)
    hu, noisy = volume.to_hu(), a.to_hu()
    assert abs(noisy.mean() - hu.mean()) < 5 and abs(noisy.std() - hu.std()) < 5
    a.write(tmp_path / "1.nii.gz")
    b.write(tmp_path / "2.nii.gz")
    assert (tmp_path / "1.nii.gz").read_bytes() == (tmp_path / "2.nii.gz").read_bytes()  # same bytes, same volume id


@pytest.mark.parametrize("content, why", [
    (b"not a volume at all", "cannot read as NIfTI"),
    (gzip.compress(b"\0" * 400), "not a NIfTI-1 or NIfTI-2 file"),
])
def test_a_file_that_is_not_nifti_is_refused_with_its_path(tmp_path, content, why):
    path = tmp_path / "bad.nii.gz"
    path.write_bytes(content)
    with pytest.raises(InvalidVolume, match=why) as info:
        read_nifti_voxels(path)
    assert str(path) in str(info.value)


def test_a_truncated_voxel_block_is_refused(phantom6, tmp_path):
    data = gzip.decompress(_volume(phantom6, 0).read_bytes())
    path = tmp_path / "short.nii.gz"
    path.write_bytes(gzip.compress(data[: len(data) // 2]))
    with pytest.raises(InvalidVolume, match="does not fit the file"):
        read_nifti_voxels(path)


# --- questions --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, swapped", [
    ("left", "right"),
    ("Right lower lobe", "Left lower lobe"),
    ("LEFT kidney", "RIGHT kidney"),
    ("a left-sided effusion, the right lung clear", "a right-sided effusion, the left lung clear"),
    ("bright, leftover", "bright, leftover"),  # whole words only
    ("the leftmost rib", "the rightmost rib"),
])
def test_laterality_words_swap_as_whole_words_keeping_case(text, swapped):
    assert swap_laterality(text) == swapped
    assert swap_laterality(swapped) == text


def test_only_an_answer_naming_one_side_flips():
    assert flips_under_mirror("in the left lung") and flips_under_mirror("Right")
    assert not flips_under_mirror("both left and right") and not flips_under_mirror("upper lobe")
    assert laterality_words("left and Right") == {"left", "right"}


def _item(question, answer, options=()):
    return QAItem("v.nii.gz::0", "v.nii.gz", "v.nii.gz", question, answer, tuple(options))


@pytest.mark.parametrize("item, answer, options", [
    (_item("Which lung contains the nodule?", "left", ["left", "right"]), "right", ("left", "right")),  # same options, same order
    (_item("Where is the lesion?", "The right lower lobe."), "The left lower lobe.", ()),
    (_item("Which structure holds the cyst?", "left kidney", ["left kidney", "liver"]), "right kidney", ("right kidney", "liver")),
    (_item("Is the nodule upper or lower?", "upper", ["upper", "lower"]), "upper", ("upper", "lower")),
    (_item("Which lungs are affected?", "both left and right", ["left", "right", "both left and right"]),
     "both left and right", ("left", "right", "both left and right")),
])
def test_the_mirrored_question_has_the_mirrored_answer(item, answer, options):
    mirrored = mirrored_item(item)
    assert (mirrored.answer, mirrored.options, mirrored.question) == (answer, options, item.question)


def test_a_yes_no_question_about_one_side_is_left_out_of_the_mirror():
    assert mirrored_item(_item("Is the nodule in the left lung?", "yes", ["yes", "no"])) is None


def test_control_names_come_repeated_or_comma_separated_and_unknown_ones_list_the_known():
    assert parse_controls(["mirror-lr,shuffle", "blank", "shuffle"]) == ["mirror-lr", "shuffle", "blank"]
    with pytest.raises(UnknownName, match="Available: mirror-lr, shuffle, blank, noise"):
        parse_controls(["mirror"])


# --- shuffle ----------------------------------------------------------------------------------
def _write_volumes(tmp_path, names_and_shapes):
    import SimpleITK as sitk

    volumes = {}
    for name, shape in names_and_shapes:
        path = tmp_path / name
        sitk.WriteImage(sitk.Image(list(shape), sitk.sitkInt16), str(path))
        volumes[name] = path
    return volumes


def test_shuffle_gives_every_volume_another_patients_volume_of_its_size_class(tmp_path):
    small = [(f"train_{p}_a_{r}.nii.gz", (8, 8, 8)) for p in range(4) for r in (1, 2)]
    large = [(f"valid_{p}_a_1.nii.gz", (32, 32, 32)) for p in range(3)]
    volumes = _write_volumes(tmp_path, small + large)
    assignment = shuffle_assignment(volumes, seed=0)
    assert sorted(assignment.values()) == sorted(volumes)  # a permutation: each volume shown once
    for image, donor in assignment.items():
        assert patient_of(donor) != patient_of(image)
        assert donor.startswith(image.split("_")[0])  # train (small) to train, valid (large) to valid
    assert shuffle_assignment(volumes, seed=0) == assignment
    assert shuffle_assignment(volumes, seed=1) != assignment


def test_shuffle_needs_two_patients(tmp_path):
    volumes = _write_volumes(tmp_path, [("train_7_a_1.nii.gz", (8, 8, 8)), ("train_7_a_2.nii.gz", (8, 8, 8))])
    with pytest.raises(PreflightError, match="at least two patients"):
        shuffle_assignment(volumes, seed=0)


def test_a_size_class_of_one_patient_joins_its_nearest_class(tmp_path):
    volumes = _write_volumes(tmp_path, [("a.nii.gz", (8, 8, 8)), ("b.nii.gz", (8, 8, 8)), ("c.nii.gz", (32, 32, 32))])
    assignment = shuffle_assignment(volumes, seed=0)
    assert all(donor != image for image, donor in assignment.items())
