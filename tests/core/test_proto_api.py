"""The protocol is checked like a public API: buf lint, and buf breaking against the released v1
(proto/released/, one image per release; the checks run against the newest, and compatibility
with every release): a field or call may be added, never renumbered, retyped, renamed or removed."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tools import find_tool

PROTO = "ctbench/v1/answer_volume_question.proto"
RELEASES = sorted((Path(__file__).resolve().parents[2] / "proto" / "released").glob("ctbench-*.binpb"),
                  key=lambda p: tuple(int(x) for x in re.findall(r"\d+", p.stem)))
RELEASED = f"released/{RELEASES[-1].name}"  # the newest release


@pytest.fixture
def buf() -> str:
    path = find_tool("buf")
    if path is None:
        pytest.skip("buf not installed (pip install buf-bin)")
    return path


@pytest.fixture
def module(repo_root: Path, tmp_path: Path) -> Path:
    """A copy of proto/ to change."""
    shutil.copytree(repo_root / "proto", tmp_path / "proto")
    return tmp_path / "proto"


def _buf(buf: str, module: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([buf, *args], cwd=module, capture_output=True, text=True, timeout=120)


def test_proto_passes_buf_lint(buf, repo_root):
    result = _buf(buf, repo_root / "proto", "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_proto_is_compatible_with_the_released_v1(buf, repo_root):
    result = _buf(buf, repo_root / "proto", "breaking", "--against", RELEASED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_current_version_has_its_released_image():
    from ctbench import __version__

    assert f"released/ctbench-{__version__}.binpb" == RELEASED, "a release records its proto (CONTRIBUTING.md)"
    assert len(RELEASES) >= 2


@pytest.mark.parametrize("release", [p.name for p in RELEASES])
def test_proto_is_compatible_with_every_release(buf, repo_root, release):
    result = _buf(buf, repo_root / "proto", "breaking", "--against", f"released/{release}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_adding_a_field_and_a_call_is_allowed(buf, module):
    text = (module / PROTO).read_text()
    text = text.replace("  string question_id = 1;              // \"<volume name>::<index>\"",
                        "  string question_id = 1;              // \"<volume name>::<index>\"\n  string added_later = 99;")
    text = text.replace("  rpc Describe(DescribeRequest) returns (ModelCard);",
                        "  rpc Describe(DescribeRequest) returns (ModelCard);\n  rpc DescribeAgain(DescribeRequest) returns (ModelCard);")
    (module / PROTO).write_text(text)
    result = _buf(buf, module, "breaking", "--against", RELEASED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("change, rule", [
    ((r"uint32 max_batch_size = 7;", "uint32 max_batch_size = 77;"), "FIELD_NO_DELETE"),  # renumbered
    ((r"uint32 max_batch_size = 7;", "string max_batch_size = 7;"), "FIELD_SAME_TYPE"),
    ((r"uint32 max_batch_size = 7;", "uint32 batch_limit = 7;"), "FIELD_SAME_NAME"),
    ((r"  rpc Describe\(DescribeRequest\) returns \(ModelCard\);\n", ""), "RPC_NO_DELETE"),
], ids=["renumbered", "retyped", "renamed", "call-removed"])
def test_breaking_changes_are_refused(buf, module, change, rule):
    pattern, replacement = change
    text = (module / PROTO).read_text()
    changed = re.sub(pattern, replacement, text, count=1)
    assert changed != text, "the test's change did not apply"
    (module / PROTO).write_text(changed)
    result = _buf(buf, module, "breaking", "--against", RELEASED, "--error-format", "json")
    assert result.returncode != 0 and rule in result.stdout + result.stderr, result.stdout + result.stderr
