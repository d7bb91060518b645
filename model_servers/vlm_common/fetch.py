"""`bench models fetch NAME`: download a model's weights into a weights directory.

With the user's Hugging Face token (`hf auth login` or HF_TOKEN). Resumable: the hub client
keeps partial files and skips complete ones, so re-running after an interruption continues.
Checksummed: every file is checked against the hub's record (SHA-256 for LFS files, the git
blob id for small ones) and a manifest `ctbench-weights.json` with each file's SHA-256 is
written. Gated repositories and licences are named before anything is downloaded.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ctbench.errors import CtbenchError, ModelNotReady
from ctbench.model_servers.vlm_common.catalog import ModelWeights, WeightsSource, get_weights
from ctbench.model_servers.vlm_common.weights import missing_files

MANIFEST = "ctbench-weights.json"


class ChecksumMismatch(CtbenchError):
    code = "DATA_LOSS"


class AccessDenied(ModelNotReady):
    """The repository is gated (terms not accepted) or private/unknown for this token."""


@dataclass
class FetchResult:
    name: str
    weights_dir: Path
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    missing: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def notices_for(entry: ModelWeights) -> list[str]:
    notes = [f"Licence: {entry.license}"]
    if entry.gated:
        notes.append(f"Gated: {entry.gated}")
    if any(word in entry.license.lower() for word in ("non-commercial", "noncommercial", "nc-")):
        notes.append("Non-commercial licence: research use only.")
    for extra in entry.extra:
        notes.append(f"Not fetched by ctbench, needed too: {extra}")
    return notes


def _git_blob_sha1(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _selected(name: str, patterns: tuple[str, ...]) -> bool:
    return not patterns or any(fnmatch.fnmatch(name, p) for p in patterns)


def verify_source(api, source: WeightsSource, target: Path, token) -> dict[str, str]:
    """Check every downloaded file of `source` against the hub's checksums; path -> sha256."""
    info = api.repo_info(source.repo_id, repo_type=source.repo_type, revision=source.revision,
                         files_metadata=True, token=token)
    checked = {}
    for sibling in info.siblings or []:
        if not _selected(sibling.rfilename, source.allow_patterns):
            continue
        path = target / sibling.rfilename
        if not path.is_file():
            continue
        sha256 = sha256_of(path)
        lfs = sibling.lfs
        expected = getattr(lfs, "sha256", None) if lfs is not None else None
        if isinstance(lfs, dict):
            expected = lfs.get("sha256")
        if expected is not None and sha256 != expected:
            raise ChecksumMismatch(f"{path}: SHA-256 {sha256} but the hub records {expected}; delete it and fetch again")
        if expected is None and sibling.blob_id and _git_blob_sha1(path) != sibling.blob_id:
            raise ChecksumMismatch(f"{path}: git blob id differs from the hub's {sibling.blob_id}; delete it and fetch again")
        rel = (Path(source.subdir) / sibling.rfilename).as_posix() if source.subdir else sibling.rfilename
        checked[rel] = sha256
    return checked


def fetch(name: str, weights_dir: str | Path, token: str | None = None,
          say: Callable[[str], None] = lambda s: None, api=None, download=None) -> FetchResult:
    """Download `name`'s weights into `weights_dir` (resumable), verify and write the manifest."""
    entry = get_weights(name)
    root = Path(weights_dir)
    root.mkdir(parents=True, exist_ok=True)
    result = FetchResult(name, root, notices=notices_for(entry))
    for line in result.notices:
        say(line)
    if api is None or download is None:
        from huggingface_hub import HfApi, snapshot_download

        api = api or HfApi()
        download = download or snapshot_download
    for source in entry.sources:
        target = root / source.subdir if source.subdir else root
        _check_access(api, source, entry, token)
        say(f"Fetching {source.repo_type} {source.repo_id}@{source.revision} into {target}")
        download(source.repo_id, repo_type=source.repo_type, revision=source.revision, local_dir=str(target),
                 allow_patterns=list(source.allow_patterns) or None, token=token)
        result.files.update(verify_source(api, source, target, token))
    _unpack_archives(root, result, say)
    (root / MANIFEST).write_text(json.dumps({"model": name, "sources": [s.__dict__ | {"allow_patterns": list(s.allow_patterns)} for s in entry.sources],
                                             "license": entry.license, "files": result.files}, indent=2, sort_keys=True))
    result.missing = missing_files(root, entry.required)
    if result.missing:
        say(f"Still missing: {', '.join(result.missing)}")
    return result


def _check_access(api, source: WeightsSource, entry: ModelWeights, token) -> None:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        api.repo_info(source.repo_id, repo_type=source.repo_type, revision=source.revision, token=token)
    except GatedRepoError:
        raise AccessDenied(
            f"{source.repo_id} is gated and this token has no access. {entry.gated or 'Accept its terms on huggingface.co.'}"
        ) from None
    except RepositoryNotFoundError:
        raise AccessDenied(
            f"{source.repo_id} was not found or is private for this token; log in with `hf auth login` or set HF_TOKEN."
        ) from None


def _unpack_archives(root: Path, result: FetchResult, say) -> None:
    """RadFM ships pytorch_model.zip; the server wants pytorch_model.bin next to it."""
    archive = root / "pytorch_model.zip"
    if archive.is_file() and not (root / "pytorch_model.bin").exists():
        say(f"Unpacking {archive}")
        with zipfile.ZipFile(archive) as zf:
            member = next(n for n in zf.namelist() if n.endswith("pytorch_model.bin"))
            with zf.open(member) as src, (root / "pytorch_model.bin.partial").open("wb") as dst:
                while block := src.read(1 << 22):
                    dst.write(block)
        (root / "pytorch_model.bin.partial").replace(root / "pytorch_model.bin")
        result.files["pytorch_model.bin"] = sha256_of(root / "pytorch_model.bin")
