"""The committed generated code must be exactly what proto/generate.sh emits."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_committed_generated_code_is_not_stale(repo_root: Path, tmp_path: Path):
    pytest.importorskip("grpc_tools", reason="needs grpcio-tools (pip install -e '.[test]')")
    shutil.copytree(repo_root / "proto", tmp_path / "proto")
    # The interpreter running the tests (whose grpc_tools importorskip just found), not PATH's.
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(tmp_path / "proto" / "generate.sh"), str(tmp_path)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    generated = sorted(p.relative_to(tmp_path) for p in (tmp_path / "ctbench" / "v1").glob("*.py*"))
    assert generated, "generate.sh produced nothing"
    for relative in generated:
        committed = repo_root / relative
        assert committed.is_file(), f"{relative} is generated but not committed: run proto/generate.sh"
        assert committed.read_bytes() == (tmp_path / relative).read_bytes(), f"{relative} is stale: run proto/generate.sh"
