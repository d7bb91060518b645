"""Tolerant parsing of a judge's reply into per-item verdicts.

Replies come fenced, with trailing commas, as Python literals, truncated, or keyed differently;
each item gets a verdict or the reason it has none, never a silent wrong answer.
"""
from __future__ import annotations

import ast
import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _loose(id_key: str) -> re.Pattern[str]:
    return re.compile(rf'"?{id_key}"?\s*:\s*"?(\d+)"?[^{{}}]*?"?is_correct"?\s*:\s*"?(true|false|True|False)', re.S)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "correct", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "incorrect", "0"):
        return False
    return None


def _load_json_like(text: str) -> Any:
    candidates = [text.strip()]
    fenced = _FENCE.findall(text)
    candidates += [f.strip() for f in fenced]
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        start = min(starts)
        end = max(text.rfind("}"), text.rfind("]"))
        if end > start:
            candidates.append(text[start:end + 1])
    for cand in candidates:
        for attempt in (cand, _TRAILING_COMMA.sub(r"\1", cand)):
            try:
                return json.loads(attempt)
            except (json.JSONDecodeError, ValueError, RecursionError):  # nesting too deep: not a verdict
                pass
            try:
                py = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", attempt)))
                return ast.literal_eval(py)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                pass
    raise ValueError("no JSON found")


def parse_verdicts(text: str, n: int, id_key: str = "id", first: int = 0,
                   rescue: bool = True) -> dict[int, tuple[bool | None, str, str]]:
    """Batch position (0-based) -> (is_correct or None, reasoning, failure reason).

    Items are numbered from `first` under `id_key` in the reply; `rescue` picks verdicts out of
    a reply that is not JSON at all (truncated, prose around the pairs)."""
    out: dict[int, tuple[bool | None, str, str]] = {}
    try:
        data = _load_json_like(text)
    except ValueError:
        data = None
    entries: list[Any] = []
    if isinstance(data, dict) and isinstance(data.get("verdicts"), list):
        entries = data["verdicts"]
    elif isinstance(data, list):
        entries = data
    elif isinstance(data, dict) and "is_correct" in data:
        entries = [{id_key: data.get(id_key, first), **data}]
    elif isinstance(data, dict):
        entries = [{id_key: k, **v} if isinstance(v, dict) else {id_key: k, "is_correct": v} for k, v in data.items()]
    for pos, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        try:
            idx = int(entry.get(id_key, pos + first)) - first
        except (TypeError, ValueError):
            continue
        if 0 <= idx < n and idx not in out:
            value = _as_bool(entry.get("is_correct"))
            reasoning = str(entry.get("reasoning") or "")
            out[idx] = (value, reasoning, "" if value is not None else f"unusable is_correct {entry.get('is_correct')!r}")
    if data is None and rescue:
        for m in _loose(id_key).finditer(text):
            idx = int(m.group(1)) - first
            if 0 <= idx < n and idx not in out:
                out[idx] = (m.group(2).lower() == "true", "", "")
    why = "unparseable reply" if data is None and not out else "no verdict for this item in the reply"
    snippet = text.strip().replace("\n", " ")[:120]
    for idx in range(n):
        out.setdefault(idx, (None, "", f"{why}: {snippet!r}"))
    return out
