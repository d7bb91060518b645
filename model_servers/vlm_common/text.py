"""Turning generated text into an answer: cut at stop strings, drop echoed prompts, trim."""
from __future__ import annotations


def cut_at_stops(text: str, stops: tuple[str, ...] | list[str]) -> str:
    """Text before the earliest stop string (the stop itself dropped)."""
    cut = len(text)
    for stop in stops:
        if stop:
            index = text.find(stop)
            if 0 <= index < cut:
                cut = index
    return text[:cut]


def strip_prefix(text: str, prefixes: tuple[str, ...]) -> str:
    """Drop a leading role/answer marker some models echo ("Answer:", "ASSISTANT:")."""
    stripped = text.lstrip()
    for prefix in prefixes:
        if stripped.lower().startswith(prefix.lower()):
            return stripped[len(prefix):].lstrip()
    return stripped


def clean_answer(text: str, stops: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()) -> str:
    return strip_prefix(cut_at_stops(text, stops), prefixes).strip()
