"""The published CT-SpatialVQA reference runs, and checking our scores against the published ones.

Layout (``shared/data/ct-spatialvqa``): ``qa_pairs_with_categories.json`` (the questions),
``reference-runs/predictions/<model>.jsonl``, ``reference-runs/judge-verdicts/<model>.<judge>.json``
and ``reference-runs/published-metrics/*``. Found at ``$CTBENCH_SHARED`` (the shared folder or the
ct-spatialvqa folder itself) or at ``<repo>/../shared/data/ct-spatialvqa``.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctbench.datasets.qa_items import Dataset, load_dataset
from ctbench.errors import DatasetError
from ctbench.evaluation.jury import find_verdict_files
from ctbench.evaluation.ledger import read_ledger
from ctbench.evaluation.scoring import ScoreResult, score_predictions
from ctbench.evaluation.text_metrics import OFFLINE_TEXT_METRICS, TextMetric, TextProtocol

TEXT_COLUMNS = ("bleu", "meteor", "rouge1_f", "rouge2_f", "rougeL_f", "sbert_cosine")


def locate_reference(path: str | Path | None = None) -> Path | None:
    """The ct-spatialvqa folder, or None when it cannot be found.

    An explicit `path` is the only place looked at. Otherwise: $CTBENCH_SHARED, then `../shared`
    next to the current folder or next to any folder above this installed package (a checkout's
    sibling `shared/`).
    """
    candidates: list[Path] = []
    if path:
        candidates.append(Path(path))
    else:
        if os.environ.get("CTBENCH_SHARED"):
            candidates.append(Path(os.environ["CTBENCH_SHARED"]))
        here = Path(__file__).resolve()
        for parent in [Path.cwd(), *here.parents]:
            candidates.append(parent / ".." / "shared")
    for c in candidates:
        for sub in (c, c / "ct-spatialvqa", c / "data" / "ct-spatialvqa", c.parent / "ct-spatialvqa"):
            if (sub / "qa_pairs.json").is_file() and (sub / "reference-runs").is_dir():
                return sub.resolve()
    return None


@dataclass
class ReferenceRuns:
    root: Path
    dataset: Dataset
    prediction_files: dict[str, Path]
    verdict_files: dict[str, dict[str, Path]]
    published: dict[str, Any] = field(default_factory=dict)


def load_reference_runs(path: str | Path | None = None) -> ReferenceRuns:
    root = locate_reference(path)
    if root is None:
        raise DatasetError(
            "CT-SpatialVQA reference runs not found: expected <repo>/../shared/data/ct-spatialvqa "
            "(with qa_pairs.json and reference-runs/) or $CTBENCH_SHARED pointing at it", path)
    questions = root / "qa_pairs_with_categories.json"
    dataset = load_dataset(questions if questions.is_file() else root / "qa_pairs.json")
    dataset.name = "ct-spatialvqa"
    runs = root / "reference-runs"
    preds = {p.stem: p for p in sorted((runs / "predictions").glob("*.jsonl"))}
    verdicts = find_verdict_files(runs / "judge-verdicts") if (runs / "judge-verdicts").is_dir() else {}
    return ReferenceRuns(root, dataset, preds, verdicts, load_published(runs / "published-metrics"))


def load_published(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (folder / "text_metrics.csv").is_file():
        out["text_metrics"] = {r["model"]: r for r in csv.DictReader((folder / "text_metrics.csv").open())}
    if (folder / "jury_accuracy.json").is_file():
        out["jury_accuracy"] = {r["model"]: r for r in json.loads((folder / "jury_accuracy.json").read_text())}
    if (folder / "category_accuracy.csv").is_file():
        out["category_accuracy"] = {r["category"]: r for r in csv.DictReader((folder / "category_accuracy.csv").open())}
    return out


def score_reference(ref: ReferenceRuns, text_metrics: Sequence[str | TextMetric] = OFFLINE_TEXT_METRICS,
                    models: Sequence[str] | None = None) -> ScoreResult:
    """Score the reference predictions with the published protocol (lower-case, blanks skipped)."""
    names = [m for m in ref.prediction_files if models is None or m in models]
    loaded = [read_ledger(ref.prediction_files[m], ref.dataset, server=m) for m in names]
    verdicts = {m: v for m, v in ref.verdict_files.items() if m in names}
    return score_predictions(ref.dataset, loaded, text_metrics, TextProtocol(lowercase=True, skip_empty=True),
                             verdicts)


def compare_with_published(result: ScoreResult, ref: ReferenceRuns) -> list[dict[str, Any]]:
    """One row per published figure: ours, published, absolute difference, tolerance, ok."""
    out: list[dict[str, Any]] = []

    def add(model, figure, ours, published, tol, note=""):
        diff = None if ours is None else abs(ours - published)
        # A metric this installation cannot compute is not checked (ok None), not a failed figure.
        ok = None if note.startswith(UNAVAILABLE) else diff is not None and diff <= tol
        out.append({"model": model, "figure": figure, "ours": ours, "published": published,
                    "abs_diff": diff, "tolerance": tol, "ok": ok, "note": note})

    text = ref.published.get("text_metrics", {})
    for model, row in text.items():
        if model not in result.servers:
            continue
        for col in TEXT_COLUMNS:
            try:
                mine = result.value(model, col)
            except KeyError:
                continue
            add(model, col, mine["value"], float(row[col]), 1e-6, mine.get("note", ""))
        try:
            add(model, "text_count", float(result.value(model, TEXT_COLUMNS[0])["scored"]), float(row["count"]), 0)
        except KeyError:
            pass
    for model, row in ref.published.get("jury_accuracy", {}).items():
        if model not in result.servers or "jury_accuracy_published" not in {r["metric"] for r in result.rows}:
            continue
        mine = result.value(model, "jury_accuracy_published")
        add(model, "jury_accuracy (as published)", mine["value"], float(row["llm_jury_accuracy"]), 0.0)
        add(model, "jury_count (as published)", float(mine["scored"]), float(row["count"]), 0)
        aligned = result.value(model, "jury_accuracy")
        out.append({"model": model, "figure": "jury_accuracy (aligned by identity)", "ours": aligned["value"],
                    "published": float(row["llm_jury_accuracy"]), "abs_diff": abs(aligned["value"] - float(row["llm_jury_accuracy"])),
                    "tolerance": None, "ok": None, "note": "not expected to match where a verdict file is misaligned"})
    for category, row in ref.published.get("category_accuracy", {}).items():
        for model in result.servers:
            if model not in row:
                continue
            try:
                mine = result.value(model, "jury_accuracy_published", "category", category)
            except KeyError:
                continue
            add(model, f"category % (as published): {category}", 100 * mine["value"], float(row[model]), 0.1)
    return out


UNAVAILABLE = "unavailable: "


@dataclass
class Verdict:
    """The reproduction's outcome over the figures that have a tolerance."""

    reproduced: int
    failed: int
    not_checked: list[str]  # why figures could not be computed here (missing extras)

    @property
    def checked(self) -> int:
        return self.reproduced + self.failed

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def line(self) -> str:
        total = self.checked + len(self.not_checked)
        text = f"{self.reproduced} of {self.checked} published figures reproduced"
        if self.failed:
            text += f" ({self.failed} not reproduced: see reproduction.csv)"
        if self.not_checked:
            reasons = "; ".join(sorted(set(self.not_checked)))
            text += (f"; {len(self.not_checked)} of {total} not checked here: install ctbench[metrics] "
                     f"(and WordNet: scripts/install-wordnet.sh) to compute them ({reasons})")
        return text


def reproduction_verdict(checks: list[dict[str, Any]]) -> Verdict:
    graded = [c for c in checks if c["tolerance"] is not None]
    missing = [c["note"][len(UNAVAILABLE):] for c in graded if c["ok"] is None and c["note"].startswith(UNAVAILABLE)]
    return Verdict(reproduced=sum(c["ok"] is True for c in graded), failed=sum(c["ok"] is False for c in graded),
                   not_checked=missing)
