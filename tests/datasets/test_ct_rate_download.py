"""`bench data ct-rate download` against a loopback stand-in for the Hugging Face hub."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from ctbench.datasets import ct_rate
from ctbench.preprocess.volume import Volume, load_volume, save_volume

GOOD_TOKEN = "hf_good"  # what the fake hub (conftest.FakeHub) accepts
NO_ACCESS_TOKEN = "hf_no_access"
VOLUMES = ["valid_1000_a_1.nii.gz", "valid_1001_a_1.nii.gz", "valid_12_b_2.nii.gz"]


def _nifti_bytes(tmp_path, name: str, array: np.ndarray, spacing=(0.75, 0.75, 1.5)) -> bytes:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    save_volume(Volume(array, spacing=spacing), path)
    return path.read_bytes()


@pytest.fixture
def hub_with_volumes(fake_hub, tmp_path):
    rng = np.random.default_rng(0)
    for name in VOLUMES:
        array = rng.integers(-1024, 1500, size=(6, 16, 16)).astype(np.int16)
        fake_hub.add(ct_rate.volume_repo_path(name), _nifti_bytes(tmp_path, name, array))
    fake_hub.add(
        ct_rate.METADATA_FILES["valid"],
        b"VolumeName,RescaleSlope,RescaleIntercept,XYSpacing,ZSpacing\n"
        + b"".join(f"{n},1.0,-1024.0,\"[0.75, 0.75]\",1.5\n".encode() for n in VOLUMES),
    )
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps({n: {"qa_pairs": [{"question": "Where?", "answer": "Left."}]} for n in VOLUMES}))
    return fake_hub, qa


@pytest.mark.parametrize(
    "name, path",
    [
        ("valid_1000_a_1.nii.gz", "dataset/valid_fixed/valid_1000/valid_1000_a/valid_1000_a_1.nii.gz"),
        ("train_7_c_12.nii.gz", "dataset/train_fixed/train_7/train_7_c/train_7_c_12.nii.gz"),
    ],
)
def test_volume_names_map_to_ct_rate_layout(name, path):
    assert ct_rate.volume_repo_path(name) == path


@pytest.mark.parametrize("bad", ["valid_1000.nii.gz", "scan.nii.gz", "valid_1_a_1.mha"])
def test_non_ct_rate_names_are_refused(bad):
    with pytest.raises(ct_rate.CtRateError, match="not a CT-RATE volume name"):
        ct_rate.volume_repo_path(bad)


def test_download_fetches_exactly_the_referenced_volumes_and_validates_them(hub_with_volumes, tmp_path):
    hub, qa = hub_with_volumes
    hub.add(ct_rate.volume_repo_path("valid_99_a_1.nii.gz"), b"not referenced")
    out = tmp_path / "out"
    summary = ct_rate.download_ct_rate(qa, out, token=GOOD_TOKEN, endpoint=hub.endpoint, workers=3)
    assert summary["ok"] == 3 and summary["errors"] == []
    for name in VOLUMES:
        volume = load_volume(out / name)
        assert volume.spacing == pytest.approx((0.75, 0.75, 1.5))
    record = json.loads((out / ct_rate.RECORD_NAME).read_text())
    assert set(record) == set(VOLUMES)
    assert all(len(entry["sha256"]) == 64 and entry["corrections"] == [] for entry in record.values())
    fetched = {path for method, path, _ in hub.requests if method == "GET"}
    assert not any("valid_99" in p for p in fetched)


def test_hub_redirects_to_a_cdn_are_followed(hub_with_volumes, tmp_path):
    hub, qa = hub_with_volumes
    hub.redirect = True
    summary = ct_rate.download_ct_rate(qa, tmp_path / "out", token=GOOD_TOKEN, endpoint=hub.endpoint, fetch_metadata=False)
    assert summary["ok"] == 3
    assert any(p.startswith("/cdn/") for m, p, _ in hub.requests if m == "GET")


def test_second_run_downloads_nothing(hub_with_volumes, tmp_path):
    hub, qa = hub_with_volumes
    out = tmp_path / "out"
    ct_rate.download_ct_rate(qa, out, token=GOOD_TOKEN, endpoint=hub.endpoint)
    hub.requests.clear()
    summary = ct_rate.download_ct_rate(qa, out, token=GOOD_TOKEN, endpoint=hub.endpoint)
    assert summary["fetched_now"] == 0 and hub.requests == []


def test_interrupted_download_resumes_with_a_range_request(hub_with_volumes, tmp_path):
    hub, qa = hub_with_volumes
    name = VOLUMES[0]
    repo_path = ct_rate.volume_repo_path(name)
    hub.cut_after[repo_path] = 100
    out = tmp_path / "out"
    with pytest.raises(ct_rate.DownloadFailed, match="run the same command again to resume"):
        ct_rate.download_ct_rate(qa, out, token=GOOD_TOKEN, endpoint=hub.endpoint, workers=1)
    part = out / (name + ".part")
    assert part.stat().st_size == 100
    summary = ct_rate.download_ct_rate(qa, out, token=GOOD_TOKEN, endpoint=hub.endpoint)
    assert summary["ok"] == 3
    ranges = [h.get("Range") for m, p, h in hub.requests if m == "GET" and p.endswith(name)]
    assert ranges[-1] == "bytes=100-"
    assert (out / name).read_bytes() == hub.files[repo_path]


@pytest.mark.parametrize(
    "token, message",
    [
        ("hf_wrong", "token was rejected"),
        (NO_ACCESS_TOKEN, "is gated and this token has no access"),
        (None, "is gated and this token has no access"),
    ],
)
def test_bad_or_missing_token_gives_a_clear_error(hub_with_volumes, tmp_path, monkeypatch, token, message):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    hub, qa = hub_with_volumes
    with pytest.raises(ct_rate.AccessDenied, match=message):
        ct_rate.download_ct_rate(qa, tmp_path / "out", token=token, endpoint=hub.endpoint)


def test_full_disk_is_refused_before_downloading(hub_with_volumes, tmp_path):
    hub, qa = hub_with_volumes
    with pytest.raises(ct_rate.NotEnoughDiskSpace, match="not enough disk space"):
        ct_rate.download_ct_rate(qa, tmp_path / "out", token=GOOD_TOKEN, endpoint=hub.endpoint, disk_free=lambda p: 1000)
    assert not [r for r in hub.requests if r[0] == "GET"]


def test_volume_missing_from_the_hub_is_named_and_the_rest_downloaded(hub_with_volumes, tmp_path):
    hub, qa = hub_with_volumes
    del hub.files[ct_rate.volume_repo_path(VOLUMES[1])]
    with pytest.raises(ct_rate.DownloadFailed, match=f"{VOLUMES[1]}: not in"):
        ct_rate.download_ct_rate(qa, tmp_path / "out", token=GOOD_TOKEN, endpoint=hub.endpoint)
    assert (tmp_path / "out" / VOLUMES[0]).is_file() and (tmp_path / "out" / VOLUMES[2]).is_file()


def test_corrupt_volume_fails_validation(hub_with_volumes, tmp_path):
    hub, qa = hub_with_volumes
    hub.add(ct_rate.volume_repo_path(VOLUMES[2]), gzip.compress(b"definitely not nifti" * 10))
    with pytest.raises(ct_rate.DownloadFailed, match=VOLUMES[2]):
        ct_rate.download_ct_rate(qa, tmp_path / "out", token=GOOD_TOKEN, endpoint=hub.endpoint)
    record = json.loads((tmp_path / "out" / ct_rate.RECORD_NAME).read_text())
    assert set(record) == set(VOLUMES[:2])  # the good ones are kept


def test_metadata_rescale_and_spacing_applied_where_headers_need_them(fake_hub, tmp_path):
    name = "valid_5_a_1.nii.gz"
    raw = np.full((4, 8, 8), 24, dtype=np.int16)  # unscaled: stored values >= 0
    fake_hub.add(ct_rate.volume_repo_path(name), _nifti_bytes(tmp_path, name, raw, spacing=(1.0, 1.0, 1.0)))
    meta = tmp_path / "meta.csv"
    meta.write_text(f'VolumeName,RescaleSlope,RescaleIntercept,XYSpacing,ZSpacing\n{name},1.0,-1024.0,"[0.7, 0.7]",2.0\n')
    qa = tmp_path / "qa.json"
    qa.write_text(json.dumps({name: {"qa_pairs": [{"question": "q", "answer": "a"}]}}))
    out = tmp_path / "out"
    ct_rate.download_ct_rate(qa, out, token=GOOD_TOKEN, endpoint=fake_hub.endpoint, metadata_csv=meta)
    volume = load_volume(out / name)
    assert volume.spacing == pytest.approx((0.7, 0.7, 2.0))
    assert float(volume.array.max()) == pytest.approx(24 - 1024)
    entry = json.loads((out / ct_rate.RECORD_NAME).read_text())[name]
    assert len(entry["corrections"]) == 2


def test_jsonl_image_paths_decide_where_volumes_land(hub_with_volumes, tmp_path):
    hub, _ = hub_with_volumes
    qa = tmp_path / "qa.jsonl"
    rel = "dataset/data_volumes/dataset/valid_fixed/valid_1000/valid_1000_a/valid_1000_a_1.nii.gz"
    qa.write_text(json.dumps({"case_id": VOLUMES[0], "image_path": rel, "question": "q", "answer": "a"}) + "\n")
    out = tmp_path / "out"
    ct_rate.download_ct_rate(qa, out, token=GOOD_TOKEN, endpoint=hub.endpoint)
    assert (out / rel).is_file()


def test_disk_filling_up_mid_download_keeps_the_partial_file(hub_with_volumes, tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    hub, qa = hub_with_volumes
    real_open = Path.open

    class FullDisk:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, chunk):
            if self.written + len(chunk) > 50:
                self.handle.write(chunk[: 50 - self.written])
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(chunk)
            return self.handle.write(chunk)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def fake_open(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        return FullDisk(handle) if self.name.endswith(".part") and "b" in mode and "w" in mode else handle

    monkeypatch.setattr(Path, "open", fake_open)
    with pytest.raises(ct_rate.NotEnoughDiskSpace, match="disk full while writing"):
        ct_rate.download_ct_rate(qa, tmp_path / "out", token=GOOD_TOKEN, endpoint=hub.endpoint, workers=1, fetch_metadata=False)
    assert any(p.stat().st_size == 50 for p in (tmp_path / "out").glob("*.part"))
