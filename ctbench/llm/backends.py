"""The two wire backends, each a thin wrapper over its maintained SDK, plus error classification.

Both SDKs' own retries are switched off: `ctbench.llm.client` retries, so attempts are counted
and bounded in one place.
"""
from __future__ import annotations

from typing import Protocol

from ctbench.llm.config import LLMConfig


class ChatBackend(Protocol):
    def complete(self, system: str, user: str) -> str: ...


class OpenAIBackend:
    """Any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, DashScope/Qwen, vLLM, ...)."""

    def __init__(self, config: LLMConfig):
        import openai

        self.config = config
        self._client = openai.OpenAI(api_key=config.resolved_api_key(), base_url=config.base_url,
                                     timeout=config.timeout_s, max_retries=0)

    def complete(self, system: str, user: str) -> str:
        kwargs = {}
        if self.config.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        reply = self._client.chat.completions.create(
            model=self.config.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=self.config.temperature,
            max_tokens=self.config.max_output_tokens,
            **kwargs,
        )
        return reply.choices[0].message.content or ""


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

    def complete(self, system: str, user: str) -> str:
        types = self._types
        cfg = types.GenerateContentConfig(
            system_instruction=system,
            temperature=self.config.temperature,
            max_output_tokens=self.config.max_output_tokens,
            response_mime_type="application/json" if self.config.json_mode else None,
        )
        reply = self._client.models.generate_content(model=self.config.model, contents=user, config=cfg)
        return reply.text or ""


def make_backend(config: LLMConfig) -> ChatBackend:
    return OpenAIBackend(config) if config.backend == "openai" else GeminiBackend(config)


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
