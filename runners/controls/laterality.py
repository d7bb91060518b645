"""Laterality words: swapping them (the expected answer of a mirrored volume) and finding them
(whether an answer names a side). Whole words only, case kept: "Left" -> "Right"."""
from __future__ import annotations

import re

SWAP = {"left": "right", "right": "left", "leftward": "rightward", "rightward": "leftward",
        "leftmost": "rightmost", "rightmost": "leftmost"}
_WORD = re.compile(r"\b(" + "|".join(sorted(SWAP, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def _recase(word: str, like: str) -> str:
    if like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_laterality(text: str) -> str:
    """`text` with left and right (and -ward, -most) exchanged."""
    return _WORD.sub(lambda m: _recase(SWAP[m.group(0).lower()], m.group(0)), text)


def laterality_words(text: str) -> frozenset[str]:
    """The sides a text names, lower-case ({"left"}, {"left", "right"}, or empty)."""
    return frozenset(SWAP[SWAP[m.group(0).lower()]] for m in _WORD.finditer(text or ""))


def swap_words(words: frozenset[str]) -> frozenset[str]:
    return frozenset(SWAP[w] for w in words)


def flips_under_mirror(text: str) -> bool:
    """Whether mirroring the patient changes what `text` says: it names one side, not both."""
    words = laterality_words(text)
    return bool(words) and swap_words(words) != words
