"""Judge prompts: versioned `<name>.txt` files in this folder, plus the published protocol.

A prompt owns everything about one judge call that decides its verdict: the messages for a
batch, the call settings, how the reply is read and what a failed call records. Verdicts
record the prompt's name and sha256 (of the file's bytes: any edit is a new prompt).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctbench.errors import UnknownName
from ctbench.evaluation.judges.verdict_parsing import parse_verdicts

DEFAULT_PROMPT = "ct-spatialvqa-judge-v1"
PUBLISHED_PROMPT = "published"  # the published harness's protocol (ctbench.evaluation.judges.published)
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class JudgePrompt:
    """A ctbench prompt file: a system message and a user template with {items_json}."""

    name: str
    system: str
    user_template: str
    sha256: str
    batch_size: int | None = None  # None: the caller's choice
    sends_empty_predictions: bool = False  # empty predictions are wrong without a call

    def render(self, items: list[dict]) -> tuple[str, str]:
        return self.system, self.user_template.replace("{items_json}", json.dumps(items, ensure_ascii=False, indent=1))

    def request(self, judge: str, backend: str, items: Sequence[dict]) -> tuple[str, str]:
        """(system, user) for one batch; items carry question, answer and prediction."""
        return self.render([{"id": j, "question": it["question"], "reference_answer": it["answer"],
                             "prediction": it["prediction"]} for j, it in enumerate(items)])

    def settings(self, judge: str, backend: str) -> dict[str, Any]:
        """LLMConfig fields this prompt fixes (none: the client's defaults)."""
        return {}

    def parse(self, text: str, n: int) -> dict[int, tuple[bool | None, str, str]]:
        return parse_verdicts(text, n)

    def call_failure(self, error: Exception) -> tuple[str, str]:
        """(reasoning, failure) recorded for every item of a batch whose call failed."""
        return "", f"call failed: {error}"


def available_prompts() -> list[str]:
    return sorted([*(p.stem for p in _HERE.glob("*.txt")), PUBLISHED_PROMPT])


def load_prompt(name_or_path: str = DEFAULT_PROMPT):
    """A prompt by name (`ct-spatialvqa-judge-v1`, `published`) or path (a `.txt` prompt file or
    a published-judging `.json` protocol file)."""
    from ctbench.evaluation.judges import published

    path = Path(name_or_path)
    if name_or_path == PUBLISHED_PROMPT:
        return published.load_published_judging()
    if path.is_file() and path.suffix == ".json":
        return published.load_published_judging(path)
    if not path.is_file():
        path = _HERE / f"{name_or_path}.txt"
    if not path.is_file():
        raise UnknownName(f"Unknown judge prompt {name_or_path!r}. Available: {', '.join(available_prompts())}")
    raw = path.read_bytes()
    text = "\n".join(line for line in raw.decode("utf-8").splitlines() if not line.startswith("#"))
    if "=== SYSTEM ===" not in text or "=== USER ===" not in text:
        raise ValueError(f"{path}: a judge prompt needs '=== SYSTEM ===' and '=== USER ===' sections")
    system = text.split("=== SYSTEM ===", 1)[1].split("=== USER ===", 1)[0].strip()
    user = text.split("=== USER ===", 1)[1].strip()
    if "{items_json}" not in user:
        raise ValueError(f"{path}: the user section must contain {{items_json}}")
    return JudgePrompt(path.stem, system, user, hashlib.sha256(raw).hexdigest())
