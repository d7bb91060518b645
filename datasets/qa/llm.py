"""The little the QA pipeline needs from an LLM: ``complete(messages) -> str``.

`ChatModel` is the protocol; `OpenAICompatible` is a minimal client for any
``/v1/chat/completions`` server (OpenAI, vLLM, a local test server) with retries on 429/5xx.
`CachedChatModel` wraps any model with an on-disk cache keyed by a hash of everything that
determines the reply. When the shared client in `ctbench.llm` is available, `make_chat_model`
prefers it.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol, runtime_checkable

from ctbench.errors import CtbenchError


class LLMError(CtbenchError):
    code = "UNAVAILABLE"


@runtime_checkable
class ChatModel(Protocol):
    name: str  # recorded with every item it produced, e.g. "openai:gpt-4o-mini"

    def complete(self, messages: list[dict], **options) -> str: ...


class OpenAICompatible:
    """POST ``{base_url}/chat/completions``; retries 429 and 5xx with exponential backoff."""

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        *,
        temperature: float = 0.2,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 2.0,
    ):
        if not model:
            raise ValueError("model must be a non-empty model id")
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.temperature = temperature
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    def complete(self, messages: list[dict], **options) -> str:
        body = {"model": self.model, "messages": messages, "temperature": options.get("temperature", self.temperature)}
        if options.get("seed") is not None:
            body["seed"] = options["seed"]
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(f"{self.base_url}/chat/completions", data=data, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read())
                return _content_of(payload, self.name)
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code in (401, 403):
                    raise LLMError(f"{self.name}: the API key was refused (HTTP {exc.code})") from None
                if exc.code != 429 and exc.code < 500:
                    raise LLMError(f"{self.name}: request refused (HTTP {exc.code}: {_body(exc)})") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = str(getattr(exc, "reason", exc))
            except json.JSONDecodeError:
                raise LLMError(f"{self.name}: the server's response is not JSON") from None
            if attempt < self.max_retries:
                time.sleep(self.backoff_s * (2**attempt))
        raise LLMError(f"{self.name}: no answer after {self.max_retries + 1} attempts ({last})")


def _body(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read().decode("utf-8", "replace")[:200]
    except Exception:  # noqa: BLE001
        return ""


def _content_of(payload: dict, name: str) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError(f"{name}: response has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise LLMError(f"{name}: message content is {type(content).__name__}, not text")
    return content


class CachedChatModel:
    """Replies cached on disk (one JSON line per request), keyed by sha256 of model + messages +
    options. Safe to share between threads; a torn last line is ignored."""

    def __init__(self, inner: ChatModel, path: str | Path):
        self.inner = inner
        self.name = inner.name
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, str] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._entries[row["key"]] = row["reply"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
        self.hits = 0

    def key(self, messages: list[dict], **options) -> str:
        blob = json.dumps({"model": self.inner.name, "messages": messages, "options": options}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def complete(self, messages: list[dict], **options) -> str:
        key = self.key(messages, **options)
        with self._lock:
            if key in self._entries:
                self.hits += 1
                return self._entries[key]
        reply = self.inner.complete(messages, **options)
        with self._lock:
            self._entries[key] = reply
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"key": key, "model": self.name, "reply": reply}) + "\n")
        return reply


def make_chat_model(spec: str, *, base_url: str | None = None, api_key: str | None = None) -> ChatModel:
    """``openai:MODEL`` (any OpenAI-compatible server: ``--base-url`` or OPENAI_BASE_URL, key from
    OPENAI_API_KEY). Other backends (Gemini, ...) come from the shared `ctbench.llm` client."""
    backend, _, model = spec.partition(":")
    if backend == "openai" and model:
        return OpenAICompatible(
            model,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
            api_key=api_key or os.environ.get("OPENAI_API_KEY"),
        )
    try:  # the shared client (evaluation branch), when merged
        from ctbench.llm import make_client  # type: ignore[attr-defined]
    except ImportError:
        raise LLMError(f"unknown LLM {spec!r}; expected 'openai:MODEL' (e.g. openai:gpt-4o-mini)") from None
    return make_client(spec)  # pragma: no cover - depends on the shared client
