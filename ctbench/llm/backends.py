"""The two wire backends, each a thin wrapper over its maintained SDK, plus error classification.

Both SDKs' own retries are switched off: `ctbench.llm.client` retries, so attempts are counted
and bounded in one place. A reply that is a refusal, a content-filter stop or empty raises its
`UnusableReply` type here, so no caller mistakes it for an answer (and none is cached).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ctbench.llm.config import LLMConfig
from ctbench.llm.errors import ContentFiltered, EmptyReply, Refused

#: A user turn: text, or OpenAI content parts ({"type": "text", ...}, {"type": "image_url", ...}).
UserContent = str | Sequence[dict[str, Any]]


class ChatBackend(Protocol):
    def complete(self, system: str, user: UserContent) -> str: ...


class OpenAIBackend:
    """Any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, DashScope/Qwen, vLLM, ...)."""

    def __init__(self, config: LLMConfig):
        import openai

        self.config = config
        self._client = openai.OpenAI(api_key=config.resolved_api_key(), base_url=config.base_url,
                                     timeout=config.timeout_s, max_retries=0)

    def complete(self, system: str, user: UserContent) -> str:
        kwargs: dict[str, Any] = {}
        if self.config.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        if self.config.temperature is not None:
            kwargs["temperature"] = self.config.temperature
        if self.config.max_output_tokens is not None:
            kwargs["max_tokens"] = self.config.max_output_tokens
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user if isinstance(user, str) else list(user)})
        reply = self._client.chat.completions.create(model=self.config.model, messages=messages, **kwargs)
        return openai_reply_text(reply)


def openai_reply_text(reply) -> str:
    """The answer in a chat completion, or the `UnusableReply` that says why there is none."""
    if not reply.choices:
        raise EmptyReply("the reply has no choices")
    choice = reply.choices[0]
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        raise Refused(f"the model refused: {refusal[:200]}")
    if choice.finish_reason == "content_filter":
        raise ContentFiltered("the provider's content filter stopped the reply (finish_reason content_filter)")
    text = choice.message.content or ""
    if not text.strip():
        raise EmptyReply(f"empty reply (finish_reason {choice.finish_reason!r}; 'length' means the token budget "
                         "ran out first)")
    return text


class GeminiBackend:
    """Gemini through the maintained `google-genai` SDK (not the deprecated google-generativeai)."""

    def __init__(self, config: LLMConfig):
        from google import genai
        from google.genai import types

        self.config = config
        self._types = types
        http = types.HttpOptions(base_url=config.base_url, timeout=int(config.timeout_s * 1000),
                                 retry_options=types.HttpRetryOptions(attempts=1))
        self._client = genai.Client(api_key=config.resolved_api_key(), http_options=http)

    def complete(self, system: str, user: UserContent) -> str:
        if not isinstance(user, str):
            raise ValueError("the gemini backend sends text only")
        types = self._types
        cfg = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=self.config.temperature,
            max_output_tokens=self.config.max_output_tokens,
            response_mime_type="application/json" if self.config.json_mode else None,
        )
        reply = self._client.models.generate_content(model=self.config.model, contents=user, config=cfg)
        text = reply.text or ""
        if not text.strip():
            first = reply.candidates[0] if reply.candidates else None
            reason = str(getattr(first, "finish_reason", "") or "")
            if any(word in reason for word in ("SAFETY", "PROHIBITED", "BLOCKLIST")):
                raise ContentFiltered(f"the provider's content filter stopped the reply ({reason})")
            raise EmptyReply(f"empty reply (finish_reason {reason or 'none'})")
        return text


def make_backend(config: LLMConfig) -> ChatBackend:
    return OpenAIBackend(config) if config.backend == "openai" else GeminiBackend(config)


def is_timeout(exc: BaseException) -> bool:
    """The SDKs' timeouts (openai.APITimeoutError, httpx/httpcore timeouts, ...)."""
    return "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower()


def classify_error(exc: BaseException) -> tuple[bool, float | None, str]:
    """(retryable, server-suggested delay in seconds or None, short description)."""
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    response = getattr(exc, "response", None)
    retry_after = None
    headers = getattr(response, "headers", None)
    if headers is not None:
        try:
            retry_after = float(headers.get("retry-after")) if headers.get("retry-after") else None
        except (TypeError, ValueError):
            retry_after = None
    name = type(exc).__name__
    if isinstance(status, int):
        retryable = status == 429 or status == 408 or status >= 500
        return retryable, retry_after, f"HTTP {status} ({name})"
    text = f"{name}: {exc}".lower()
    if "timeout" in text or "timed out" in text or "connect" in text:
        return True, None, f"{name} (timeout/connection)"
    return False, None, f"{name}: {exc}"
