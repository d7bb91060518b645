"""The dataset manifest a run records: what was asked, counted and hashed.

`dataset_manifest(dataset)` is cheap (no volume is read) and deterministic: the same items give
the same manifest whatever file form (JSON or JSONL) or formatting they were read from, so two
runs can be compared by their manifests' ``sha256`` alone.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from ctbench.datasets.qa_items import Dataset, QAItem

MANIFEST_SCHEMA = "ctbench.dataset_manifest/1"
UNCATEGORISED = "(none)"


def item_digest_line(item: QAItem) -> bytes:
    """One item's canonical bytes: sorted-key compact JSON of its fields, newline-terminated."""
    return (json.dumps(item.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def content_sha256(items: list[QAItem]) -> str:
    """sha256 over the items' canonical lines, in order: the dataset's identity."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item_digest_line(item))
    return digest.hexdigest()


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_manifest(dataset: Dataset) -> dict:
    """Counts per volume and per category plus the content hash, as a JSON-ready dict.

    Keys ``name``, ``source``, ``n_questions`` and ``sha256`` are the ones a run record's
    ``dataset`` entry carries; the rest is detail for reports.
    """
    per_volume = Counter(item.image_path for item in dataset.items)
    per_category: Counter = Counter()
    for item in dataset.items:
        for category in item.categories or (UNCATEGORISED,):
            per_category[category] += 1
    per_type = Counter(item.question_type or "open" for item in dataset.items)
    source = Path(dataset.source) if dataset.source else None
    return {
        "schema": MANIFEST_SCHEMA,
        "name": dataset.name,
        "source": dataset.source,
        "source_sha256": file_sha256(source) if source is not None and source.is_file() else None,
        "n_questions": len(dataset.items),
        "n_volumes": len(per_volume),
        "sha256": content_sha256(dataset.items),
        "per_category": dict(sorted(per_category.items())),
        "per_question_type": dict(sorted(per_type.items())),
        "questions_per_volume": _distribution(per_volume.values()),
        "per_volume": dict(per_volume),
    }


def _distribution(counts) -> dict:
    counts = sorted(counts)
    if not counts:
        return {"min": 0, "max": 0, "mean": 0.0}
    return {"min": counts[0], "max": counts[-1], "mean": round(sum(counts) / len(counts), 3)}
