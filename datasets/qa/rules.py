"""Rule-based, offline stand-ins for the LLM spatial filter and category tagger.

Both work on the words of a QA pair and say why they decided (the names of the rules that fired),
so a reviewer can see what a decision rests on. They need no API key and are deterministic; how
closely they agree with the published LLM decisions is measured by `ctbench.datasets.qa.agreement`
(figures in BENCHMARKS.md). The word lists were written by reading the development split of the
published pairs only (see `agreement.split_of`); the held-out split was not used to write them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from ctbench.datasets.categories import (
    ADJACENCY,
    CATEGORIES,
    CENTRICITY,
    DEPTH,
    EXTENT,
    LATERALITY,
    LONGITUDINAL,
    SHORT_NAMES,
)

RULES_VERSION = "rules-1"


def _words(*patterns: str) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.IGNORECASE)


Value = TypeVar("Value")


@dataclass(frozen=True)
class Decision(Generic[Value]):
    value: Value  # bool for the filter, tuple of categories for the tagger
    reasons: tuple[str, ...]


# --- spatial filter ---------------------------------------------------------------------------
# A question is spatial when answering it needs to know *where* something is. Strong cues are
# location words; weak cues are anatomical sub-regions that often, but not always, make it so.
_LOCATION_QUESTION = _words(
    r"where", r"in which", r"on which", r"which (?:side|lung|lobes?|segments?|part|portion|level|region|area|zone)",
    r"at (?:what|which) level", r"located", r"location", r"localization", r"distribution",
    r"unilateral(?:ly)?", r"bilateral(?:ly)?", r"one side", r"one or both", r"both sides",
    r"laterality", r"orientation", r"either", r"each (?:lung|side|hemithora\w*)",
    r"both (?:lungs?|hemithora\w*|kidneys|breasts|axilla\w*)", r"extend(?:s|ing)?", r"extension", r"confined", r"relative to",
    r"in relation to", r"relationship", r"spatial", r"position", r"positioned",
)
_LOCATION_WORDS = _words(
    r"left", r"right", r"lobes?", r"segments?", r"segmental", r"subsegment(?:al|ary)", r"lingul(?:a|ar)",
    r"apical", r"apex", r"apic\w*", r"basal", r"\w*basal", r"upper", r"lower", r"middle", r"superior", r"inferior",
    r"anterior", r"posterior", r"medial", r"lateral", r"subpleural", r"peripheral(?:ly)?", r"central(?:ly)?",
    r"midline", r"adjacent", r"fissures?", r"pole", r"level", r"junction", r"zone", r"paraseptal",
    r"peribronchial", r"perihilar", r"subcarinal", r"prevascular", r"paratracheal", r"pre-paratracheal",
    r"supraclavicular", r"retro\w+", r"hemithora\w*", r"aortopulmonary", r"costophrenic", r"sinus", r"dorsal", r"ventral",
    r"cranial", r"caudal", r"proximal", r"distal", r"between", r"along",
)
_PARENCHYMA_FINDING = _words(
    r"atelecta\w*", r"fibroatelecta\w*", r"ground[- ]glass", r"consolidations?", r"nodul\w*", r"nodules?",
    r"sequela\w*", r"pleuroparenchymal", r"bronchiectasi\w*", r"emphysema\w*", r"opacit\w+", r"densit\w+",
    r"bands?", r"fibrotic", r"infiltrates?", r"mosaic", r"scoliosis", r"hernia", r"calcifi\w+", r"plaques?",
    r"stents?", r"catheter", r"sutures?", r"cysts?",
)
# Yes/no questions about whether something normal is there or open: rarely kept.
_STATUS_QUESTION = re.compile(
    r"^(?:is|are|was|were|does|do|did|has|have|can)\b.*\b(?:any|normal|abnormal|open|obstructed|occluded|"
    r"patent|preserved|observed|detected|seen|present|noted|included|visible|evaluated|natural)\b",
    re.IGNORECASE,
)
_CONDITION_QUESTION = _words(
    r"what is the (?:condition|status|appearance|state|size|diameter|calibration|width)",
    r"what (?:was|were) (?:the )?(?:condition|status|finding)s?", r"what changes", r"what type",
    r"how (?:large|big|many|much)", r"what size",
)
_NON_SPATIAL_TOPIC = _words(
    r"lytic", r"destructive", r"occlusive", r"space[- ]occupying", r"optimally", r"contrast",
    r"calibrations?", r"patholog(?:y|ies)", r"significant", r"infiltrative", r"neural foramina",
    r"corpus heights?", r"intervertebral", r"pneumothorax", r"pericardial", r"heart",
)
# Lymph-node stations and other named regions: the published filter keeps these questions even
# when the answer is "none found", since answering needs the region.
_NODAL_REGION = _words(
    r"prevascular", r"pre-?paratracheal", r"paratracheal", r"hil(?:ar|um)", r"mediastin\w*", r"axilla\w*",
    r"supraclavicular", r"subcarinal", r"hemithora\w*", r"paraesophageal", r"aortopulmonary",
)
_LYMPH = _words(r"lymph", r"lymph nodes?", r"lymphadenopath\w*", r"nodes?")
# Stock phrases of CT-RATE reports that carry a location word but no spatial content.
_STOCK_PHRASES = re.compile(
    r"\b(?:bilateral adrenal(?: glands?)?|upper abdominal(?: organs?| sections?| region| free fluid)?|"
    r"upper abdomen|both main bronchi|main bronchi)\b",
    re.IGNORECASE,
)
_NEGATIVE_ANSWER = re.compile(r"^\s*(?:no\b|none\b|not\b|there (?:is|are|was|were) no\b)", re.IGNORECASE)


# Weight of each cue; a pair is kept when the weights of the cues that fire sum to "threshold".
WEIGHTS: dict[str, float] = {
    "nodal-region": 1.5,
    "location-question": 4.0,
    "location-words-in-question": 3.5,  # per distinct word, at most two
    "location-words-in-answer": 1.0,  # per distinct word, at most two; not for negative answers
    "focal-finding": 0.5,
    "status-question": -1.5,
    "condition-question": -4.0,
    "negative-answer": -1.0,
    "non-spatial-topic": -3.0,
    "threshold": 1.0,
}


def spatial_cues(question: str, answer: str) -> dict[str, int]:
    """The filter's cues that fire on a pair, each with how many times it counts."""
    q = _STOCK_PHRASES.sub(" ", question.strip())
    a = _STOCK_PHRASES.sub(" ", answer.strip())
    negative = bool(_NEGATIVE_ANSWER.match(a))
    cues = {
        "nodal-region": int(bool(_LYMPH.search(q) and _NODAL_REGION.search(q))),
        "location-question": int(bool(_LOCATION_QUESTION.search(q))),
        "location-words-in-question": min(len({m.lower() for m in _LOCATION_WORDS.findall(q)}), 2),
        "location-words-in-answer": 0 if negative else min(len({m.lower() for m in _LOCATION_WORDS.findall(a)}), 2),
        "focal-finding": int(bool(_PARENCHYMA_FINDING.search(q) or (not negative and _PARENCHYMA_FINDING.search(a)))),
        "status-question": int(bool(_STATUS_QUESTION.match(q))),
        "condition-question": int(bool(_CONDITION_QUESTION.search(q))),
        "negative-answer": int(negative),
        "non-spatial-topic": int(bool(_NON_SPATIAL_TOPIC.search(q))),
    }
    return {name: count for name, count in cues.items() if count}


def spatial_filter(question: str, answer: str, weights: dict[str, float] | None = None) -> Decision[bool]:
    """Keep (True) a pair whose question or answer turns on location; say which cues fired."""
    weights = weights or WEIGHTS
    cues = spatial_cues(question, answer)
    score = sum(weights[name] * count for name, count in cues.items())
    return Decision(score >= weights["threshold"], tuple(cues))


# --- category tagger --------------------------------------------------------------------------
# Each category fires on its own vocabulary, looked for in question and answer together.
_CATEGORY_PATTERNS: dict[str, re.Pattern] = {
    LATERALITY: _words(
        r"left", r"right", r"bilateral(?:ly)?", r"unilateral(?:ly)?", r"both", r"sides?", r"laterality",
        r"symmetr\w*", r"asymmetr\w*", r"lingul(?:a|ar)", r"hemithora\w*", r"contralateral", r"ipsilateral",
    ),
    LONGITUDINAL: _words(
        r"upper", r"lower", r"middle", r"superior(?:ly)?", r"inferior(?:ly)?", r"apical", r"apex", r"apices",
        r"apic\w*", r"basal", r"\w*basal", r"cranial", r"caudal", r"levels?", r"lumbar", r"[tl]\d{1,2}",
        r"above", r"pole", r"dome", r"abdominal", r"abdomen", r"vertical", r"zones?", r"subcarinal",
        r"supraclavicular", r"esophag\w*", r"hiatal", r"end",
    ),
    DEPTH: _words(
        r"anterior(?:ly)?", r"posterior(?:ly)?", r"\w*posterior", r"antero\w*", r"postero\w*", r"dorsal",
        r"ventral", r"front", r"behind", r"retro\w+", r"prevascular", r"pre-?paratracheal", r"depth",
        r"sternum", r"sternal", r"paravertebral", r"dependent", r"ap", r"anteriors", r"posteriors",
        r"kyphosis", r"pretracheal", r"subcutaneous",
    ),
    CENTRICITY: _words(
        r"medial(?:ly)?", r"lateral(?:ly)?", r"(?:postero|antero|medio|latero)\w*", r"central(?:ly)?",
        r"centrality", r"peripher\w*", r"midline", r"mediastin\w*", r"hil(?:ar|um)", r"perihilar",
        r"subpleural", r"paratracheal", r"pre-?paratracheal", r"subcarinal", r"axilla\w*", r"prevascular",
    ),
    ADJACENCY: _words(
        r"adjacent", r"adjoining", r"within", r"inside", r"contain\w*", r"surround\w*", r"around", r"near",
        r"next to", r"between", r"abutt\w*", r"relationship", r"relative to", r"contact", r"attached",
        r"invad\w*", r"neighbou?r\w*", r"coronar\w*", r"atherom\w*", r"atheroscl\w*", r"plaques?",
        r"gallbladder", r"wall", r"lumen", r"fossa", r"pericardial", r"fissures?",
    ),
    EXTENT: _words(
        r"extend\w*", r"extension", r"extent", r"diffuse(?:ly)?", r"widespread", r"confined", r"throughout",
        r"boundar\w*", r"borders?", r"span\w*", r"entire", r"whole", r"from the \w+ to",
        r"reaches", r"spread\w*", r"thickness", r"thickest", r"widths?", r"widest", r"all",
        r"partial(?:ly)?", r"cross(?:es|ing)?", r"dimensions?",
    ),
}


# The published tagger calls almost any "where, in which organ" question adjacency/containment;
# these look at the question only.
_QUESTION_PATTERNS: dict[str, re.Pattern] = {
    ADJACENCY: re.compile(
        r"\bwhere\b|\bin (?:the )?(?:\w+ ){0,3}(?:lungs?|lobes?|liver|kidneys?|spleen|esophagus|aorta|mediastinum|"
        r"parenchyma|segments?|breasts?|thyroid|glands?|regions?|areas?|fossae?|walls?|sections?|bronch\w*|"
        r"trachea|heart|pleura|vertebra\w*)\b",
        re.IGNORECASE,
    ),
}


def tag_categories(question: str, answer: str) -> Decision[tuple[str, ...]]:
    """The spatial categories a pair exercises (canonical order), with the word that fired each."""
    text = f"{question} {answer}"
    found: list[str] = []
    reasons: list[str] = []
    for category in CATEGORIES:
        match = _CATEGORY_PATTERNS[category].search(text)
        if match is None and category in _QUESTION_PATTERNS:
            match = _QUESTION_PATTERNS[category].search(question)
        if match:
            found.append(category)
            reasons.append(f"{SHORT_NAMES[category]}: {match.group(0).lower()!r}")
    return Decision(tuple(found), tuple(reasons))
