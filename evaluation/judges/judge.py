"""An LLM judge: batches items into one prompt, parses the reply tolerantly, caches verdicts.

The prompt (`prompts.JudgePrompt`, or the published protocol) decides the messages, the call
settings it fixes, how a reply is read and what a failed call records. A reply that cannot be
parsed, or that has no verdict for an item, is a recorded judge failure for that item
(`is_correct=None`, `failure` says why), never a wrong answer. Successful verdicts are cached
per item under (judge model, prompt sha256, question, answer, prediction), so a different
batching, a resumed run or another server with the same prediction costs no call.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ctbench.evaluation.judges.prompts import JudgePrompt
from ctbench.evaluation.judges.verdict_parsing import parse_verdicts  # noqa: F401  (re-exported)
from ctbench.llm import LLMClient, LLMConfig, LLMError, ResponseCache
from ctbench.llm.cache import cache_key
from ctbench.registry import Registry

DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class JudgeSpec:
    """Which judge: a name (used in file names), a backend, a model and an endpoint."""

    name: str
    backend: str  # "openai" | "gemini"
    model: str
    base_url: str | None = None


judges: Registry[JudgeSpec] = Registry("judge")
for _spec in (
    JudgeSpec("gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
    JudgeSpec("gpt-4o", "openai", "gpt-4o"),
    JudgeSpec("qwen-plus", "openai", "qwen-plus", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
    JudgeSpec("gemini", "gemini", "gemini-2.5-flash"),
    JudgeSpec("openai", "openai", "gpt-4o"),
    JudgeSpec("vllm", "openai", "", "http://127.0.0.1:8000/v1"),
):
    judges.register(_spec.name)(_spec)


def parse_judge_spec(text: str) -> JudgeSpec:
    """`PRESET`, `PRESET:MODEL`, `PRESET@URL` or `PRESET:MODEL@URL` (e.g. `vllm:qwen2.5-7b@http://127.0.0.1:8000/v1`)."""
    rest, _, url = text.partition("@")
    preset, _, model = rest.partition(":")
    spec = judges.get(preset)
    model = model or spec.model
    if not model:
        raise ValueError(f"judge {preset!r} needs a model: {preset}:MODEL")
    name = spec.name if model == spec.model else re.sub(r"[^A-Za-z0-9_.-]+", "-", model)
    return JudgeSpec(name, spec.backend, model, url or spec.base_url)


@dataclass(frozen=True)
class JudgeItem:
    question_id: str
    question: str
    answer: str
    prediction: str


@dataclass(frozen=True)
class JudgeVerdict:
    question_id: str
    is_correct: bool | None
    reasoning: str
    failure: str  # "" when is_correct is a real verdict
    judge: str
    model: str
    prompt: str
    prompt_sha256: str
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JudgeStats:
    items: int = 0
    cache_hits: int = 0
    not_sent: int = 0  # empty predictions: incorrect without a call
    calls: int = 0  # batched requests sent (before retries)
    failures: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class LLMJudge:
    def __init__(self, spec: JudgeSpec, prompt: JudgePrompt, client: LLMClient,
                 batch_size: int = DEFAULT_BATCH_SIZE, cache: ResponseCache | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.spec, self.prompt, self.client, self.batch_size = spec, prompt, client, batch_size
        self.cache = cache
        self.stats = JudgeStats()

    @classmethod
    def create(cls, spec: JudgeSpec, prompt: JudgePrompt, *, allow_external: bool = False,
               concurrency: int = 4, batch_size: int | None = None, timeout_s: float = 60.0,
               max_retries: int | None = None, backoff_s: float | None = None, cache_path=None,
               use_cache: bool = True, api_key: str | None = None) -> LLMJudge:
        """A judge with the prompt's call settings; `batch_size`, `max_retries` and `backoff_s`
        given here override the prompt's (default batch 8, 5 retries from 1 s)."""
        settings = {"json_mode": True, "max_retries": 5, "backoff_s": 1.0, **prompt.settings(spec.name, spec.backend)}
        settings |= {k: v for k, v in (("max_retries", max_retries), ("backoff_s", backoff_s)) if v is not None}
        config = LLMConfig(backend=spec.backend, model=spec.model, base_url=spec.base_url, api_key=api_key,
                           concurrency=concurrency, timeout_s=timeout_s, allow_external=allow_external,
                           cache_path=cache_path, **settings)
        batch_size = batch_size or prompt.batch_size or DEFAULT_BATCH_SIZE
        client = LLMClient(config, cache=False)  # verdicts are cached per item, below
        cache = None
        if use_cache:
            from ctbench.llm.config import default_cache_path

            cache = ResponseCache(cache_path or default_cache_path(), table="verdicts")
        return cls(spec, prompt, client, batch_size, cache)

    def _key(self, item: JudgeItem) -> str:
        return cache_key("verdict", self.spec.backend, self.spec.model, self.prompt.sha256,
                         item.question, item.answer, item.prediction)

    def _verdict(self, item: JudgeItem, is_correct, reasoning="", failure="", cached=False) -> JudgeVerdict:
        return JudgeVerdict(item.question_id, is_correct, reasoning, failure, self.spec.name, self.spec.model,
                            self.prompt.name, self.prompt.sha256, cached)

    def judge(self, items: Sequence[JudgeItem]) -> list[JudgeVerdict]:
        """Verdicts in item order. Never raises for a bad reply: failures are verdicts with None."""
        out: dict[int, JudgeVerdict] = {}
        todo: list[int] = []
        for i, item in enumerate(items):
            self.stats.items += 1
            if not item.prediction.strip() and not self.prompt.sends_empty_predictions:
                self.stats.not_sent += 1
                out[i] = self._verdict(item, False, "empty prediction (not sent to the judge)")
                continue
            hit = self.cache.get(self._key(item)) if self.cache is not None else None
            if hit is not None:
                data = json.loads(hit)
                self.stats.cache_hits += 1
                out[i] = self._verdict(item, data["is_correct"], data.get("reasoning", ""), cached=True)
                continue
            todo.append(i)
        batches = [todo[k:k + self.batch_size] for k in range(0, len(todo), self.batch_size)]
        requests = [self.prompt.request(self.spec.name, self.spec.backend,
                                        [{"question": items[i].question, "answer": items[i].answer,
                                          "prediction": items[i].prediction} for i in batch])
                    for batch in batches]
        self.stats.calls += len(requests)
        replies = self.client.complete_many(requests)
        for batch, reply in zip(batches, replies):
            if isinstance(reply, LLMError):
                reasoning, failure = self.prompt.call_failure(reply)
                parsed: dict[int, tuple[bool | None, str, str]] = dict.fromkeys(range(len(batch)), (None, reasoning, failure))
            else:
                parsed = self.prompt.parse(reply.text, len(batch))
            for j, i in enumerate(batch):
                ok, reasoning, failure = parsed[j]
                verdict = self._verdict(items[i], ok, reasoning, failure)
                if ok is None:
                    self.stats.failures += 1
                elif self.cache is not None:
                    self.cache.put(self._key(items[i]), json.dumps({"is_correct": ok, "reasoning": reasoning}))
                out[i] = verdict
        return [out[i] for i in range(len(items))]
