"""The six spatial categories of CT-SpatialVQA, and mapping of near-miss spellings onto them."""
from __future__ import annotations

import re

from ctbench.errors import DatasetError

LATERALITY = "Laterality & Bilateral Symmetry"
LONGITUDINAL = "Longitudinal (Vertical) Position"
DEPTH = "Anterior-Posterior (Depth) Relations"
CENTRICITY = "Medial-Lateral Orientation (Centricity)"
ADJACENCY = "Adjacency & Containment"
EXTENT = "Spatial Extent & Boundaries"

CATEGORIES: tuple[str, ...] = (LATERALITY, LONGITUDINAL, DEPTH, CENTRICITY, ADJACENCY, EXTENT)

# Short names for tables and CLI output.
SHORT_NAMES = {
    LATERALITY: "laterality",
    LONGITUDINAL: "longitudinal",
    DEPTH: "depth",
    CENTRICITY: "centricity",
    ADJACENCY: "adjacency",
    EXTENT: "extent",
}


def _key(label: str) -> str:
    """Lower-case letters only: 'Medial-Lateral Orientation' -> 'mediallateralorientation'."""
    return re.sub(r"[^a-z]", "", label.lower().replace("&", "and"))


# Each canonical label is reachable from its full spelling, its short name, and the head before
# the parenthesis ("Medial-Lateral Orientation", as the published file spells it twice).
_ALIASES: dict[str, str] = {}
for _label in CATEGORIES:
    _ALIASES[_key(_label)] = _label
    _ALIASES[_key(_label.split("(")[0])] = _label
    _ALIASES[_key(SHORT_NAMES[_label])] = _label
_ALIASES.update(
    {
        _key("Laterality"): LATERALITY,
        _key("Bilateral Symmetry"): LATERALITY,
        _key("Longitudinal Position"): LONGITUDINAL,
        _key("Vertical Position"): LONGITUDINAL,
        _key("Anterior-Posterior Relations"): DEPTH,
        _key("Depth Relations"): DEPTH,
        _key("Medial-Lateral Orientation"): CENTRICITY,
        _key("Centricity"): CENTRICITY,
        _key("Adjacency and Containment"): ADJACENCY,
        _key("Spatial Extent and Boundaries"): EXTENT,
    }
)


def normalize_category(label: str) -> str | None:
    """The canonical label for `label`, or None if it is not a recognisable spatial category."""
    return _ALIASES.get(_key(label))


def normalize_categories(labels, where: str = "") -> tuple[str, ...]:
    """Canonical labels, in canonical order, without duplicates. Unknown labels raise DatasetError."""
    if isinstance(labels, str):
        labels = [labels]
    found = set()
    for label in labels or ():
        canonical = normalize_category(label)
        if canonical is None:
            raise DatasetError(
                f"{where + ': ' if where else ''}unknown spatial category {label!r}; "
                f"expected one of: {', '.join(CATEGORIES)}"
            )
        found.add(canonical)
    return tuple(c for c in CATEGORIES if c in found)
