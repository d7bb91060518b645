"""Fetch exactly the CT-RATE volumes a QA set refers to, from the (gated) Hugging Face dataset.

Steps, each of which can fail with a clear `CtRateError` before anything is half-done:

1. the QA set's volume names -> CT-RATE paths
   (``valid_1000_a_1.nii.gz`` -> ``dataset/valid_fixed/valid_1000/valid_1000_a/valid_1000_a_1.nii.gz``);
2. one metadata request per volume through `huggingface_hub` with the user's token (size, sha256,
   commit): a wrong token, a gated repository or a missing volume stops here;
3. the free disk space is checked against what is still to fetch;
4. parallel downloads into ``<file>.part`` with HTTP ranges, so an interrupted run resumes where
   it stopped; each file's sha256 is checked against the hub's before it is renamed into place;
5. each volume is opened with `ctbench.preprocess.volume.load_volume` (header and voxels);
   where CT-RATE's metadata CSV says the stored values need a rescale slope/intercept, or the
   header lacks the spacing, the volume is corrected in place and the correction recorded.

Volumes land where the QA set expects them, relative to the output folder: a QA set whose
image paths are bare names gets ``<out>/<name>``, one with CT-RATE style paths gets
``<out>/<that path>``, so ``--data-root <out>`` then resolves every question.
A record of what was fetched, verified and corrected is kept in ``<out>/ct_rate_downloads.json``.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ctbench.datasets.ct_rate_metadata import VolumeMetadata, read_metadata_csv, validate_and_correct
from ctbench.datasets.qa_items import load_dataset
from ctbench.errors import CtbenchError

REPO_ID = "ibrahimhamamci/CT-RATE"
METADATA_FILES = {
    "valid": "dataset/metadata/validation_metadata.csv",
    "train": "dataset/metadata/train_metadata.csv",
}
RECORD_NAME = "ct_rate_downloads.json"
DISK_MARGIN_BYTES = 64 << 20
_NAME = re.compile(r"^(?P<split>train|valid)_(?P<patient>\d+)_(?P<scan>[a-z]+)_(?P<recon>\d+)\.nii(?:\.gz)?$")


class CtRateError(CtbenchError):
    code = "FAILED_PRECONDITION"


class AccessDenied(CtRateError):
    code = "PERMISSION_DENIED"


class NotEnoughDiskSpace(CtRateError):
    code = "RESOURCE_EXHAUSTED"


class DownloadFailed(CtRateError):
    code = "UNAVAILABLE"


def _name_parts(volume_name: str) -> re.Match[str]:
    """The split, patient, scan and reconstruction of a CT-RATE volume name; CtRateError otherwise."""
    match = _NAME.match(volume_name)
    if match is None:
        raise CtRateError(
            f"{volume_name!r} is not a CT-RATE volume name (expected like 'valid_1000_a_1.nii.gz')"
        )
    return match


def volume_repo_path(volume_name: str) -> str:
    """CT-RATE's path of a volume inside the dataset repository."""
    match = _name_parts(volume_name)
    split, patient, scan = match["split"], match["patient"], match["scan"]
    return f"dataset/{split}_fixed/{split}_{patient}/{split}_{patient}_{scan}/{volume_name}"


@dataclass
class PlannedFile:
    name: str  # volume file name, e.g. valid_1000_a_1.nii.gz
    repo_path: str
    local_path: Path
    size: int | None = None
    sha256: str | None = None
    commit: str | None = None
    url: str | None = None
    have_bytes: int = 0  # already in <file>.part
    done: bool = False  # already complete and verified by an earlier run
    error: str | None = None  # could not be resolved on the hub (e.g. no such volume)


@dataclass
class DownloadPlan:
    out_dir: Path
    files: list[PlannedFile]
    repo_id: str
    revision: str
    token: str | None
    endpoint: str | None
    record: dict = field(default_factory=dict)

    @property
    def to_fetch(self) -> list[PlannedFile]:
        return [f for f in self.files if not f.done and f.error is None]

    @property
    def unresolved(self) -> list[PlannedFile]:
        return [f for f in self.files if f.error is not None]

    @property
    def bytes_needed(self) -> int:
        return sum(max((f.size or 0) - f.have_bytes, 0) for f in self.to_fetch)


# --- step 1: which volumes ------------------------------------------------------------------
def volumes_of(qa_path: str | Path) -> dict[str, str]:
    """volume file name -> the relative path the QA set expects it at, first-seen order."""
    dataset = load_dataset(qa_path)
    wanted: dict[str, str] = {}
    for image_path in dataset.by_volume():
        name = PurePosixPath(image_path).name
        if PurePosixPath(image_path).is_absolute():
            image_path = name
        wanted.setdefault(name, image_path)
    return wanted


# --- step 2: metadata from the hub ----------------------------------------------------------
def _hub_error(exc: Exception, what: str, repo_id: str) -> CtRateError:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    page = f"https://huggingface.co/datasets/{repo_id}"
    if isinstance(exc, GatedRepoError):
        return AccessDenied(
            f"{repo_id} is gated and this token has no access to it ({what}). Accept the dataset's "
            f"terms at {page} with your account, then pass a token of that account "
            "(--token, or HF_TOKEN)."
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return CtRateError(f"{what}: not in {repo_id} (does the QA set name a volume that does not exist?)")
    if isinstance(exc, RepositoryNotFoundError):
        return AccessDenied(
            f"{repo_id}: repository not found or not visible with this token ({what}); check the token "
            f"and that your account accepted the terms at {page}"
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        if status == 401:
            return AccessDenied(
                f"the Hugging Face token was rejected (HTTP 401) while reading {what}: it is wrong or "
                "expired. Create a read token at https://huggingface.co/settings/tokens and pass it "
                "with --token or HF_TOKEN."
            )
        if status == 403:
            return AccessDenied(f"access to {what} refused (HTTP 403); accept the terms at {page}")
        return DownloadFailed(f"{what}: hub answered HTTP {status}")
    return DownloadFailed(f"{what}: cannot reach the hub ({type(exc).__name__}: {exc})")


def _metadata(repo_path: str, *, repo_id: str, revision: str, token: str | None, endpoint: str | None):
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo_id, repo_path, repo_type="dataset", revision=revision, endpoint=endpoint)
    try:
        return get_hf_file_metadata(url, token=token or False, endpoint=endpoint, retry_on_errors=True)
    except Exception as exc:
        raise _hub_error(exc, repo_path, repo_id) from None


def plan_downloads(
    qa_path: str | Path,
    out_dir: str | Path,
    *,
    token: str | None = None,
    repo_id: str = REPO_ID,
    revision: str = "main",
    endpoint: str | None = None,
    workers: int = 4,
    limit: int | None = None,
) -> DownloadPlan:
    """Resolve every volume of the QA set against the hub and note what is already here."""
    out_dir = Path(out_dir)
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    token = token or os.environ.get("HF_TOKEN") or None
    record = _read_record(out_dir)
    files = [
        PlannedFile(name, volume_repo_path(name), out_dir / rel)
        for name, rel in list(volumes_of(qa_path).items())[:limit]
    ]
    # Fail fast on the token with one request before fanning out.
    for f in files:
        f.done = _already_done(f, record)
    pending = [f for f in files if not f.done]
    if pending:
        first = pending[0]
        try:
            _fill(first, _metadata(first.repo_path, repo_id=repo_id, revision=revision, token=token, endpoint=endpoint))
        except AccessDenied:
            raise
        except CtRateError as exc:
            first.error = str(exc)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {
                pool.submit(_metadata, f.repo_path, repo_id=repo_id, revision=revision, token=token, endpoint=endpoint): f
                for f in pending[1:]
            }
            for future in as_completed(futures):
                try:
                    _fill(futures[future], future.result())
                except AccessDenied:
                    raise
                except CtRateError as exc:  # this volume only; the others still download
                    futures[future].error = str(exc)
    for f in pending:
        part = _part_path(f.local_path)
        f.have_bytes = part.stat().st_size if part.is_file() else 0
        if f.size is not None and f.have_bytes > f.size:
            part.unlink()
            f.have_bytes = 0
    return DownloadPlan(out_dir, files, repo_id, revision, token, endpoint, record)


def _fill(planned: PlannedFile, meta) -> None:
    planned.size = meta.size
    planned.commit = meta.commit_hash
    planned.url = meta.location
    etag = (meta.etag or "").lower()
    planned.sha256 = etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None


def _already_done(planned: PlannedFile, record: dict) -> bool:
    entry = record.get(planned.name)
    return bool(
        entry
        and entry.get("status") == "ok"
        and planned.local_path.is_file()
        and planned.local_path.stat().st_size == entry.get("final_size")
    )


def _part_path(path: Path) -> Path:
    return path.with_name(path.name + ".part")


# --- step 3: disk space ---------------------------------------------------------------------
def check_disk_space(plan: DownloadPlan, disk_free: Callable[[Path], int] | None = None) -> None:
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    free = (disk_free or (lambda p: shutil.disk_usage(p).free))(plan.out_dir)
    need = plan.bytes_needed + DISK_MARGIN_BYTES
    if free < need:
        raise NotEnoughDiskSpace(
            f"not enough disk space in {plan.out_dir}: {len(plan.to_fetch)} volume(s) need "
            f"{_mb(plan.bytes_needed)} (+{_mb(DISK_MARGIN_BYTES)} margin), only {_mb(free)} free. "
            "Free some space or choose another --out."
        )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


# --- step 4: download -----------------------------------------------------------------------
def _download_one(plan: DownloadPlan, planned: PlannedFile, on_bytes: Callable[[int], None]) -> None:
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    if planned.url is None:  # set with the size and hash when the plan resolved the file
        raise DownloadFailed(f"{planned.repo_path}: the hub gave no download location")
    planned.local_path.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(planned.local_path)
    have = part.stat().st_size if part.is_file() else 0
    headers = build_hf_headers(token=plan.token or False)
    headers["Accept-Encoding"] = "identity"
    if have:
        headers["Range"] = f"bytes={have}-"
    if planned.size is None or have < planned.size:
        try:
            with get_session().stream("GET", planned.url, headers=headers, timeout=60) as response:
                hf_raise_for_status(response)
                mode = "ab" if have and response.status_code == 206 else "wb"
                with part.open(mode) as out:
                    for chunk in response.iter_bytes():  # as it arrives, so a cut keeps every byte
                        out.write(chunk)
                        on_bytes(len(chunk))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise NotEnoughDiskSpace(
                    f"disk full while writing {part}; the partial file is kept: free space and run "
                    "the same command again to resume"
                ) from None
            raise DownloadFailed(
                f"{planned.name}: download interrupted ({exc}); run the same command again to resume"
            ) from None
        except CtbenchError:
            raise
        except Exception as exc:
            from huggingface_hub.errors import HfHubHTTPError

            if isinstance(exc, HfHubHTTPError):
                raise _hub_error(exc, planned.repo_path, plan.repo_id) from None
            raise DownloadFailed(
                f"{planned.name}: download interrupted ({type(exc).__name__}: {exc}); "
                "run the same command again to resume"
            ) from None
    size = part.stat().st_size
    if planned.size is not None and size != planned.size:
        raise DownloadFailed(
            f"{planned.name}: got {size} bytes, expected {planned.size}; run again to resume"
        )
    if planned.sha256 is not None:
        actual = _sha256(part)
        if actual != planned.sha256:
            part.unlink()
            raise DownloadFailed(
                f"{planned.name}: sha256 {actual} does not match the hub's {planned.sha256}; "
                "the corrupt file was deleted, run again to fetch it afresh"
            )
    os.replace(part, planned.local_path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- the whole thing ------------------------------------------------------------------------
def execute_plan(
    plan: DownloadPlan,
    *,
    metadata: dict[str, VolumeMetadata] | None = None,
    workers: int = 4,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_file: Callable[[str], None] = lambda name: None,
) -> dict:
    """Download, verify, validate and correct every file still to fetch; keep the record current.

    Files that finished are recorded even when another one fails, so a re-run only fetches the rest.
    """
    lock = threading.Lock()
    errors: list[str] = [f.error for f in plan.unresolved if f.error is not None]

    def work(planned: PlannedFile) -> None:
        _download_one(plan, planned, on_bytes)
        info = validate_and_correct(planned.local_path, (metadata or {}).get(planned.name))
        entry = {
            "status": "ok", "repo_path": planned.repo_path, "commit": planned.commit,
            "sha256": planned.sha256, "size": planned.size,
            "final_size": planned.local_path.stat().st_size, "local_path": str(planned.local_path.relative_to(plan.out_dir)),
            **info,
        }
        with lock:
            plan.record[planned.name] = entry
            _write_record(plan.out_dir, plan.record)
        on_file(planned.name)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(work, f): f for f in plan.to_fetch}
        first_fatal: CtbenchError | None = None
        for future in as_completed(futures):
            exc = future.exception()
            if exc is None:
                continue
            if isinstance(exc, (AccessDenied, NotEnoughDiskSpace)) and first_fatal is None:
                first_fatal = exc
            errors.append(str(exc) if isinstance(exc, CtbenchError) else f"{futures[future].name}: {exc!r}")
    done = sum(1 for f in plan.files if plan.record.get(f.name, {}).get("status") == "ok")
    fetched_now = len(plan.to_fetch) - (len(errors) - len(plan.unresolved))
    summary = {"volumes": len(plan.files), "ok": done, "fetched_now": fetched_now, "errors": errors}
    if first_fatal is not None:
        raise first_fatal
    if errors:
        listed = "\n  ".join(errors[:10])
        raise DownloadFailed(
            f"{len(errors)} of {len(plan.files)} volume(s) failed ({done} ready; finished ones are kept):\n  {listed}"
        )
    return summary


def download_ct_rate(
    qa_path: str | Path,
    out_dir: str | Path,
    *,
    token: str | None = None,
    repo_id: str = REPO_ID,
    revision: str = "main",
    endpoint: str | None = None,
    workers: int = 4,
    metadata_csv: str | Path | None = None,
    fetch_metadata: bool = True,
    limit: int | None = None,
    disk_free: Callable[[Path], int] | None = None,
    on_plan: Callable[[DownloadPlan], None] = lambda plan: None,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_file: Callable[[str], None] = lambda name: None,
) -> dict:
    """Plan, check space, fetch metadata, download and validate. Returns a summary dict."""
    plan = plan_downloads(
        qa_path, out_dir, token=token, repo_id=repo_id, revision=revision, endpoint=endpoint,
        workers=workers, limit=limit,
    )
    check_disk_space(plan, disk_free)
    metadata = None
    if metadata_csv is not None:
        metadata = read_metadata_csv(metadata_csv)
    elif fetch_metadata and plan.to_fetch:
        metadata = read_metadata_csv(_fetch_metadata_csv(plan))
    on_plan(plan)
    summary = execute_plan(plan, metadata=metadata, workers=workers, on_bytes=on_bytes, on_file=on_file)
    summary["record"] = str(plan.out_dir / RECORD_NAME)
    return summary


def _fetch_metadata_csv(plan: DownloadPlan) -> Path:
    split = _name_parts(plan.to_fetch[0].name)["split"]
    repo_path = METADATA_FILES[split]
    meta = _metadata(repo_path, repo_id=plan.repo_id, revision=plan.revision, token=plan.token, endpoint=plan.endpoint)
    planned = PlannedFile(Path(repo_path).name, repo_path, plan.out_dir / "metadata" / Path(repo_path).name)
    _fill(planned, meta)
    if planned.local_path.is_file() and (planned.sha256 is None or _sha256(planned.local_path) == planned.sha256):
        return planned.local_path
    _download_one(plan, planned, lambda n: None)
    return planned.local_path


def _read_record(out_dir: Path) -> dict:
    path = out_dir / RECORD_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}  # a torn record only costs re-verification


def _write_record(out_dir: Path, record: dict) -> None:
    path = out_dir / RECORD_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


__all__ = [
    "REPO_ID",
    "AccessDenied",
    "CtRateError",
    "DownloadFailed",
    "DownloadPlan",
    "NotEnoughDiskSpace",
    "PlannedFile",
    "VolumeMetadata",
    "check_disk_space",
    "download_ct_rate",
    "execute_plan",
    "plan_downloads",
    "read_metadata_csv",
    "validate_and_correct",
    "volume_repo_path",
    "volumes_of",
]
