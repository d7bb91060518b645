"""The question templates of measured datasets, and the answer each one takes from a `LabelMap`.

Three forms (`form`): **open** questions ask for a number and a unit ("What is the volume of the
liver in mL?" -> "1502.3 mL"); **yes/no** comparisons ("Is the left kidney larger than the right
kidney?", asked in both orders so yes and no are equally frequent); and questions **with options**
("Which lies further anterior, the renal cyst or the liver?", options "the renal cyst" / "the liver").

A comparison is asked only when its answer is decisive: sizes differ by at least
`SIZE_MARGIN` (relative), positions by at least `POSITION_MARGIN_MM` along the axis asked, and
contact only when the structures touch or are at least `CONTACT_GAP_STEPS` voxel steps apart
(a voxel step: the voxel's diagonal). A centroid distance is asked only when it is at least that
many voxel steps too (a lesion at its organ's centre has no meaningful one), containment only of a
lesion in an organ.
Both the dataset builder (on the true label map) and the `geometric` baseline (on the label map it
segments itself) answer with `answer()`, so a question means exactly one computation.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ctbench.datasets.categories import ADJACENCY, DEPTH, EXTENT, LATERALITY, LONGITUDINAL
from ctbench.datasets.measure.quantities import LabelMap

SIZE_MARGIN = 0.10
POSITION_MARGIN_MM = 5.0
CONTACT_GAP_STEPS = 2.0
PAIR_POLICIES = ("lesions", "all")  # pairs with at least one lesion (default), or every pair


@dataclass(frozen=True)
class Answer:
    text: str
    value: float | bool | None = None  # the measured number (open) or truth value (yes/no)
    unit: str = ""


@dataclass(frozen=True)
class Template:
    question_type: str
    text: str  # with {a} (and {b} for pairs)
    form: str  # open | yes/no | options
    category: str
    unit: str = ""

    @property
    def scope(self) -> str:
        return "pair" if "{b}" in self.text else "structure"

    def render(self, a: str, b: str | None = None) -> str:
        return self.text.format(a=a, b=b)

    def options(self, a: str, b: str | None = None) -> list[str]:
        if self.form == "yes/no":
            return ["yes", "no"]
        if self.form == "options":
            return [f"the {a}", f"the {b}"]
        return []

    def pattern(self) -> re.Pattern:
        escaped = re.escape(self.text).replace(r"\{a\}", "(?P<a>.+?)").replace(r"\{b\}", "(?P<b>.+?)")
        return re.compile(escaped + r"\Z", re.IGNORECASE)


def _number(value: float, unit: str) -> Answer:
    value = round(float(value), 3)  # answer_value; the answer text is it to 0.1
    return Answer(f"{value:.1f} {unit}", value, unit)


def _yes_no(flag: bool) -> Answer:
    return Answer("yes" if flag else "no", bool(flag))


def _pick(a: str, b: str, first: bool) -> Answer:
    return Answer(f"the {a}" if first else f"the {b}", bool(first))


_AXIS = {"left-right": 0, "anterior-posterior": 1, "craniocaudal": 2}

TEMPLATES: tuple[Template, ...] = (
    Template("measured_volume", "What is the volume of the {a} in mL?", "open", EXTENT, "mL"),
    Template("measured_extent_lr", "What is the left-right extent of the {a} in mm?", "open", EXTENT, "mm"),
    Template("measured_extent_ap", "What is the anterior-posterior extent of the {a} in mm?", "open", EXTENT, "mm"),
    Template("measured_extent_cc", "What is the craniocaudal extent of the {a} in mm?", "open", EXTENT, "mm"),
    Template("measured_centroid_distance", "What is the distance between the centres of the {a} and the {b} in mm?", "open", ADJACENCY, "mm"),
    Template("measured_surface_distance", "What is the shortest distance between the {a} and the {b} in mm?", "open", ADJACENCY, "mm"),
    Template("measured_larger", "Is the {a} larger than the {b}?", "yes/no", EXTENT),
    Template("measured_larger_choice", "Which is larger, the {a} or the {b}?", "options", EXTENT),
    Template("measured_left", "Which lies further to the patient's left, the {a} or the {b}?", "options", LATERALITY),
    Template("measured_superior", "Which lies higher (further superior), the {a} or the {b}?", "options", LONGITUDINAL),
    Template("measured_anterior", "Which lies further anterior, the {a} or the {b}?", "options", DEPTH),
    Template("measured_contact", "Does the {a} touch the {b}?", "yes/no", ADJACENCY),
    Template("measured_containment", "Is the {a} contained within the {b}?", "yes/no", ADJACENCY),
)
BY_TYPE = {t.question_type: t for t in TEMPLATES}
_PATTERNS = [(t, t.pattern()) for t in TEMPLATES]
#: Question types whose answers are a number with a unit (scored by `evaluation/numeric_scoring.py`).
NUMERIC_QUESTION_TYPES = frozenset(t.question_type for t in TEMPLATES if t.form == "open")


def _answers() -> dict[str, Callable[[LabelMap, str, str | None], Answer]]:
    def extent(axis: int):
        return lambda m, a, b: _number(float(m.require(a).extent_mm[axis]), "mm")

    return {
        "measured_volume": lambda m, a, b: _number(m.require(a).volume_ml, "mL"),
        "measured_extent_lr": extent(0),
        "measured_extent_ap": extent(1),
        "measured_extent_cc": extent(2),
        "measured_centroid_distance": lambda m, a, b: _number(m.pair(a, b).centroid_distance_mm, "mm"),
        "measured_surface_distance": lambda m, a, b: _number(m.pair(a, b).surface_distance_mm, "mm"),
        "measured_larger": lambda m, a, b: _yes_no(m.require(a).volume_ml > m.require(b).volume_ml),
        "measured_larger_choice": lambda m, a, b: _pick(a, b, m.require(a).volume_ml > m.require(b).volume_ml),
        # LPS: +x is the patient's left, -y anterior, +z superior.
        "measured_left": lambda m, a, b: _pick(a, b, m.require(a).centroid[0] > m.require(b).centroid[0]),
        "measured_superior": lambda m, a, b: _pick(a, b, m.require(a).centroid[2] > m.require(b).centroid[2]),
        "measured_anterior": lambda m, a, b: _pick(a, b, m.require(a).centroid[1] < m.require(b).centroid[1]),
        "measured_contact": lambda m, a, b: _yes_no(m.pair(a, b).contact),
        "measured_containment": lambda m, a, b: _yes_no(m.pair(a, b).a_within_b),
    }


ANSWERS = _answers()


def answer(template: Template, label_map: LabelMap, a: str, b: str | None = None) -> Answer:
    """The answer to `template` about structure `a` (and `b`) measured on `label_map`."""
    return ANSWERS[template.question_type](label_map, a, b)


def match_question(text: str) -> tuple[Template, str, str | None] | None:
    """(template, a, b) when `text` is a measured question, else None."""
    stripped = text.strip()
    for template, pattern in _PATTERNS:
        found = pattern.match(stripped)
        if found:
            groups = found.groupdict()
            return template, groups["a"], groups.get("b")
    return None


# --- which questions a label map gets --------------------------------------------------------
def _decisive(template: Template, m: LabelMap, a: str, b: str) -> bool:
    sa, sb = m.require(a), m.require(b)
    qtype = template.question_type
    if qtype in ("measured_larger", "measured_larger_choice"):
        big, small = max(sa.volume_ml, sb.volume_ml), min(sa.volume_ml, sb.volume_ml)
        return big - small >= SIZE_MARGIN * big
    axis = {"measured_left": 0, "measured_anterior": 1, "measured_superior": 2}.get(qtype)
    if axis is not None:
        return abs(float(sa.centroid[axis] - sb.centroid[axis])) >= POSITION_MARGIN_MM
    step = float(np.linalg.norm(m.volume.spacing))
    if qtype == "measured_contact":
        pair = m.pair(a, b)
        return pair.contact or pair.surface_distance_mm >= CONTACT_GAP_STEPS * step
    if qtype == "measured_centroid_distance":
        return m.pair(a, b).centroid_distance_mm >= CONTACT_GAP_STEPS * step
    if qtype == "measured_containment":
        return sa.structure.kind == "lesion" and sb.structure.kind == "organ"
    return True


def _pairs(m: LabelMap, policy: str) -> list[tuple[str, str]]:
    names = list(m.structures())
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    if policy == "all":
        return pairs
    kind = {name: m.require(name).structure.kind for name in names}
    return [(a, b) for a, b in pairs if "lesion" in (kind[a], kind[b])]


def questions_for(m: LabelMap, policy: str = "lesions") -> list[dict]:
    """Every question the templates ask about `m`, in a fixed order (structures, then pairs)."""
    if policy not in PAIR_POLICIES:
        raise ValueError(f"pair policy must be one of {PAIR_POLICIES}, got {policy!r}")
    out: list[dict] = []

    def add(template: Template, a: str, b: str | None = None) -> None:
        result = answer(template, m, a, b)
        row: dict[str, object] = {
            "question": template.render(a, b), "answer": result.text, "options": template.options(a, b),
            "question_type": template.question_type, "category": [template.category],
            "structures": [a] if b is None else [a, b],
        }
        if template.form == "open":
            row["answer_value"], row["answer_unit"] = result.value, result.unit
        out.append(row)

    for name in m.structures():
        for template in TEMPLATES:
            if template.scope == "structure":
                add(template, name)
    for a, b in _pairs(m, policy):
        kind = {a: m.require(a).structure.kind, b: m.require(b).structure.kind}
        for template in TEMPLATES:
            if template.scope != "pair":
                continue
            if template.question_type == "measured_containment":
                inner, outer = (a, b) if kind[a] == "lesion" else (b, a)
                if _decisive(template, m, inner, outer):
                    add(template, inner, outer)
                continue
            if not _decisive(template, m, a, b):
                continue
            add(template, a, b)
            if template.question_type == "measured_larger":
                add(template, b, a)  # both orders: yes and no equally often
    return out
