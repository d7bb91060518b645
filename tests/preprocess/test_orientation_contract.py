"""The orientation contract: for every preset and variant, and every storage orientation of the
probe, each marker (left, anterior, superior) lands where the spec's declared orientation and
axis order say it must. Failure messages say which marker went where."""
from __future__ import annotations

import numpy as np
import pytest

from ctbench.preprocess.input_spec import PRESETS, InputSpec, get_spec, preset_names
from ctbench.preprocess.loading import load
from ctbench.preprocess.orientation import reorient
from ctbench.preprocess.orientation_probe import (
    MARKERS,
    check_markers,
    expected_marker_positions,
    make_probe_volume,
)
from ctbench.preprocess.presets import _rgb_slices
from ctbench.preprocess.volume import Volume, save_volume

STORAGE = ["LPS", "RAS", "PIL"]  # SimpleITK's default, nibabel's, and a permuted one
SPECS = [(name, variant) for name in preset_names() for variant in sorted(PRESETS.get(name).variants)]


@pytest.fixture(scope="module")
def probes():
    return {code: make_probe_volume(code) for code in STORAGE}


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("name, variant", SPECS)
def test_markers_land_where_the_spec_says(probes, name, variant, storage):
    spec = get_spec(name, variant)
    probe = probes[storage]
    output = spec.apply(probe)
    problems = check_markers(spec, probe, output)
    assert not problems, f"{name}/{variant}, probe stored {storage}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name, variant", [("merlin", "authors"), ("medgemma", "published"), ("vila-m3", "authors")])
def test_contract_holds_through_a_nifti_file_on_disk(tmp_path, name, variant):
    probe = make_probe_volume("PIL")
    path = tmp_path / "probe.nii.gz"
    save_volume(probe, path)
    loaded = load(path)
    assert loaded.orientation == "PIL"
    spec = get_spec(name, variant)
    assert check_markers(spec, loaded, spec.apply(loaded)) == []


@pytest.mark.parametrize("code", ["RAS", "PIL", "SAR", "ILP"])
def test_probe_is_one_physical_image_in_every_storage_orientation(code):
    assert np.array_equal(reorient(make_probe_volume(code), "LPS").array, make_probe_volume("LPS").array)


def test_probe_markers_are_distinct_and_inside_every_window():
    assert len({m.distance_mm for m in MARKERS}) == 3
    assert [m.hu for m in MARKERS] == sorted(m.hu for m in MARKERS)
    assert all(-150 <= m.hu <= 150 for m in MARKERS)  # VILA [-150,250] and Med3DVLM [-1350,150] keep all three apart


def test_single_middle_slice_cannot_show_the_superior_marker():
    expected = expected_marker_positions(get_spec("vila-m3"), make_probe_volume("LPS"))
    assert expected["superior"] is None and expected["left"] is not None and expected["anterior"] is not None


def _mislabelled(spec: InputSpec, **changes) -> InputSpec:
    fields = dict(spec.to_dict().items())
    fields.update(changes)
    return InputSpec(**fields, build=spec.build)


@pytest.mark.parametrize(
    "name, changes, marker_hint",
    [
        ("merlin", {"orientation": "LAS"}, "left marker"),  # declared LAS, delivered RAS: left-right swapped
        ("m3d-lamed", {"orientation": "RPS"}, "left marker"),  # delivered LPS
        ("lingshu", {"orientation": "LAS"}, "anterior marker"),  # delivered LPS: rows flipped
        ("merlin", {"axis_order": "HWD"}, "marker"),  # delivered WHD: first two axes swapped
        ("radfm", {"axis_order": "WHD"}, "marker"),  # delivered HWD
    ],
)
def test_a_wrong_declaration_is_caught_and_named(name, changes, marker_hint):
    spec = get_spec(name)
    probe = make_probe_volume("RAS")
    problems = check_markers(_mislabelled(spec, **changes), probe, spec.apply(probe))
    assert problems and marker_hint in problems[0], problems


def test_a_left_right_flip_in_the_pipeline_is_reported_with_where_the_marker_went():
    spec = get_spec("lingshu")
    probe = make_probe_volume("LPS")
    flipped = spec.apply(probe)[:, :, ::-1]  # columns reversed: patient left now on the image's left
    problems = check_markers(spec, probe, flipped)
    assert any(p.startswith("left marker") and "axis 2 -: peak" in p and "axis 2 +" not in p for p in problems), problems


def test_expected_positions_come_from_declarations_not_the_pipeline():
    # A spec with the right declarations but a pipeline that forgets to reorient fails the contract.
    spec = get_spec("lingshu")
    broken = InputSpec(**spec.to_dict(), build=_rgb_slices("", 32, spec.windows))
    probe = make_probe_volume("RAS")
    assert check_markers(broken, probe, broken.apply(probe))


def test_probe_volume_is_a_valid_ct_like_volume():
    probe = make_probe_volume("LPS")
    assert isinstance(probe, Volume) and probe.array.dtype == np.int16
    assert set(np.unique(probe.array)) == {-1000, -100, 20, 140}


@pytest.mark.parametrize("name, variant", [("merlin", "authors"), ("medgemma", "authors"), ("radfm", "published")])
def test_contract_holds_through_a_dicom_series(tmp_path, write_dicom_series, name, variant):
    probe = make_probe_volume("LPS")  # axial DICOM slices are stored LPS
    write_dicom_series(tmp_path / "probe", probe.array, "1.2.826.0.1.3680043.2.1125.9.1", spacing=probe.spacing)
    loaded = load(tmp_path / "probe")
    assert loaded.orientation == "LPS" and np.allclose(loaded.spacing, probe.spacing)
    spec = get_spec(name, variant)
    assert check_markers(spec, loaded, spec.apply(loaded)) == []
