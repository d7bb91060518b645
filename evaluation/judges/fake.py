"""A rule-based stand-in judge for the fake LLM server (tests and throughput measurements).

It reads the batch out of the rendered prompt, grades each item by normalised containment of
the reference in the prediction (or vice versa), and replies in the prompt's JSON format.
"""
from __future__ import annotations

import json
import re

from ctbench.evaluation.normalize import normalize_answer
from ctbench.llm.testing import FakeReply, FakeRequest

_ITEMS = re.compile(r"(\[\s*\{.*\}\s*\])", re.S)


def batch_items(user: str) -> list[dict]:
    m = _ITEMS.search(user)
    return json.loads(m.group(1)) if m else []


def rule_verdict(item: dict) -> bool:
    pred, ref = normalize_answer(item.get("prediction", "")), normalize_answer(item.get("reference_answer", ""))
    return bool(pred) and (pred in ref or ref in pred or pred.split()[:1] == ref.split()[:1])


def judge_responder(request: FakeRequest) -> FakeReply:
    verdicts = [{"id": it["id"], "is_correct": rule_verdict(it), "reasoning": "rule"} for it in batch_items(request.user)]
    return FakeReply(json.dumps({"verdicts": verdicts}))
