"""`LLMClient`: cache -> policy check -> backend call with retries, and bounded concurrency."""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ctbench.llm.backends import ChatBackend, UserContent, classify_error, is_timeout, make_backend
from ctbench.llm.cache import ResponseCache, cache_key
from ctbench.llm.config import LLMConfig, check_endpoint, default_cache_path
from ctbench.llm.errors import LLMError, LLMTimeout, UnusableReply


@dataclass(frozen=True)
class Completion:
    text: str
    cached: bool
    attempts: int  # backend calls made for this reply (0 when cached)


@dataclass
class LLMStats:
    requests: int = 0
    cache_hits: int = 0
    calls: int = 0  # backend calls, retries included
    retries: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def to_json(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("requests", "cache_hits", "calls", "retries", "failures")}


class LLMClient:
    def __init__(self, config: LLMConfig, backend: ChatBackend | None = None,
                 cache: ResponseCache | bool = True, sleep=time.sleep):
        check_endpoint(config)
        if backend is None and not config.resolved_api_key():
            raise LLMError(f"no API key for {config.backend}:{config.model}: set ${config.key_env}")
        self.config = config
        self._backend = backend
        self._backend_lock = threading.Lock()
        if cache is True:
            cache = ResponseCache(config.cache_path or default_cache_path())
        self.cache: ResponseCache | None = cache if isinstance(cache, ResponseCache) else None
        self.stats = LLMStats()
        self._sleep = sleep

    @property
    def backend(self) -> ChatBackend:
        with self._backend_lock:
            if self._backend is None:
                self._backend = make_backend(self.config)
            return self._backend

    def key(self, system: str, user: UserContent) -> str:
        return cache_key(self.config.identity(), system, user)

    def complete(self, system: str, user: UserContent) -> Completion:
        """One reply; cached replies are returned without a call. `user` is text or OpenAI content
        parts (text and images). Raises `UnusableReply` (refused, filtered, empty) at once,
        `LLMTimeout` when every attempt timed out, `LLMError` for other failures after retries."""
        self.stats.add(requests=1)
        key = self.key(system, user)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.add(cache_hits=1)
                return Completion(hit, True, 0)
        delay = self.config.backoff_s
        last = ""
        for attempt in range(1, self.config.max_retries + 2):
            self.stats.add(calls=1)
            try:
                text = self.backend.complete(system, user)
            except UnusableReply as exc:
                self.stats.add(failures=1)
                raise type(exc)(f"{self.config.backend}:{self.config.model}: {exc}") from exc
            except Exception as exc:
                retryable, suggested, last = classify_error(exc)
                if not retryable or attempt > self.config.max_retries:
                    self.stats.add(failures=1)
                    error = LLMTimeout if is_timeout(exc) else LLMError
                    raise error(f"{self.config.backend}:{self.config.model} failed after {attempt} "
                                f"attempt(s): {last}") from exc
                self.stats.add(retries=1)
                wait = suggested if suggested is not None else self._jittered(delay)
                self._sleep(min(wait, self.config.max_backoff_s))
                delay = min(delay * 2, self.config.max_backoff_s)
                continue
            if self.cache is not None:
                self.cache.put(key, text)
            return Completion(text, False, attempt)
        raise LLMError(f"unreachable: {last}")  # pragma: no cover

    def _jittered(self, delay: float) -> float:
        if self.config.backoff_jitter is None:
            return delay * (0.5 + random.random())
        return delay + random.uniform(0, self.config.backoff_jitter * delay)

    def complete_many(self, requests: Sequence[tuple[str, UserContent]]) -> list[Completion | LLMError]:
        """Replies in request order; at most `config.concurrency` calls in flight; failures returned."""
        def one(req: tuple[str, UserContent]) -> Completion | LLMError:
            try:
                return self.complete(*req)
            except LLMError as exc:
                return exc

        if self.config.concurrency == 1 or len(requests) <= 1:
            return [one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            return list(pool.map(one, requests))
