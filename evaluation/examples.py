"""Example questions for the report: a seeded few per category, and those the models split on most."""
from __future__ import annotations

import random
from dataclasses import dataclass

from ctbench.evaluation.normalize import normalize_answer
from ctbench.evaluation.scoring import ItemScore, ScoreResult


@dataclass(frozen=True)
class Example:
    question_id: str
    category: str  # the category it was drawn for ("" for a disagreement example)
    question: str
    answer: str
    answers: dict[str, ItemScore]  # server -> its scored answer
    correct: dict[str, bool]  # server -> right by the headline metric


def _by_question(result: ScoreResult) -> dict[str, dict[str, ItemScore]]:
    out: dict[str, dict[str, ItemScore]] = {}
    for item in result.items:
        out.setdefault(item.question_id, {})[item.server] = item
    return out


def _example(result: ScoreResult, qid: str, answers: dict[str, ItemScore], metric: str, category: str = "") -> Example:
    question = result.questions.get(qid)
    per = result.headline.get(metric, {})
    return Example(qid, category, question.question if question else "", question.answer if question else "",
                   answers, {s: bool(per.get(s, {}).get(qid, False)) for s in answers})


def examples_per_category(result: ScoreResult, metric: str, per_category: int = 2, seed: int = 0) -> list[Example]:
    """`per_category` questions of each category, drawn with `seed` (the same seed, the same draw)."""
    answers = _by_question(result)
    members: dict[str, list[str]] = {}
    for qid, by_server in answers.items():
        for category in next(iter(by_server.values())).categories:
            members.setdefault(category, []).append(qid)
    rng = random.Random(seed)
    out = []
    for category in sorted(members):
        qids = sorted(members[category])
        for qid in sorted(rng.sample(qids, min(per_category, len(qids)))):
            out.append(_example(result, qid, answers[qid], metric, category))
    return out


def split(example: Example) -> tuple[int, int]:
    """How evenly the models split: (smaller side of right vs wrong, distinct answers)."""
    right = sum(example.correct.values())
    distinct = {normalize_answer(a.prediction) if a.prediction is not None else f"<{a.status}>"
                for a in example.answers.values()}
    return min(right, len(example.correct) - right), len(distinct)


def most_disputed(result: ScoreResult, metric: str, limit: int = 5, seed: int = 0) -> list[Example]:
    """The questions the models disagree on most: right and wrong most evenly split, then the most
    distinct answers; ties broken by a `seed`ed draw. Empty with fewer than two servers."""
    if len(result.servers) < 2:
        return []
    rng = random.Random(seed)
    candidates = [_example(result, qid, answers, metric) for qid, answers in _by_question(result).items()]
    keyed = [(split(e), rng.random(), e) for e in candidates]
    keyed = [k for k in keyed if k[0][0] > 0]
    keyed.sort(key=lambda k: (-k[0][0], -k[0][1], k[1]))
    return [e for _, _, e in keyed[:limit]]
