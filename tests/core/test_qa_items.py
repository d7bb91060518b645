"""The CT-SpatialVQA-style loader: good forms, bad forms with file and line."""
from __future__ import annotations

import json

import pytest

from ctbench.datasets.qa_items import load_dataset
from ctbench.errors import DatasetError

GOOD = [
    ("published json", "qa.json", json.dumps({"v1.nii.gz": {"qa_pairs": [{"question": "a?", "answer": "x"}, {"question": "b?", "answer": "y"}]}}),
     ["v1.nii.gz::0", "v1.nii.gz::1"], "v1.nii.gz"),
    ("jsonl per question", "qa.jsonl", '{"case_id": "v1.nii.gz", "image_path": "d/v1.nii.gz", "question": "a?", "answer": "x"}\n\n{"case_id": "v1.nii.gz", "image_path": "d/v1.nii.gz", "question": "b?", "answer": "y"}\n',
     ["v1.nii.gz::0", "v1.nii.gz::1"], "d/v1.nii.gz"),
    ("options and categories", "qa.json", json.dumps({"v.nii.gz": {"image_path": "vols/v.nii.gz", "qa_pairs": [{"question": "l?", "answer": "left", "options": ["left", "right"], "category": "Laterality & Bilateral Symmetry"}]}}),
     ["v.nii.gz::0"], "vols/v.nii.gz"),
]


@pytest.mark.parametrize("name,filename,content,ids,image_path", GOOD, ids=[g[0] for g in GOOD])
def test_good_forms(tmp_path, name, filename, content, ids, image_path):
    (tmp_path / filename).write_text(content)
    dataset = load_dataset(tmp_path / filename)
    assert [i.question_id for i in dataset.items] == ids
    assert dataset.items[0].image_path == image_path
    assert dataset.volume_path(image_path) == tmp_path / image_path


BAD = [
    ("not an object", "qa.json", "[1, 2]", "expected an object of volume_name"),
    ("options not strings", "qa.json", json.dumps({"v": {"qa_pairs": [{"question": "q", "answer": "a", "options": [1]}]}}), "'options' must be a list of strings"),
    ("question not a string", "qa.jsonl", '{"case_id": "v", "question": 3, "answer": "a"}\n', "qa.jsonl:1: row: field 'question' must be a string (int)"),
    ("no case id", "qa.jsonl", '{"question": "q", "answer": "a"}\n', "qa.jsonl:1: row has neither 'case_id' nor 'image_path'"),
    ("empty", "qa.json", "{}", "dataset has no questions"),
]


@pytest.mark.parametrize("name,filename,content,message", BAD, ids=[b[0] for b in BAD])
def test_bad_forms_raise_with_location(tmp_path, name, filename, content, message):
    (tmp_path / filename).write_text(content)
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / filename)
    assert message in str(info.value)


_ROW = '{"case_id": "v", "question": "q", "answer": "a"'
BAD_BYTES = [
    # (id, file name, content, message: file and line, then what was wrong)
    ("non-UTF-8 jsonl", "qa.jsonl", (_ROW + "}\n" + _ROW + ', "x": "\xff"}\n').encode("latin-1"), "qa.jsonl:2: not UTF-8 text"),
    ("non-UTF-8 json", "qa.json", b'{"v": {"qa_pairs": [\n{"question": "\xe9", "answer": "a"}]}}', "qa.json:2: not UTF-8 text"),
    ("category a number", "qa.jsonl", (_ROW + ', "category": 5}\n').encode(), "qa.jsonl:1: row: 'category' must be a string or a list"),
    ("category true", "qa.json", json.dumps({"v": {"qa_pairs": [{"question": "q", "answer": "a", "category": True}]}}).encode(),
     "qa.json: volume 'v', pair 0: 'category' must be a string or a list"),
    ("question id an object", "qa.jsonl", (_ROW + ', "question_id": {"a": 1}}\n').encode(), "qa.jsonl:1: row: 'question_id' must be a string"),
    ("deep nesting jsonl", "qa.jsonl", (_ROW + "}\n" + "[" * 100_000 + "]" * 100_000 + "\n").encode(), "qa.jsonl:2: JSON nested too deeply"),
    ("deep nesting json", "qa.json", ('{"v": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(), "qa.json: JSON nested too deeply"),
]


@pytest.mark.parametrize("filename,content,message", [b[1:] for b in BAD_BYTES], ids=[b[0] for b in BAD_BYTES])
def test_hostile_files_raise_a_dataset_error_with_file_and_line(tmp_path, filename, content, message):
    (tmp_path / filename).write_bytes(content)
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / filename)
    assert message in str(info.value)


def test_published_benchmark_loads_with_its_ids(repo_root):
    path = repo_root.parent / "shared" / "data" / "ct-spatialvqa" / "qa_pairs.json"
    if not path.is_file():
        pytest.skip(f"needs the published benchmark at {path}")
    dataset = load_dataset(path)
    assert len(dataset.items) == 9077
    assert len({i.case_id for i in dataset.items}) == 1601
    assert dataset.items[0].question_id == "valid_1000_a_1.nii.gz::0"
