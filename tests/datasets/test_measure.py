"""`bench data qa measure`: label tables, quantities in patient space, and the phantom's label
maps measured back into the generator's geometry."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ctbench.cli import main
from ctbench.datasets.measure.build import build_measured_dataset
from ctbench.datasets.measure.label_table import LabelTable, Structure, load_label_table
from ctbench.datasets.measure.quantities import LabelMap
from ctbench.datasets.phantom.anatomy import Grid
from ctbench.datasets.phantom.generate import SIZES, PhantomConfig, generate
from ctbench.datasets.qa_items import load_dataset
from ctbench.errors import DatasetError
from ctbench.preprocess.volume import Volume, load_volume, save_volume

TABLE = LabelTable((Structure(1, "box", "", "organ"), Structure(2, "cube", "", "lesion"), Structure(3, "ring", "", "organ")))


# --- label tables ----------------------------------------------------------------------------
def test_label_table_reads_json_and_csv_alike(tmp_path):
    json_path = TABLE.write(tmp_path / "t.json")
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("value,name,laterality,kind\n1,box,,organ\n2,cube,,lesion\n3,ring,,organ\n")
    assert load_label_table(json_path) == load_label_table(csv_path) == TABLE


@pytest.mark.parametrize("content, suffix, message", [
    ('{"labels": [{"value": 0, "name": "x"}]}', ".json", "0 is background"),
    ('{"labels": [{"value": "a", "name": "x"}]}', ".json", "'value' must be an integer"),
    ('{"labels": [{"value": 1}]}', ".json", "'name' is missing"),
    ('{"labels": [{"value": 1, "name": "x", "kind": "tumour"}]}', ".json", "'kind' must be one of"),
    ('{"labels": [{"value": 1, "name": "x", "laterality": "up"}]}', ".json", "'laterality'"),
    ('{"labels": [{"value": 1, "name": "x"}, {"value": 1, "name": "y"}]}', ".json", "duplicate label value"),
    ('{"labels": [{"value": 1, "name": "x"}, {"value": 2, "name": "x"}]}', ".json", "duplicate label name"),
    ('{"labels": []}', ".json", "no labels"),
    ('{"labels": [', ".json", "malformed JSON"),
    ("label,name\n1,x\n", ".csv", "missing ['value']"),
])
def test_bad_label_tables_are_typed_errors_saying_what(tmp_path, content, suffix, message):
    path = tmp_path / f"table{suffix}"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_label_table(path)


# --- quantities ------------------------------------------------------------------------------
def _two_boxes(direction=np.eye(3)) -> Volume:
    """box: i 2..5, j 2..5, k 2..3 (4x4x2 voxels); cube: i 8..9, j 3..4, k 2..3 (2x2x2), spacing (1, 2, 3)."""
    array = np.zeros((8, 12, 14), dtype=np.uint8)  # k, j, i
    array[2:4, 2:6, 2:6] = 1
    array[2:4, 3:5, 8:10] = 2
    return Volume(array, spacing=(1.0, 2.0, 3.0), origin=(10.0, 20.0, 30.0), direction=direction)


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0]), np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1.0]])],
                         ids=["LPS", "RAS", "PLI-permuted"])
def test_quantities_follow_the_header_in_patient_space(direction):
    volume = _two_boxes(direction)
    m = LabelMap(volume, TABLE)
    box, cube = m.structure("box"), m.structure("cube")
    assert box.voxels == 32 and box.volume_ml == pytest.approx(32 * 6 / 1000)
    expected_centroid = volume.index_to_lps(np.array([3.5, 3.5, 2.5]))
    assert np.allclose(box.centroid, expected_centroid)
    # extent along each index axis is n_voxels * spacing, placed on the LPS axis the header maps it to
    index_extent = np.array([4 * 1.0, 4 * 2.0, 2 * 3.0])
    assert np.allclose(box.extent_mm, np.abs(direction) @ index_extent)
    pair = m.pair("box", "cube")
    assert pair.centroid_distance_mm == pytest.approx(np.linalg.norm(box.centroid - cube.centroid))
    assert pair.surface_distance_mm == pytest.approx(3.0)  # i 5 -> i 8 at 1 mm
    assert not pair.contact and not pair.a_within_b
    assert m.structure("ring") is None  # in the table, not in the map


def test_contact_and_containment():
    array = np.zeros((9, 9, 9), dtype=np.uint8)
    array[1:8, 1:8, 1:8] = 3  # ring
    array[3:6, 3:6, 3:6] = 2  # cube inside it
    array[0:2, 0:2, 0:2] = 1  # box touching ring's corner, on the image's edge
    m = LabelMap(Volume(array), TABLE)
    inside = m.pair("cube", "ring")
    assert inside.contact and inside.a_within_b and not inside.b_within_a
    assert inside.surface_distance_mm == pytest.approx(1.0)
    edge = m.pair("box", "ring")
    assert edge.contact and not edge.a_within_b  # on the image's edge: within nothing


@pytest.mark.parametrize("array, message", [
    (np.full((4, 4, 4), 1.5, dtype=np.float32), "non-integer"),
    (np.full((4, 4, 4), -1, dtype=np.int16), "negative"),
])
def test_bad_label_maps_are_typed_errors(array, message):
    with pytest.raises(DatasetError, match=message):
        LabelMap(Volume(array), TABLE, "bad.nii.gz")


# --- the phantom's label maps --------------------------------------------------------------
@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("phantom"), PhantomConfig(n_volumes=4)).parent


@pytest.fixture(scope="module")
def measured(phantom, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("measured")
    build_measured_dataset(phantom / "volumes", phantom / "labels", phantom / "labels" / "label_table.json", out)
    return out


def _sphere_voxels(center, radius) -> np.ndarray:
    """LPS centres of the canonical grid's voxels inside a sphere: the generator's own rule."""
    x, y, z = Grid(**SIZES["small"]).axes()
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
    inside = (X - center[0]) ** 2 + (Y - center[1]) ** 2 + (Z - center[2]) ** 2 <= radius**2
    return np.stack([X[inside], Y[inside], Z[inside]], axis=1)


def test_label_maps_stay_outside_the_served_volumes(phantom, measured):
    assert sorted(p.name for p in (phantom / "volumes").iterdir()) == sorted(
        p.name for p in (phantom / "labels").iterdir() if p.name != "label_table.json")
    dataset = load_dataset(measured / "dataset.jsonl", phantom / "volumes")
    for item in dataset.items:
        path = dataset.volume_path(item.image_path).resolve()
        assert path.parent == (phantom / "volumes").resolve()
        assert load_volume(path).array.dtype == np.int16  # a CT volume, not a label map


def test_measured_answers_match_the_generators_geometry(phantom, measured):
    truth = json.loads((phantom / "ground_truth.json").read_text())
    measurements = json.loads((measured / "measurements.json").read_text())
    names = {"nodule": "pulmonary nodule", "cyst": "renal cyst", "abdominal_lesion": "hypodense abdominal lesion"}
    spacing = SIZES["small"]["spacing"]
    for volume, entry in truth.items():
        got = measurements[volume]["structures"]
        for lesion in entry["lesions"]:
            voxels = _sphere_voxels(lesion["center"], lesion["radius"])
            m = got[names[lesion["name"]]]
            assert m["voxels"] == len(voxels), (volume, lesion["name"])
            assert m["volume_ml"] == pytest.approx(len(voxels) * np.prod(spacing) / 1000, abs=1e-4)
            assert np.allclose(m["centroid_lps_mm"], voxels.mean(axis=0), atol=2e-3)  # whatever the orientation
            span = voxels.max(axis=0) - voxels.min(axis=0) + np.array(spacing)
            assert np.allclose([m["extent_mm"][a] for a in ("left_right", "anterior_posterior", "craniocaudal")], span, atol=2e-3)
        design = entry["design"]
        kidney = "left kidney" if design["cyst_left"] else "right kidney"
        lung = "left lung" if design["nodule_left"] else "right lung"
        pairs = {(p["a"], p["b"]): p for p in measurements[volume]["pairs"]}
        cyst_pair = pairs.get((kidney, "renal cyst")) or pairs[("renal cyst", kidney)]
        assert cyst_pair["contact"] and (cyst_pair["a_within_b"] if cyst_pair["a"] == "renal cyst" else cyst_pair["b_within_a"])
        nodule_pair = pairs.get((lung, "pulmonary nodule"))
        assert nodule_pair["contact"]
        if not design["abutting"]:
            assert nodule_pair["b_within_a"]  # the nodule lies within its lung


def test_comparison_answers_match_the_design(phantom, measured):
    truth = json.loads((phantom / "ground_truth.json").read_text())
    dataset = load_dataset(measured / "dataset.jsonl", phantom / "volumes")
    checked = 0
    for item in dataset.items:
        design = truth[item.case_id]["design"]
        if item.question == "Which lies further to the patient's left, the pulmonary nodule or the renal cyst?":
            if design["nodule_left"] != design["cyst_left"]:
                assert item.answer == ("the pulmonary nodule" if design["nodule_left"] else "the renal cyst")
                checked += 1
        if item.question == "Which is larger, the pulmonary nodule or the renal cyst?":
            assert item.answer == ("the pulmonary nodule" if design["nodule_larger"] else "the renal cyst")
            checked += 1
        if item.question == "Is the renal cyst contained within the left kidney?":
            assert item.answer == ("yes" if design["cyst_left"] else "no")
            checked += 1
    assert checked >= 8


def test_questions_carry_value_unit_and_the_templates_forms(measured):
    rows = [json.loads(line) for line in (measured / "dataset.jsonl").read_text().splitlines()]
    open_rows = [r for r in rows if not r["options"]]
    assert open_rows and all(r["answer"] == f"{r['answer_value']:.1f} {r['answer_unit']}" for r in open_rows)
    assert {r["answer_unit"] for r in open_rows} == {"mL", "mm"}
    yes_no = [r for r in rows if r["options"] == ["yes", "no"]]
    larger = [r for r in yes_no if r["question_type"] == "measured_larger"]
    assert sum(r["answer"] == "yes" for r in larger) * 2 == len(larger)  # asked both ways
    assert any(r["options"] and r["options"] != ["yes", "no"] for r in rows)


def test_manifest_records_label_table_and_version_and_output_is_deterministic(phantom, measured, tmp_path):
    again = tmp_path / "again"
    build_measured_dataset(phantom / "volumes", phantom / "labels", phantom / "labels" / "label_table.json", again)
    for name in ("dataset.jsonl", "measurements.json", "manifest.json"):
        assert (again / name).read_bytes() == (measured / name).read_bytes(), name
    manifest = json.loads((measured / "manifest.json").read_text())
    assert manifest["measure"]["version"] == "1"
    assert [s["name"] for s in manifest["measure"]["label_table"]["labels"]][:2] == ["left lung", "right lung"]
    assert manifest["n_volumes"] == 4 and manifest["n_questions"] == sum(1 for _ in (measured / "dataset.jsonl").open())


def test_label_map_off_its_volumes_grid_is_a_typed_error(phantom, tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    for path in sorted((phantom / "volumes").iterdir()):
        volume = load_volume(phantom / "labels" / path.name)
        shifted = Volume(volume.array, volume.spacing, tuple(o + 5.0 for o in volume.origin), volume.direction)
        save_volume(shifted, labels / path.name)
    with pytest.raises(DatasetError, match="not on its volume's grid: origin"):
        build_measured_dataset(phantom / "volumes", labels, phantom / "labels" / "label_table.json", tmp_path / "out")


def test_volume_without_label_map_is_a_typed_error(phantom, tmp_path):
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError, match="4 volume.s. have no label map"):
        build_measured_dataset(phantom / "volumes", tmp_path / "labels", phantom / "labels" / "label_table.json", tmp_path / "out")


def test_bench_data_qa_measure_cli(phantom, tmp_path):
    res = CliRunner().invoke(main, ["data", "qa", "measure", "--volumes", str(phantom / "volumes"), "--labels",
                                    str(phantom / "labels"), "--label-table", str(phantom / "labels" / "label_table.json"),
                                    "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "questions over 4 volumes" in res.output and "measured_volume" in res.output
    bad = CliRunner().invoke(main, ["data", "qa", "measure", "--volumes", str(phantom / "volumes"), "--labels",
                                    str(tmp_path), "--label-table", str(phantom / "labels" / "label_table.json"),
                                    "--out", str(tmp_path / "n")])
    assert bad.exit_code == 1 and "have no label map" in bad.output


@pytest.mark.parametrize("seed", range(5))
def test_surface_distance_equals_brute_force_over_all_voxels(seed):
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(seed)
    array = np.zeros((12, 14, 16), dtype=np.uint8)
    for value in (1, 2, 3):  # scattered voxels: many small pieces, worst case for the pruning
        k, j, i = (rng.integers(0, n, 25) for n in array.shape)
        array[k, j, i] = value
    volume = Volume(array, spacing=(0.7, 1.1, 2.5), direction=np.diag([-1.0, 1.0, -1.0]))
    m = LabelMap(volume, TABLE)
    points = {v: volume.index_to_lps(np.argwhere(array == v)[:, ::-1].astype(float)) for v in (1, 2, 3)}
    for (a, va), (b, vb) in [(("box", 1), ("cube", 2)), (("cube", 2), ("ring", 3)), (("box", 1), ("ring", 3))]:
        assert m.pair(a, b).surface_distance_mm == pytest.approx(cdist(points[va], points[vb]).min())


def test_bench_perf_measure_reports_structures_per_second():
    res = CliRunner().invoke(main, ["perf", "measure", "--repeats", "1", "--slices", "24", "--json"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.output)
    assert figures["shape_ijk"] == [512, 512, 24]
    assert figures["structures"] >= 6 and figures["structures_per_s"] > 0 and figures["questions"] > 0
