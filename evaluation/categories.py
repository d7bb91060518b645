"""Category labels as scoring sees them.

The six canonical categories and their near-miss spellings live in `ctbench.datasets.categories`
(one place). Scoring is tolerant where dataset validation is strict: a label that is no known
spatial category is kept as given (and reported as its own group) instead of failing the score.
"""
from __future__ import annotations

from ctbench.datasets.categories import CATEGORIES, normalize_category

__all__ = ["CATEGORIES", "canonical_categories", "canonical_category"]


def canonical_category(label: str) -> str:
    """The canonical category a label means, or the label itself (stripped) if none fits."""
    return normalize_category(label) or label.strip()


def canonical_categories(labels) -> tuple[str, ...]:
    """Canonical labels, de-duplicated, in first-seen order."""
    out: list[str] = []
    for label in labels:
        c = canonical_category(label)
        if c and c not in out:
            out.append(c)
    return tuple(out)
