"""The prepared GPU run (scripts/gpu/figures.sh) rehearsed on the CPU at tiny size: every part runs
through the real servers and writes its JSON. Its figures mean nothing on a CPU; that it runs,
end to end, with the arguments the GPU host will use, is what is checked."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="needs transformers: pip install -e .[test]")
pytestmark = pytest.mark.slow


def test_the_gpu_figures_script_rehearses_on_cpu(repo_root: Path, tmp_path: Path):
    out = tmp_path / "figures"
    env = {**os.environ, "SIZE": "tiny", "OUT": str(out), "BENCH": str(Path(sys.executable).parent / "bench")}
    result = subprocess.run(["bash", str(repo_root / "scripts" / "gpu" / "figures.sh")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no NVIDIA GPU visible" in (out / "gpu.txt").read_text() or "GPU" in (out / "gpu.txt").read_text()
    for model in ("medgemma", "lingshu"):
        rows = json.loads((out / f"{model}.json").read_text())
        assert {(r["reuse"], r["batch_size"]) for r in rows} == {(False, 1), (False, 2), (True, 1), (True, 2)}
        assert all(r["questions"] == 6 and r["questions_per_s"] > 0 for r in rows)
    assert json.loads((out / "ingest.json").read_text())


def test_the_gpu_figures_script_refuses_an_unknown_size(repo_root: Path, tmp_path: Path):
    result = subprocess.run(["bash", str(repo_root / "scripts" / "gpu" / "figures.sh")], cwd=tmp_path,
                            env={**os.environ, "SIZE": "huge", "OUT": str(tmp_path / "o")}, capture_output=True, text=True)
    assert result.returncode == 2 and "SIZE must be full or tiny" in result.stderr
