"""How closely a filter or tagger agrees with the published LLM decisions.

Reference labels come from the published files:

* filter: a pair of ``qa_pairs_unfiltered.json`` is *kept* when its question is among its
  volume's pairs in ``qa_pairs.json``, *removed* otherwise. Volumes that are missing from
  ``qa_pairs.json`` altogether (6 of 1,607) are left out: they were dropped whole, which is not
  a per-pair filter decision.
* categories: the ``category`` lists of ``qa_pairs_with_categories.json``, normalised to the six
  canonical labels (pairs with an empty list are left out of the category figures).

Volumes are split by a hash of their name into a *dev* split (70%, the one the rules were
written against) and a *heldout* split (30%, not looked at while writing them); figures are
reported per split, and the held-out ones are the honest estimate.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from ctbench.datasets.categories import CATEGORIES, SHORT_NAMES, normalize_categories
from ctbench.errors import DatasetError

SPLITS = ("dev", "heldout", "all")
HELDOUT_PERCENT = 30


def split_of(volume_name: str) -> str:
    """'heldout' for about 30% of volumes, chosen by a hash of the name; 'dev' for the rest."""
    bucket = int(hashlib.sha256(volume_name.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "heldout" if bucket < HELDOUT_PERCENT else "dev"


Label = TypeVar("Label")


@dataclass(frozen=True)
class LabelledPair(Generic[Label]):
    volume: str
    question: str
    answer: str
    label: Label  # bool (kept) or tuple of categories


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError("file not found", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"malformed JSON: {exc.msg}", path, exc.lineno) from None
    if not isinstance(data, dict):
        raise DatasetError("expected an object of volume_name -> {'qa_pairs': [...]}", path)
    return data


def _pairs(data: dict, path: Path, volume: str) -> list[dict]:
    entry = data[volume]
    if not isinstance(entry, dict) or not isinstance(entry.get("qa_pairs"), list):
        raise DatasetError(f"volume {volume!r}: expected {{'qa_pairs': [...]}}", path)
    return entry["qa_pairs"]


def filter_labels(unfiltered: str | Path, filtered: str | Path) -> list[LabelledPair[bool]]:
    """Each unfiltered pair labelled kept/removed by the published filter."""
    unfiltered, filtered = Path(unfiltered), Path(filtered)
    before, after = _read_json(unfiltered), _read_json(filtered)
    labelled = []
    for volume in before:
        if volume not in after:
            continue
        kept = {p.get("question") for p in _pairs(after, filtered, volume)}
        for pair in _pairs(before, unfiltered, volume):
            labelled.append(LabelledPair(volume, pair["question"], pair["answer"], pair["question"] in kept))
    return labelled


def category_labels(with_categories: str | Path) -> list[LabelledPair[tuple[str, ...]]]:
    """Each categorised pair with its normalised published categories (empty lists left out)."""
    path = Path(with_categories)
    data = _read_json(path)
    labelled = []
    for volume in data:
        for index, pair in enumerate(_pairs(data, path, volume)):
            cats = normalize_categories(pair.get("category") or (), where=f"{path}: {volume}::{index}")
            if cats:
                labelled.append(LabelledPair(volume, pair["question"], pair["answer"], cats))
    return labelled


@dataclass(frozen=True)
class Agreement:
    name: str
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        n = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / n if n else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def to_dict(self) -> dict:
        return {
            "name": self.name, "precision": round(self.precision, 4), "recall": round(self.recall, 4),
            "f1": round(self.f1, 4), "accuracy": round(self.accuracy, 4), "support": self.support,
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
        }


def _count(name: str, truth: Iterable[bool], predicted: Iterable[bool]) -> Agreement:
    tp = fp = fn = tn = 0
    for t, p in zip(truth, predicted):
        if t and p:
            tp += 1
        elif p:
            fp += 1
        elif t:
            fn += 1
        else:
            tn += 1
    return Agreement(name, tp, fp, fn, tn)


def _select(pairs: list[LabelledPair[Label]], split: str) -> list[LabelledPair[Label]]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return pairs if split == "all" else [p for p in pairs if split_of(p.volume) == split]


def evaluate_filter(
    pairs: list[LabelledPair[bool]], decide: Callable[[str, str], bool], split: str = "heldout"
) -> dict:
    """Precision/recall/F1 for both decisions (kept, removed) against the published labels."""
    chosen = _select(pairs, split)
    truth = [bool(p.label) for p in chosen]
    predicted = [bool(decide(p.question, p.answer)) for p in chosen]
    kept = _count("kept", truth, predicted)
    removed = _count("removed", [not t for t in truth], [not p for p in predicted])
    return {
        "split": split, "n_pairs": len(chosen), "n_volumes": len({p.volume for p in chosen}),
        "accuracy": round(kept.accuracy, 4),
        "decisions": [kept.to_dict(), removed.to_dict()],
    }


def evaluate_categories(
    pairs: list[LabelledPair[tuple[str, ...]]], tag: Callable[[str, str], Iterable[str]], split: str = "heldout"
) -> dict:
    """Per-category precision/recall/F1 (each category a yes/no decision per pair), plus micro
    and macro averages and the exact-set match rate."""
    chosen = _select(pairs, split)
    predicted = [set(tag(p.question, p.answer)) for p in chosen]
    rows = []
    for category in CATEGORIES:
        row = _count(
            SHORT_NAMES[category], [category in p.label for p in chosen], [category in s for s in predicted]
        ).to_dict()
        row["category"] = category
        rows.append(row)
    tp = sum(r["tp"] for r in rows)
    fp = sum(r["fp"] for r in rows)
    fn = sum(r["fn"] for r in rows)
    micro = Agreement("micro", tp, fp, fn, 0)
    exact = sum(set(p.label) == s for p, s in zip(chosen, predicted))
    return {
        "split": split, "n_pairs": len(chosen), "n_volumes": len({p.volume for p in chosen}),
        "categories": rows,
        "micro": {k: v for k, v in micro.to_dict().items() if k in ("precision", "recall", "f1")},
        "macro_f1": round(sum(r["f1"] for r in rows) / len(rows), 4),
        "exact_set_match": round(exact / len(chosen), 4) if chosen else 0.0,
    }
