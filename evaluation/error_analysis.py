"""What went wrong, per server: outcomes counted by error type, and sample messages."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ctbench.evaluation.scoring import ItemScore, ScoreResult

NO_OPTION = "answered, but picked no single option"
UNTYPED = "error (no type recorded)"
MISSING = "missing (never answered)"


def outcome(item: ItemScore) -> str:
    """The kind of outcome: 'ok', the ledger's error type, missing, or an answer that picks no option."""
    if item.status == "missing":
        return MISSING
    if item.status == "error":
        return item.error_type or UNTYPED
    if item.has_options and item.option_index is None:
        return NO_OPTION
    return "ok"


@dataclass
class ErrorSample:
    server: str
    kind: str
    count: int
    question_ids: list[str] = field(default_factory=list)  # the first few
    messages: list[str] = field(default_factory=list)  # distinct messages, the first few


def outcome_counts(result: ScoreResult) -> dict[str, Counter]:
    """server -> Counter of outcome kinds over every question."""
    counts: dict[str, Counter] = {s: Counter() for s in result.servers}
    for item in result.items:
        counts[item.server][outcome(item)] += 1
    return counts


def error_samples(result: ScoreResult, per_kind: int = 3) -> list[ErrorSample]:
    """For each server and each non-ok outcome kind: its count, first question ids and messages."""
    samples: dict[tuple[str, str], ErrorSample] = {}
    for item in result.items:
        kind = outcome(item)
        if kind == "ok":
            continue
        sample = samples.setdefault((item.server, kind), ErrorSample(item.server, kind, 0))
        sample.count += 1
        if len(sample.question_ids) < per_kind:
            sample.question_ids.append(item.question_id)
        message = item.error_message or {NO_OPTION: f"answer: {item.prediction!r}",
                                          MISSING: "no line in the ledger"}.get(kind, "")
        if message and message not in sample.messages and len(sample.messages) < per_kind:
            sample.messages.append(message)
    return sorted(samples.values(), key=lambda s: (result.servers.index(s.server), -s.count, s.kind))
