"""Answer normalisation and the two string-level per-item matches: exact match and option match.

Normalisation follows the SQuAD convention: lower-case, punctuation to spaces, drop the articles
"a", "an", "the", collapse whitespace. Option match maps a free-text prediction to exactly one of
the question's declared options; no option or more than one is a miss (never a guess).
"""
from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

_PUNCT = re.compile("[" + re.escape(string.punctuation) + "\u2018\u2019\u201c\u201d\u2013\u2014]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_WS = re.compile(r"\s+")
_LETTER = re.compile(r"^\s*[\(\[]?([A-Za-z])[\)\]\.:]?\s*$")


def normalize_answer(text: str) -> str:
    """Lower-case, strip accents' compatibility forms, punctuation, articles and extra spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _PUNCT.sub(" ", text)
    text = _ARTICLES.sub(" ", text)
    return _WS.sub(" ", text).strip()


def exact_match(prediction: str, answer: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(answer)


def match_option(prediction: str, options: Sequence[str]) -> int | None:
    """Index of the one option `prediction` picks, or None when it picks none or several.

    In order: the option the prediction equals after normalisation; a bare option letter
    ("B", "(b)", "B.") when no option is itself that letter; the only option mentioned as a
    whole phrase (an option mentioned only inside a longer mentioned option does not count,
    so "left and right" is not also "left").
    """
    if not options:
        return None
    norm_pred = normalize_answer(prediction)
    norm_opts = [normalize_answer(o) for o in options]
    equal = [i for i, o in enumerate(norm_opts) if o and o == norm_pred]
    if len({norm_opts[i] for i in equal}) == 1:
        return equal[0]
    letter = _LETTER.match(prediction)
    if letter and not any(len(o) == 1 for o in norm_opts):
        index = ord(letter.group(1).lower()) - ord("a")
        if 0 <= index < len(options):
            return index
    padded = f" {norm_pred} "
    spans: list[tuple[int, int, int]] = []  # (start, end, option index)
    for i, opt in enumerate(norm_opts):
        if not opt:
            continue
        for m in re.finditer(re.escape(f" {opt} "), padded):
            spans.append((m.start(), m.end(), i))
    kept = {
        i
        for (s, e, i) in spans
        if not any(
            (s2 <= s and e <= e2) and (e2 - s2) > (e - s) for (s2, e2, i2) in spans if i2 != i
        )
    }
    distinct = {norm_opts[i] for i in kept}
    if len(distinct) == 1:
        return min(kept)
    return None
