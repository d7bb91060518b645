"""A small shared LLM client: OpenAI-compatible chat and Gemini (google-genai) behind one interface.

Bounded concurrency, retry with exponential backoff on 429/5xx/timeouts, a persistent cache keyed
by a hash of everything that determines the answer, and no call leaves this machine unless the
caller passes `allow_external=True` (loopback endpoints such as a local vLLM are always allowed).

    from ctbench.llm import LLMConfig, LLMClient
    client = LLMClient(LLMConfig(backend="openai", model="qwen2.5-7b", base_url="http://127.0.0.1:8000/v1"))
    reply = client.complete("You are terse.", "Say hi")          # -> Completion(text=..., cached=False)
    replies = client.complete_many([("sys", "q1"), ("sys", "q2")])  # bounded concurrency, in order
"""
from __future__ import annotations

from ctbench.llm.cache import ResponseCache
from ctbench.llm.client import Completion, LLMClient, LLMStats
from ctbench.llm.config import LLMConfig, check_endpoint
from ctbench.llm.errors import (
                                ContentFiltered,
                                EmptyReply,
                                ExternalCallRefused,
                                LLMError,
                                LLMTimeout,
                                Refused,
                                UnusableReply,
)

__all__ = ["Completion", "ContentFiltered", "EmptyReply", "ExternalCallRefused", "LLMClient", "LLMConfig", "LLMError",
           "LLMStats", "LLMTimeout", "Refused", "ResponseCache", "UnusableReply", "check_endpoint"]
