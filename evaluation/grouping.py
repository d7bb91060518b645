"""The groups every summary reports: all questions, each category, each question type."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from ctbench.evaluation.categories import canonical_categories

T = TypeVar("T")


def _categories(item) -> Iterable[str]:
    return canonical_categories(item.categories)


def _question_type(item) -> str:
    return item.question_type


def groups(
    items: Sequence[T],
    categories: Callable[[T], Iterable[str]] = _categories,
    question_type: Callable[[T], str] = _question_type,
) -> list[tuple[str, str, list[T]]]:
    """(kind, group, members): ("all", "all", every item), then each category, then each question
    type, in sorted order; members keep the order of `items`. An item counts in every category it
    names (canonical labels, `categories.py`); an empty question type forms no group."""
    out: list[tuple[str, str, list[T]]] = [("all", "all", list(items))]
    members: dict[tuple[str, str], list[T]] = {}
    for item in items:
        for c in categories(item):
            members.setdefault(("category", c), []).append(item)
        kind = question_type(item)
        if kind:
            members.setdefault(("question_type", kind), []).append(item)
    out += [(kind, group, found) for (kind, group), found in sorted(members.items())]
    return out
