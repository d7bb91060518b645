"""A number and its unit, read from a free-text answer ("about 3.5 cm", "12-14 mm", "approximately 40 cc").

Lengths come back in millimetres, volumes in millilitres. Understood: mm / cm (and the words),
mL / ml / cc / cm³ / cm3 / cm^3 / cubic centimetres, mm³ / cubic millimetres, litres; a decimal
point or comma ("3,5 cm"; a comma before exactly three digits is a thousands separator); ranges
"3-4 cm", "3 to 4 cm", "between 3 and 4 cm" (their midpoint); hedges such as "about",
"approximately", "~", "roughly" are ignored. The first quantity of the wanted kind is taken;
a bare number takes the question's unit. Anything else is an `UnparseableNumber` with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

LENGTH, VOLUME = "length", "volume"

# (pattern, kind, factor to mm or mL): longer spellings first, so "cm³" is not read as "cm".
_UNITS: tuple[tuple[str, str, float], ...] = (
    (r"cubic\s+centimet(?:er|re)s?|cm\s*(?:\^\s*3|³|3)|cc|c\.c\.", VOLUME, 1.0),
    (r"cubic\s+millimet(?:er|re)s?|mm\s*(?:\^\s*3|³|3)", VOLUME, 0.001),
    (r"millilit(?:er|re)s?|ml", VOLUME, 1.0),
    (r"lit(?:er|re)s?", VOLUME, 1000.0),
    (r"centimet(?:er|re)s?|cm", LENGTH, 10.0),
    (r"millimet(?:er|re)s?|mm", LENGTH, 1.0),
)
_UNIT = "|".join(f"(?:{p})" for p, _, _ in _UNITS)
_NUMBER = r"\d+(?:[.,]\d+)?|[.,]\d+"
_QUANTITY = re.compile(
    rf"(?<![\w.])(?:between\s+)?(?P<a>{_NUMBER})"
    rf"(?:\s*(?:-|–|—|to|and)\s*(?P<b>{_NUMBER}))?"
    rf"(?:\s*(?P<unit>{_UNIT})(?![a-z]))?",
    re.IGNORECASE,
)
UNIT_NAMES = {LENGTH: "mm", VOLUME: "mL"}


class UnparseableNumber(ValueError):
    """A prediction with no usable number (or only numbers of another kind of unit)."""


@dataclass(frozen=True)
class Quantity:
    value: float  # in mm (length) or mL (volume)
    kind: str  # length | volume | "" (a bare number)
    text: str  # the matched words


def _number(text: str) -> float:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


def _unit(text: str) -> tuple[str, float]:
    for pattern, kind, factor in _UNITS:
        if re.fullmatch(pattern, text, re.IGNORECASE):
            return kind, factor
    raise AssertionError(text)  # pragma: no cover - the regex only matches listed units


def quantities(text: str) -> list[Quantity]:
    """Every number (or range) in `text`, with its unit converted where one follows it."""
    found = []
    for m in _QUANTITY.finditer(text):
        value = _number(m.group("a"))
        if m.group("b") is not None:
            value = (value + _number(m.group("b"))) / 2.0
        kind, factor = _unit(m.group("unit")) if m.group("unit") else ("", 1.0)
        found.append(Quantity(value * factor, kind, m.group(0).strip()))
    return found


def parse_quantity(text: str, kind: str) -> Quantity:
    """The first quantity of `kind` (length or volume) in `text`; a bare number counts as one in
    the question's unit (mm or mL) when no quantity of `kind` is given. `UnparseableNumber` otherwise."""
    if kind not in UNIT_NAMES:
        raise ValueError(f"kind must be {LENGTH!r} or {VOLUME!r}, got {kind!r}")
    found = quantities(text)
    for q in found:
        if q.kind == kind:
            return q
    bare = [q for q in found if not q.kind]
    if bare:
        return Quantity(bare[0].value, kind, bare[0].text)
    if found:
        raise UnparseableNumber(f"only {found[0].kind} units ({found[0].text!r}), expected a {kind} in {UNIT_NAMES[kind]}")
    raise UnparseableNumber("no number")


def reference_quantity(answer: str) -> Quantity:
    """A measured question's reference answer ("152.3 mL", "41.0 mm"), whose unit sets the kind."""
    found = [q for q in quantities(answer) if q.kind]
    if len(found) != 1:
        raise UnparseableNumber(f"reference answer {answer!r} is not one number with a unit")
    return found[0]
