"""The six CT-SpatialVQA spatial categories, and mapping of near-miss labels onto them.

The published category labels were assigned by an LLM; a few are spelled slightly differently
(e.g. "Medial-Lateral Orientation" without "(Centricity)"). `canonical_category` maps such labels
(and the phantom generator's short names) to the canonical six and leaves anything else as given.
"""
from __future__ import annotations

import re

CATEGORIES = (
    "Laterality & Bilateral Symmetry",
    "Longitudinal (Vertical) Position",
    "Anterior-Posterior (Depth) Relations",
    "Medial-Lateral Orientation (Centricity)",
    "Adjacency & Containment",
    "Spatial Extent & Boundaries",
)

# keyword (on the squashed label) -> canonical category; first hit wins, most specific first
_KEYWORDS = (
    ("mediallateral", CATEGORIES[3]),
    ("centricity", CATEGORIES[3]),
    ("laterality", CATEGORIES[0]),
    ("bilateral", CATEGORIES[0]),
    ("longitudinal", CATEGORIES[1]),
    ("vertical", CATEGORIES[1]),
    ("anteriorposterior", CATEGORIES[2]),
    ("depth", CATEGORIES[2]),
    ("adjacency", CATEGORIES[4]),
    ("containment", CATEGORIES[4]),
    ("extent", CATEGORIES[5]),
    ("boundar", CATEGORIES[5]),
)


def _squash(label: str) -> str:
    return re.sub(r"[^a-z]", "", label.lower())


def canonical_category(label: str) -> str:
    """The canonical category a label means, or the label itself (stripped) if none fits."""
    squashed = _squash(label)
    for keyword, category in _KEYWORDS:
        if keyword in squashed:
            return category
    return label.strip()


def canonical_categories(labels) -> tuple[str, ...]:
    """Canonical labels, de-duplicated, in first-seen order."""
    out: list[str] = []
    for label in labels:
        c = canonical_category(label)
        if c and c not in out:
            out.append(c)
    return tuple(out)
