"""The AlignScore weights folder the user names (`--alignscore-weights DIR` or
$CTBENCH_ALIGNSCORE_WEIGHTS), its layout, and a download helper. Nothing is fetched otherwise.

    DIR/AlignScore-base.ckpt          (or AlignScore-large.ckpt)
    DIR/roberta-base/                 (or roberta-large/: config.json, tokenizer files, weights)
    DIR/nltk_data/tokenizers/punkt_tab/english/   (NLTK's sentence splitter AlignScore uses)

Where they come from: the checkpoints are the AlignScore authors' (Zha et al. 2023, MIT licence),
published on the Hugging Face hub as yzha/AlignScore; the RoBERTa models are FacebookAI's
(MIT); punkt_tab is NLTK's data package (Apache-2.0).
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import urllib.request
import zipfile
from pathlib import Path

from ctbench.errors import CtbenchError
from ctbench.evaluation.alignscore.worker import MODELS, checkpoint_name, weights_problems

WEIGHTS_ENV = "CTBENCH_ALIGNSCORE_WEIGHTS"
HF = "https://huggingface.co"
CHECKPOINT_URL = HF + "/yzha/AlignScore/resolve/main/{name}"
ROBERTA_FILES = ("config.json", "vocab.json", "merges.txt", "tokenizer.json", "model.safetensors")
ROBERTA_URL = HF + "/FacebookAI/{model}/resolve/main/{file}"
PUNKT_URL = "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/tokenizers/punkt_tab.zip"
APPROX_GB = {"base": 1.0, "large": 2.8}  # checkpoint + RoBERTa


class AlignScoreWeightsMissing(CtbenchError):
    code = "FAILED_PRECONDITION"


class AlignScoreDownloadFailed(CtbenchError):
    code = "UNAVAILABLE"


def weights_dir(given: str | Path | None = None) -> Path | None:
    value = given or os.environ.get(WEIGHTS_ENV)
    return Path(value).expanduser() if value else None


def pick_model(weights: Path, model: str | None = None) -> str:
    """base/large: the one asked, else base when its checkpoint is there, else large if that is."""
    if model:
        if model not in MODELS:
            raise ValueError(f"AlignScore model {model!r}: expected one of {', '.join(sorted(MODELS))}")
        return model
    for size in ("base", "large"):
        if (weights / checkpoint_name(size)).is_file():
            return size
    return "base"


def problem(weights: Path | None, model: str | None = None) -> str | None:
    fetch = "bench metrics fetch alignscore --weights DIR"
    if weights is None:
        return f"no AlignScore weights folder: pass --alignscore-weights DIR or set ${WEIGHTS_ENV} ({fetch})"
    missing = weights_problems(str(weights), pick_model(weights, model))
    if missing:
        return f"AlignScore weights incomplete in {weights}: missing {', '.join(missing)} ({fetch})"
    return None


def fingerprint(weights: Path, model: str) -> str:
    """A cache key for the checkpoint: its name, size and sha256 of its first and last MiB."""
    ckpt = weights / checkpoint_name(model)
    size = ckpt.stat().st_size
    digest = hashlib.sha256()
    with ckpt.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, size - (1 << 20)))
        digest.update(handle.read(1 << 20))
    return f"AlignScore-{model}:{size}:{digest.hexdigest()[:16]}"


def download_plan(model: str = "base") -> list[tuple[str, str]]:
    """(url, path inside the weights folder) for everything `fetch` downloads."""
    roberta = MODELS[model]
    plan = [(CHECKPOINT_URL.format(name=checkpoint_name(model)), checkpoint_name(model))]
    plan += [(ROBERTA_URL.format(model=roberta, file=f), f"{roberta}/{f}") for f in ROBERTA_FILES]
    plan.append((PUNKT_URL, "nltk_data/tokenizers/punkt_tab.zip"))
    return plan


def fetch(weights: Path, model: str = "base", say=print, opener=urllib.request.urlopen) -> Path:
    """Download what is missing (files already present are kept); unzip punkt_tab."""
    weights = Path(weights)
    for url, relative in download_plan(model):
        dest = weights / relative
        if relative.endswith("punkt_tab.zip"):
            if (weights / "nltk_data" / "tokenizers" / "punkt_tab" / "english").is_dir():
                continue
            data = _get(url, opener)
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(weights / "nltk_data" / "tokenizers")
            say(f"unpacked {url} into {weights / 'nltk_data'}")
            continue
        if dest.is_file():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        say(f"downloading {url}")
        try:
            with opener(url, timeout=60) as response, part.open("wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except OSError as exc:
            raise AlignScoreDownloadFailed(f"{url}: {exc} (offline? put the files in {weights} by hand)") from exc
        part.replace(dest)
    left = problem(weights, model)
    if left:
        raise AlignScoreWeightsMissing(left)
    return weights


def _get(url: str, opener) -> bytes:
    try:
        with opener(url, timeout=60) as response:
            return response.read()
    except OSError as exc:
        raise AlignScoreDownloadFailed(f"{url}: {exc} (offline? put the files in place by hand)") from exc
