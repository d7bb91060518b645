"""Loading, validating and fingerprinting CT-SpatialVQA; fetching it by URL with a pinned sha256."""
from __future__ import annotations

import hashlib
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ctbench.datasets import categories
from ctbench.datasets.ct_spatialvqa import prepare_ct_spatialvqa, validate_dataset
from ctbench.datasets.fetch import ChecksumMismatch, FetchError, fetch_url
from ctbench.datasets.manifest import dataset_manifest
from ctbench.datasets.qa_items import load_dataset
from ctbench.errors import DatasetError


def _write_json(path, volumes):
    path.write_text(json.dumps({v: {"qa_pairs": pairs} for v, pairs in volumes.items()}))
    return path


PAIRS = {
    "valid_1_a_1.nii.gz": [
        {"question": "Which side is the nodule on?", "answer": "Left.", "category": ["Laterality & Bilateral Symmetry"]},
        {"question": "Where is the effusion?", "answer": "Right base.", "category": ["Medial-Lateral Orientation"]},
    ],
    "valid_2_a_1.nii.gz": [{"question": "Which lobe?", "answer": "Upper.", "category": ["longitudinal"]}],
}


@pytest.mark.parametrize(
    "label, canonical",
    [
        ("Medial-Lateral Orientation", categories.CENTRICITY),
        ("medial-lateral orientation (centricity)", categories.CENTRICITY),
        ("Adjacency and Containment", categories.ADJACENCY),
        ("Longitudinal Position", categories.LONGITUDINAL),
        ("extent", categories.EXTENT),
        ("Anterior-Posterior Relations", categories.DEPTH),
    ],
)
def test_near_miss_category_spellings_map_to_the_canonical_six(label, canonical):
    assert categories.normalize_category(label) == canonical


@pytest.mark.parametrize("label", ["Size", "Temporal change", ""])
def test_unknown_categories_map_to_nothing(label):
    assert categories.normalize_category(label) is None


def test_validation_normalises_categories_and_counts_mappings(tmp_path):
    dataset = load_dataset(_write_json(tmp_path / "qa.json", PAIRS))
    fixed, report = validate_dataset(dataset)
    assert report.ok
    assert fixed.items[1].categories == (categories.CENTRICITY,)
    assert fixed.items[2].categories == (categories.LONGITUDINAL,)
    assert report.mapped_categories == {
        f"Medial-Lateral Orientation -> {categories.CENTRICITY}": 1,
        f"longitudinal -> {categories.LONGITUDINAL}": 1,
    }


@pytest.mark.parametrize(
    "pairs, policy, expect_error",
    [
        ([{"question": "Where is it?", "answer": "L"}, {"question": "where is  it", "answer": "R"}], "error", "duplicate of"),
        ([{"question": "Where is it?", "answer": "L"}, {"question": "  ", "answer": "R"}], "error", "empty question"),
        ([{"question": "Where?", "answer": "L", "category": ["Size"]}], "error", "unknown spatial category"),
    ],
)
def test_bad_datasets_are_refused_with_the_question_id(tmp_path, pairs, policy, expect_error):
    dataset = load_dataset(_write_json(tmp_path / "qa.json", {"valid_1_a_1.nii.gz": pairs}))
    _, report = validate_dataset(dataset, duplicates=policy)
    assert not report.ok
    assert expect_error in report.errors[0] and "valid_1_a_1.nii.gz::" in report.errors[0]


def test_duplicates_can_be_downgraded_to_warnings(tmp_path):
    pairs = [{"question": "Where is it?", "answer": "L"}, {"question": "Where is it?", "answer": "L"}]
    dataset = load_dataset(_write_json(tmp_path / "qa.json", {"valid_1_a_1.nii.gz": pairs}))
    _, report = validate_dataset(dataset, duplicates="warn")
    assert report.ok and report.duplicates == 1 and "duplicate" in report.warnings[0]


def test_missing_volumes_are_listed_when_checked(tmp_path):
    dataset = load_dataset(_write_json(tmp_path / "qa.json", PAIRS))
    (tmp_path / "valid_1_a_1.nii.gz").write_bytes(b"")
    _, report = validate_dataset(dataset, check_volumes=True)
    assert report.missing_volumes == ["valid_2_a_1.nii.gz"]
    assert "1 of 2 volume(s) not found" in report.errors[0]


def test_manifest_is_the_same_for_json_and_jsonl_forms(tmp_path):
    source = _write_json(tmp_path / "qa.json", PAIRS)
    out = tmp_path / "prepared"
    manifest = prepare_ct_spatialvqa(str(source), out)
    reloaded = load_dataset(out / "dataset.jsonl")
    assert dataset_manifest(reloaded)["sha256"] == manifest["sha256"]
    assert manifest["n_questions"] == 3 and manifest["n_volumes"] == 2
    assert manifest["per_category"][categories.CENTRICITY] == 1
    assert [i.question_id for i in reloaded.items] == ["valid_1_a_1.nii.gz::0", "valid_1_a_1.nii.gz::1", "valid_2_a_1.nii.gz::0"]


def test_prepare_refuses_an_invalid_dataset_and_writes_nothing(tmp_path):
    pairs = {"valid_1_a_1.nii.gz": [{"question": "Q?", "answer": "A"}, {"question": "q", "answer": "B"}]}
    with pytest.raises(DatasetError, match="1 validation error"):
        prepare_ct_spatialvqa(str(_write_json(tmp_path / "qa.json", pairs)), tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_published_benchmark_validates_with_the_documented_counts(published_dir, tmp_path):
    manifest = prepare_ct_spatialvqa(str(published_dir / "qa_pairs_with_categories.json"), tmp_path)
    assert (manifest["n_questions"], manifest["n_volumes"]) == (9077, 1601)
    assert manifest["validation"]["duplicates"] == 0
    assert manifest["validation"]["uncategorised"] == 9
    assert set(manifest["per_category"]) == set(categories.CATEGORIES) | {"(none)"}


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_by_url_checks_the_pinned_sha256(file_server, tmp_path):
    root, url = file_server
    _write_json(root / "qa_pairs.json", PAIRS)
    digest = hashlib.sha256((root / "qa_pairs.json").read_bytes()).hexdigest()
    manifest = prepare_ct_spatialvqa(f"{url}/qa_pairs.json", tmp_path / "out", sha256=digest)
    assert manifest["n_questions"] == 3
    assert (tmp_path / "out" / "source" / "qa_pairs.json").is_file()


def test_fetch_with_a_wrong_checksum_keeps_nothing(file_server, tmp_path):
    root, url = file_server
    (root / "qa_pairs.json").write_text("{}")
    with pytest.raises(ChecksumMismatch, match="the file was not kept"):
        fetch_url(f"{url}/qa_pairs.json", tmp_path / "qa_pairs.json", "0" * 64)
    assert list(tmp_path.glob("qa_pairs.json*")) == []


def test_fetch_of_a_missing_file_says_so(file_server, tmp_path):
    _, url = file_server
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_url(f"{url}/nope.json", tmp_path / "nope.json", "0" * 64)


def test_fetch_without_a_pin_is_refused(tmp_path):
    with pytest.raises(FetchError, match="no sha256 pinned"):
        fetch_url("http://127.0.0.1:9/x.json", tmp_path / "x.json", None)
