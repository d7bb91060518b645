"""CT-SpatialVQA: load the published benchmark, validate it, and write its manifest.

Validation rules (each problem is reported with its question id):

* every pair has non-empty ``question`` and ``answer`` strings (an error otherwise);
* no question appears twice within one volume, compared after case-folding and collapsing
  whitespace and trailing punctuation. **Duplicates are errors by default**: a repeated question
  is scored twice and silently weights its volume; the published file has none, so a duplicate
  means a merge went wrong. ``duplicates="warn"`` keeps them (for work-in-progress QA sets);
* categories are mapped onto the six canonical labels; near-miss spellings (the published file
  spells "Medial-Lateral Orientation" without "(Centricity)" twice) are mapped and counted as
  warnings; a label that maps to nothing is an error; a pair with an empty list in a file that
  otherwise has categories is a warning;
* optionally (``check_volumes``), every referenced volume exists under the data root.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ctbench.datasets.categories import normalize_category
from ctbench.datasets.fetch import fetch_url
from ctbench.datasets.manifest import dataset_manifest
from ctbench.datasets.qa_items import Dataset, load_dataset
from ctbench.errors import DatasetError

# The published files (github.com/BioMedIA-MBZUAI/CT-SpatialVQA, folder dataset/). The sha256
# pins are those of the reference copies this project was built against.
PUBLISHED_BASE_URL = "https://raw.githubusercontent.com/BioMedIA-MBZUAI/CT-SpatialVQA/main/dataset/"
PUBLISHED_FILES: dict[str, str] = {
    "qa_pairs.json": "32151e627a5a7e4bd601d246d8cae47a2732355aa14a8b056b3ce5e7aa2042ca",
    "qa_pairs_with_categories.json": "cfe19e8303233840cea8b1de177c143a30861ea75fd0ca31e8e0e42347eb2e2c",
    "qa_pairs_unfiltered.json": "ede10b4f9fb05cf65ec10d3004e40c500d9aa8e57330b5176c26a0ae7a169a68",
    "ct_rate_validation_reports.json": "182df6bde727289d69270f7de7aaf5af570ecd3c1b66cc8ff4c653bae8b125cd",
}
DUPLICATE_POLICIES = ("error", "warn")
_MAX_LISTED = 10


@dataclass
class ValidationReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mapped_categories: dict[str, int] = field(default_factory=dict)  # "spelling -> canonical": count
    uncategorised: int = 0
    duplicates: int = 0
    missing_volumes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "ok": self.ok, "errors": self.errors, "warnings": self.warnings,
            "mapped_categories": self.mapped_categories, "uncategorised": self.uncategorised,
            "duplicates": self.duplicates, "missing_volumes": self.missing_volumes,
        }


def question_key(text: str) -> str:
    """The form two questions are compared in: case-folded, single spaces, no trailing punctuation."""
    return re.sub(r"\s+", " ", text.casefold()).strip().rstrip("?.! ")


def validate_dataset(
    dataset: Dataset, *, duplicates: str = "error", check_volumes: bool = False
) -> tuple[Dataset, ValidationReport]:
    """Check `dataset` and return it with categories normalised, plus the report."""
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    report = ValidationReport()
    mapped: Counter = Counter()
    any_categories = any(item.categories for item in dataset.items)
    seen: dict[tuple[str, str], str] = {}
    items = []
    for item in dataset.items:
        for name, text in (("question", item.question), ("answer", item.answer)):
            if not text.strip():
                report.errors.append(f"{item.question_id}: empty {name}")
        key = (item.image_path, question_key(item.question))
        if key in seen:
            report.duplicates += 1
            message = f"{item.question_id}: duplicate of {seen[key]} ({item.question!r})"
            (report.errors if duplicates == "error" else report.warnings).append(message)
        else:
            seen[key] = item.question_id
        canonical = []
        for label in item.categories:
            target = normalize_category(label)
            if target is None:
                report.errors.append(f"{item.question_id}: unknown spatial category {label!r}")
            else:
                if target != label:
                    mapped[f"{label} -> {target}"] += 1
                if target not in canonical:
                    canonical.append(target)
        if any_categories and not item.categories:
            report.uncategorised += 1
        items.append(replace(item, categories=tuple(canonical)))
    report.mapped_categories = dict(mapped)
    for spelling, count in mapped.items():
        report.warnings.append(f"category spelling mapped {count}x: {spelling}")
    if report.uncategorised:
        report.warnings.append(f"{report.uncategorised} question(s) have an empty category list")
    if check_volumes:
        missing = [p for p in dataset.by_volume() if not dataset.volume_path(p).is_file()]
        report.missing_volumes = missing
        if missing:
            shown = ", ".join(missing[:_MAX_LISTED]) + (" ..." if len(missing) > _MAX_LISTED else "")
            report.errors.append(
                f"{len(missing)} of {len(dataset.by_volume())} volume(s) not found under {dataset.data_root}: {shown}"
            )
    return replace(dataset, items=items), report


def resolve_source(source: str, cache_dir: Path, sha256: str | None = None) -> Path:
    """A local path as is; an http(s) URL fetched into `cache_dir` and checked against `sha256`
    (default: the pin of a published file of the same name)."""
    if not re.match(r"^https?://", source):
        return Path(source)
    name = source.rstrip("/").rsplit("/", 1)[-1]
    pin = sha256 or PUBLISHED_FILES.get(name)
    return fetch_url(source, cache_dir / name, pin)


def prepare_ct_spatialvqa(
    source: str,
    out_dir: str | Path,
    *,
    sha256: str | None = None,
    data_root: str | Path | None = None,
    duplicates: str = "error",
    check_volumes: bool = False,
) -> dict:
    """Load (fetching a URL first), validate, and write ``dataset.jsonl`` + ``manifest.json``.

    Raises `DatasetError` listing the first problems when validation finds errors; nothing is
    written then. Returns the manifest with the validation report under ``"validation"``.
    """
    out_dir = Path(out_dir)
    path = resolve_source(source, out_dir / "source", sha256)
    dataset = load_dataset(path, data_root=data_root)
    dataset, report = validate_dataset(dataset, duplicates=duplicates, check_volumes=check_volumes)
    if not report.ok:
        shown = "\n  ".join(report.errors[:_MAX_LISTED])
        more = f"\n  ... and {len(report.errors) - _MAX_LISTED} more" if len(report.errors) > _MAX_LISTED else ""
        raise DatasetError(f"{len(report.errors)} validation error(s):\n  {shown}{more}", path)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "dataset.jsonl").open("w", encoding="utf-8") as handle:
        for item in dataset.items:
            handle.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
    manifest = dataset_manifest(dataset)
    manifest["validation"] = report.to_dict()
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
