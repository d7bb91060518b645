"""An LLM judge: batches items into one prompt, parses the reply tolerantly, caches verdicts.

A reply that cannot be parsed, or that has no verdict for an item, is a recorded judge failure
for that item (`is_correct=None`, `failure` says why), never a wrong answer. Successful verdicts
are cached per item under (judge model, prompt sha256, question, answer, prediction), so a
different batching, a resumed run or another server with the same prediction costs no call.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ctbench.evaluation.judges.prompts import JudgePrompt
from ctbench.llm import LLMClient, LLMConfig, LLMError, ResponseCache
from ctbench.llm.cache import cache_key
from ctbench.registry import Registry


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
                 batch_size: int = 8, cache: ResponseCache | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.spec, self.prompt, self.client, self.batch_size = spec, prompt, client, batch_size
        self.cache = cache
        self.stats = JudgeStats()

    @classmethod
    def create(cls, spec: JudgeSpec, prompt: JudgePrompt, *, allow_external: bool = False,
               concurrency: int = 4, batch_size: int = 8, timeout_s: float = 60.0, max_retries: int = 5,
               backoff_s: float = 1.0, cache_path=None, use_cache: bool = True, api_key: str | None = None) -> "LLMJudge":
        config = LLMConfig(backend=spec.backend, model=spec.model, base_url=spec.base_url, api_key=api_key,
                           concurrency=concurrency, timeout_s=timeout_s, max_retries=max_retries,
                           backoff_s=backoff_s, allow_external=allow_external, json_mode=True,
                           cache_path=cache_path)
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
            if not item.prediction.strip():
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
        requests = [self.prompt.render([{"id": j, "question": items[i].question, "reference_answer": items[i].answer,
                                         "prediction": items[i].prediction} for j, i in enumerate(batch)])
                    for batch in batches]
        self.stats.calls += len(requests)
        replies = self.client.complete_many(requests)
        for batch, reply in zip(batches, replies):
            if isinstance(reply, LLMError):
                parsed: dict[int, tuple[bool | None, str, str]] = {j: (None, "", f"call failed: {reply}") for j in range(len(batch))}
            else:
                parsed = parse_verdicts(reply.text, len(batch))
            for j, i in enumerate(batch):
                ok, reasoning, failure = parsed[j]
                verdict = self._verdict(items[i], ok, reasoning, failure)
                if ok is None:
                    self.stats.failures += 1
                elif self.cache is not None:
                    self.cache.put(self._key(items[i]), json.dumps({"is_correct": ok, "reasoning": reasoning}))
                out[i] = verdict
        return [out[i] for i in range(len(items))]


# --- tolerant parsing ------------------------------------------------------------------------
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_LOOSE = re.compile(r'"?id"?\s*:\s*"?(\d+)"?[^{}]*?"?is_correct"?\s*:\s*"?(true|false|True|False)', re.S)


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


def parse_verdicts(text: str, n: int) -> dict[int, tuple[bool | None, str, str]]:
    """Batch-local id -> (is_correct or None, reasoning, failure reason)."""
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
        entries = [{"id": data.get("id", 0), **data}]
    elif isinstance(data, dict):
        entries = [{"id": k, **v} if isinstance(v, dict) else {"id": k, "is_correct": v} for k, v in data.items()]
    for pos, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        try:
            idx = int(entry.get("id", pos))
        except (TypeError, ValueError):
            continue
        if 0 <= idx < n and idx not in out:
            value = _as_bool(entry.get("is_correct"))
            reasoning = str(entry.get("reasoning") or "")
            out[idx] = (value, reasoning, "" if value is not None else f"unusable is_correct {entry.get('is_correct')!r}")
    if data is None:
        for m in _LOOSE.finditer(text):
            idx = int(m.group(1))
            if 0 <= idx < n and idx not in out:
                out[idx] = (m.group(2).lower() == "true", "", "")
    why = "unparseable reply" if data is None and not out else "no verdict for this item in the reply"
    snippet = text.strip().replace("\n", " ")[:120]
    for idx in range(n):
        out.setdefault(idx, (None, "", f"{why}: {snippet!r}"))
    return out
