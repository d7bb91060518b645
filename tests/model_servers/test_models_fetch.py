"""`bench models fetch` / `list` against a fake hub (no network): access checks, checksums,
the manifest, resumable re-runs, and licence notices."""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ctbench.model_servers.vlm_common import fetch as fetch_module
from ctbench.model_servers.vlm_common.fetch import AccessDenied, ChecksumMismatch, fetch

FILES = {
    "config.json": b"{}",
    "model.safetensors": b"weights" * 100,
    "tokenizer_config.json": b"{}",
    "processor_config.json": b"{}",
}
LFS = {"model.safetensors"}


def sibling(name: str, data: bytes):
    if name in LFS:
        return SimpleNamespace(rfilename=name, size=len(data), blob_id="x", lfs=SimpleNamespace(sha256=hashlib.sha256(data).hexdigest()))
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return SimpleNamespace(rfilename=name, size=len(data), blob_id=blob, lfs=None)


class FakeHub:
    def __init__(self, files=FILES, gated=False, corrupt=None):
        self.files, self.gated, self.corrupt, self.downloads = dict(files), gated, corrupt, 0

    def repo_info(self, repo_id, **kwargs):
        if self.gated:
            from huggingface_hub.errors import GatedRepoError

            raise GatedRepoError("gated", response=SimpleNamespace(headers={}, status_code=403, request=None))
        return SimpleNamespace(siblings=[sibling(n, d) for n, d in self.files.items()])

    def download(self, repo_id, *, local_dir, **kwargs):
        self.downloads += 1
        for name, data in self.files.items():
            path = fetch_module.Path(local_dir) / name
            if not path.exists():  # resumable: complete files are kept
                path.write_bytes(b"corrupt" if name == self.corrupt else data)
        return local_dir


def test_fetch_verifies_checksums_and_writes_manifest(tmp_path):
    hub = FakeHub()
    lines = []
    result = fetch("medgemma", tmp_path, api=hub, download=hub.download, say=lines.append)
    assert result.missing == []
    manifest = json.loads((tmp_path / "ctbench-weights.json").read_text())
    assert manifest["files"]["model.safetensors"] == hashlib.sha256(FILES["model.safetensors"]).hexdigest()
    assert any("Licence: Health AI Developer Foundations" in line for line in lines)
    assert any("Gated:" in line for line in lines)
    # re-running resumes: nothing re-written, still verified
    again = fetch("medgemma", tmp_path, api=hub, download=hub.download)
    assert again.files == result.files and hub.downloads == 2


def test_gated_repository_says_how_to_get_access(tmp_path):
    hub = FakeHub(gated=True)
    with pytest.raises(AccessDenied, match="Health AI Developer Foundations"):
        fetch("medgemma", tmp_path, api=hub, download=hub.download)


def test_corrupt_file_fails_the_checksum(tmp_path):
    hub = FakeHub(corrupt="model.safetensors")
    with pytest.raises(ChecksumMismatch, match="model.safetensors"):
        fetch("medgemma", tmp_path, api=hub, download=hub.download)


def test_incomplete_download_reports_missing_files(tmp_path):
    hub = FakeHub(files={"config.json": b"{}"})
    result = fetch("lingshu", tmp_path, api=hub, download=hub.download)
    assert "tokenizer_config.json" in result.missing


def test_non_commercial_licences_are_flagged():
    from ctbench.model_servers.vlm_common.catalog import CATALOG
    from ctbench.model_servers.vlm_common.fetch import notices_for

    assert any("Non-commercial" in n for n in notices_for(CATALOG["ct-chat"]))
    assert any("Non-commercial" in n for n in notices_for(CATALOG["vila-m3"]))


def test_cli_list_and_help(tmp_path):
    from ctbench.cli.models import models

    runner = CliRunner()
    listed = runner.invoke(models, ["list", "--weights-root", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    for name in ("medgemma", "lingshu", "ct-chat", "radfm"):
        assert name in listed.output
    for args in (["--help"], ["list", "--help"], ["fetch", "--help"]):
        result = runner.invoke(models, args)
        assert result.exit_code == 0 and "Example" in result.output


def test_cli_fetch_unknown_model_is_an_error(tmp_path):
    from ctbench.cli.models import models

    result = CliRunner().invoke(models, ["fetch", "nope", "--weights-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Unknown model 'nope'" in result.output
