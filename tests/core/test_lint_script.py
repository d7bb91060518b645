"""scripts/lint.py: mypy's output becomes line-free baseline entries in checkout paths, and the
baseline only shrinks (a new error and a fixed-but-listed one both fail)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lint():
    spec = importlib.util.spec_from_file_location("ctbench_lint_script", REPO / "scripts" / "lint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linked_tree_maps_back_to_the_checkout(lint, tmp_path):
    top = lint.package_tree(tmp_path)
    assert (top / "runners" / "run.py").resolve() == REPO / "runners" / "run.py"
    assert (top / "project.py").resolve() == REPO / "ctbench" / "project.py"
    output = (
        "ctbench/runners/run.py:12: error: Incompatible types in assignment  [assignment]\n"
        "ctbench/project.py:3: note: a note, not an error\n"
        f"{top}/evaluation/scoring.py:40: error: Missing return  [return]\n"
    )
    assert lint.entries(output, top) == [
        "evaluation/scoring.py: [return] Missing return",
        "runners/run.py: [assignment] Incompatible types in assignment",
    ]


def test_baseline_comparison_counts_repeats(lint):
    known = ["a.py: [x] m", "a.py: [x] m", "b.py: [y] n"]
    assert lint.compare(known, known) == ([], [])
    new, fixed = lint.compare(known + ["a.py: [x] m"], known)
    assert new == ["a.py: [x] m"] and fixed == []
    new, fixed = lint.compare(["a.py: [x] m"], known)
    assert new == [] and fixed == ["a.py: [x] m", "b.py: [y] n"]
