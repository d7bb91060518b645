"""The phantom benchmark: deterministic, balanced, stored in several orientations, and
answerable from voxels (the geometric expert gets everything right)."""
from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pytest

from ctbench.datasets.phantom.generate import PhantomConfig, design, generate
from ctbench.datasets.qa_items import load_dataset
from ctbench.model_servers.baselines.geometric import analyse, answer_question
from ctbench.preprocess.volume import load_volume


def test_same_config_gives_identical_files(tmp_path):
    a = generate(tmp_path / "a", PhantomConfig(n_volumes=2))
    b = generate(tmp_path / "b", PhantomConfig(n_volumes=2))
    assert a.read_bytes() == b.read_bytes()
    for name in ("phantom_000.nii.gz", "phantom_001.nii.gz"):
        for folder in ("volumes", "labels"):  # the label maps too
            assert (a.parent / folder / name).read_bytes() == (b.parent / folder / name).read_bytes()


def test_every_answer_is_balanced_across_the_set(phantom_small):
    dataset = load_dataset(phantom_small)
    answers = defaultdict(Counter)
    for item in dataset.items:
        answers[item.question][item.answer] += 1
    for counter in answers.values():
        assert len(set(counter.values())) == 1, counter  # each option equally often


def test_volumes_are_stored_in_different_orientations(phantom_small):
    qa = json.loads(phantom_small.read_text())
    codes = {load_volume(phantom_small.parent / entry["image_path"]).orientation for entry in qa.values()}
    assert codes == {entry["storage_orientation"] for entry in qa.values()}
    assert len(codes) == 4


def test_air_outside_the_body_and_tissue_inside(phantom_small):
    volume = load_volume(phantom_small.parent / "volumes" / "phantom_000.nii.gz")
    assert volume.array.dtype == np.int16
    assert volume.array[0, 0, 0] == -1000
    k, j, i = (s // 2 for s in volume.array.shape)
    assert -200 < volume.array[k, j, i] < 800


@pytest.mark.parametrize("seed", [0, 11])
def test_geometric_expert_answers_every_question_from_voxels(tmp_path, seed):
    qa_path = generate(tmp_path, PhantomConfig(n_volumes=6, seed=seed))
    wrong = []
    for name, entry in json.loads(qa_path.read_text()).items():
        findings = analyse(load_volume(qa_path.parent / entry["image_path"]))
        for pair in entry["qa_pairs"]:
            got = answer_question(pair["question"], findings)
            if got != pair["answer"]:
                wrong.append((name, entry["storage_orientation"], pair["question"], got, pair["answer"]))
    assert not wrong


@pytest.mark.parametrize("bad", [dict(n_volumes=0), dict(size="huge")])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        PhantomConfig(**bad)


def test_design_balances_each_attribute():
    rows = design(PhantomConfig(n_volumes=8))
    for key in ("nodule_left", "abutting", "in_liver", "nodule_larger"):
        assert sum(r[key] for r in rows) == 4
