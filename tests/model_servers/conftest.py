"""Shared fixtures: one phantom volume, tiny random-weight MedGemma / Lingshu weights
directories (built offline from configs), and a helper that serves a model on loopback."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> dict:
    from ctbench.datasets.phantom.generate import PhantomConfig, generate

    root = tmp_path_factory.mktemp("phantom")
    qa = json.loads(generate(root, PhantomConfig(n_volumes=1)).read_text())
    _name, entry = next(iter(qa.items()))
    path = root / entry["image_path"]
    return {
        "root": root,
        "relative": entry["image_path"],
        "path": path,
        "volume_id": "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(),
        "questions": [q["question"] for q in entry["qa_pairs"]],
    }


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from ctbench.model_servers.vlm_common.random_weights import build_lingshu_dir, build_medgemma_dir

    root = tmp_path_factory.mktemp("weights")
    return {"medgemma": build_medgemma_dir(root / "medgemma"), "lingshu": build_lingshu_dir(root / "lingshu")}
