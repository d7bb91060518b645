"""scripts/stack-venv.sh refuses, before it makes anything, an interpreter that is not there
(PYTHON_FOR_STACK) and a replacement pin the requirements have no line for."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "stack-venv.sh"


def _run(tmp_path: Path, *pins: str, python: str | None = None) -> subprocess.CompletedProcess:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# a server's stack\ntorch==2.6.0\nnumpy==1.26.4\n")
    env = dict(os.environ)
    if python is not None:
        env["PYTHON_FOR_STACK"] = python
    return subprocess.run(["bash", str(SCRIPT), str(requirements), str(tmp_path / "venv"), *pins],
                          capture_output=True, text=True, env=env, timeout=60)


def test_a_missing_python_for_the_stack_is_named(tmp_path):
    absent = str(tmp_path / "nowhere" / "python3.12")
    done = _run(tmp_path, python=absent)
    assert done.returncode == 2, done.stderr
    assert f"PYTHON_FOR_STACK={absent}: no such interpreter" in done.stderr
    assert not (tmp_path / "venv").exists()


def test_a_pin_without_a_line_to_replace_is_refused(tmp_path):
    done = _run(tmp_path, "numpy==2.1.3", "monai==1.5.1")
    assert done.returncode == 2, done.stderr
    assert "monai==1.5.1: " in done.stderr and "has no 'monai==' line to replace" in done.stderr
    assert not (tmp_path / "venv").exists() and not (tmp_path / "venv.pins.txt.new").exists()
