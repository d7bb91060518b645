"""Checking what goes into and comes out of the LLM: report text in, JSON replies out.

Every problem raises `BadInput` or `BadReply` with a message that says what was wrong; the
pipeline records it against the unit and moves on.
"""
from __future__ import annotations

import json
import re

from ctbench.datasets.categories import normalize_category
from ctbench.errors import CtbenchError


class BadInput(CtbenchError):
    code = "INVALID_ARGUMENT"


class BadReply(CtbenchError):
    code = "INTERNAL"


_ENGLISH = {
    "the", "of", "and", "in", "is", "are", "was", "were", "no", "with", "to", "a", "an", "on", "at",
    "both", "left", "right", "lung", "lungs", "normal", "not", "detected", "observed", "there",
    "for", "or", "by", "as", "be", "this", "that", "has", "have", "may", "can", "include", "includes",
    "findings", "compatible", "pneumonia", "lobe", "upper", "lower", "nodule", "nodules", "effusion",
}


def check_english(text: str, where: str) -> None:
    """Refuse text that is empty or is evidently not English (CT-RATE also ships Turkish)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        raise BadInput(f"{where}: no text")
    non_ascii = sum(1 for c in letters if not c.isascii())
    words = re.findall(r"[^\W\d_]+", text.lower())
    english = sum(1 for w in words if w in _ENGLISH)
    if non_ascii / len(letters) > 0.03 or (len(words) >= 12 and english / len(words) < 0.05):
        raise BadInput(f"{where}: does not look like English text ({text[:60]!r}...)")


def report_sections(entry: object, volume: str) -> tuple[str, str, list[str]]:
    """(findings, impressions, warnings) of a CT-RATE report entry; Findings are required."""
    if not isinstance(entry, dict):
        raise BadInput(f"{volume}: report is {type(entry).__name__}, expected an object with Findings_EN/Impressions_EN")
    findings = entry.get("Findings_EN")
    impressions = entry.get("Impressions_EN")
    warnings = []
    if not isinstance(findings, str) or not findings.strip():
        raise BadInput(f"{volume}: report has no Findings_EN section (or it is empty)")
    check_english(findings, f"{volume}: Findings_EN")
    if not isinstance(impressions, str) or not impressions.strip():
        warnings.append("report has no Impressions_EN section; generated from Findings only")
        impressions = ""
    else:
        check_english(impressions, f"{volume}: Impressions_EN")
    return findings.strip(), impressions.strip(), warnings


def parse_json_reply(reply: str) -> object:
    """JSON from an LLM reply, tolerating a Markdown code fence around it."""
    text = reply.strip()
    fence = re.match(r"^```[a-zA-Z]*\s*(.*?)\s*```$", text, re.DOTALL)
    if fence:
        text = fence.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadReply(f"reply is not JSON ({exc.msg} at column {exc.colno}): {reply[:120]!r}") from None
    except RecursionError:
        raise BadReply(f"reply is JSON nested too deeply to parse: {reply[:120]!r}") from None


def parse_qa_pairs(reply: str) -> list[dict]:
    data = parse_json_reply(reply)
    if isinstance(data, dict) and isinstance(data.get("qa_pairs"), list):
        data = data["qa_pairs"]
    if not isinstance(data, list):
        raise BadReply(f"reply is a JSON {type(data).__name__}, expected a list of {{question, answer}}")
    pairs = []
    for index, pair in enumerate(data):
        if not isinstance(pair, dict):
            raise BadReply(f"reply item {index} is {type(pair).__name__}, expected {{question, answer}}")
        question, answer = pair.get("question"), pair.get("answer")
        if not isinstance(question, str) or not question.strip() or not isinstance(answer, str) or not answer.strip():
            raise BadReply(f"reply item {index} lacks a non-empty 'question' and 'answer' string")
        pairs.append({"question": question.strip(), "answer": answer.strip()})
    if not pairs:
        raise BadReply("reply is an empty list")
    return pairs


def _indexed(reply: str, n: int, field: str) -> dict[int, object]:
    data = parse_json_reply(reply)
    if isinstance(data, dict):  # JSON-object mode wraps the list: {"pairs": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else data
    if not isinstance(data, list):
        raise BadReply(f"reply is a JSON {type(data).__name__}, expected a list of {{index, {field}}}")
    found: dict[int, object] = {}
    for position, row in enumerate(data):
        if not isinstance(row, dict) or field not in row:
            raise BadReply(f"reply item {position} is not an object with {field!r}")
        index = row.get("index", position)
        if not isinstance(index, int) or not 0 <= index < n or index in found:
            raise BadReply(f"reply item {position} has a bad or repeated index {index!r} (pairs 0..{n - 1})")
        found[index] = row[field]
    if len(found) != n:
        missing = sorted(set(range(n)) - set(found))
        raise BadReply(f"reply covers {len(found)} of {n} pairs; missing indices {missing}")
    return found


def parse_spatial_decisions(reply: str, n: int) -> list[bool]:
    found = _indexed(reply, n, "spatial")
    if not all(isinstance(v, bool) for v in found.values()):
        raise BadReply("every 'spatial' must be true or false")
    return [bool(found[i]) for i in range(n)]


def parse_categories(reply: str, n: int) -> list[tuple[str, ...]]:
    found = _indexed(reply, n, "categories")
    result = []
    for i in range(n):
        labels = found[i]
        if isinstance(labels, str):
            labels = [labels]
        if not isinstance(labels, list) or not labels:
            raise BadReply(f"pair {i}: 'categories' must be a non-empty list")
        canonical = []
        for label in labels:
            target = normalize_category(label) if isinstance(label, str) else None
            if target is None:
                raise BadReply(f"pair {i}: {label!r} is not one of the six spatial categories")
            if target not in canonical:
                canonical.append(target)
        result.append(tuple(canonical))
    return result
