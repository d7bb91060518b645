"""The little the QA pipeline needs from an LLM: ``complete(messages) -> str`` and a ``name``.

`ChatModel` is that protocol; `SharedClientModel` adapts the project's shared client
(`ctbench.llm.LLMClient`: OpenAI-compatible and Gemini, retries, sqlite reply cache, and the
no-external-call policy) to it. Any object with ``name`` and ``complete`` works, so tests and
other backends need no network.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from ctbench.llm import LLMClient, LLMConfig, LLMError

__all__ = ["ChatModel", "LLMError", "SharedClientModel", "make_chat_model"]


@runtime_checkable
class ChatModel(Protocol):
    name: str  # recorded with every item it produced, e.g. "openai:gpt-4o-mini"

    def complete(self, messages: list[dict], **options) -> str: ...


class SharedClientModel:
    """A `ChatModel` over `ctbench.llm.LLMClient`; replies are cached by the client."""

    def __init__(self, client: LLMClient):
        self.client = client
        self.name = f"{client.config.backend}:{client.config.model}"

    def complete(self, messages: list[dict], **options) -> str:
        system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
        user = "\n\n".join(m["content"] for m in messages if m.get("role") != "system")
        return self.client.complete(system, user).text


def make_chat_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    allow_external: bool = False,
    concurrency: int = 4,
    temperature: float = 0.2,
    cache_path: str | Path | None = None,
    max_retries: int = 5,
) -> SharedClientModel:
    """``BACKEND:MODEL`` (``openai:gpt-4o-mini``, ``gemini:gemini-2.5-flash``) -> a `ChatModel`.

    ``openai`` is any OpenAI-compatible server (``base_url``, e.g. a local vLLM). Report text
    only leaves this machine with ``allow_external``. The published pipeline sampled at 0.2 and
    asked for a JSON list, so JSON-object mode is off.
    """
    backend, _, model = spec.partition(":")
    if not model:
        raise LLMError(f"LLM {spec!r}: expected BACKEND:MODEL, e.g. openai:gpt-4o-mini or gemini:gemini-2.5-flash")
    try:
        config = LLMConfig(
            backend=backend, model=model, base_url=base_url, api_key=api_key, temperature=temperature,
            json_mode=False, concurrency=concurrency, allow_external=allow_external,
            cache_path=Path(cache_path) if cache_path else None, max_output_tokens=4096,
            max_retries=max_retries,
        )
    except ValueError as exc:
        raise LLMError(f"LLM {spec!r}: {exc}") from None
    return SharedClientModel(LLMClient(config))
