"""LLM client settings and the no-external-call policy."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ctbench.llm.errors import ExternalCallRefused, LLMError  # noqa: F401  (re-exported)

BACKENDS = ("openai", "gemini")
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY"}


@dataclass(frozen=True)
class LLMConfig:
    backend: str  # "openai" (any OpenAI-compatible endpoint) | "gemini"
    model: str
    base_url: str | None = None  # None: the provider's public API (external)
    api_key: str | None = None  # default: $api_key_env (or a dummy for loopback)
    api_key_env: str | None = None  # None: OPENAI_API_KEY / GEMINI_API_KEY
    temperature: float | None = 0.0  # None: not sent (the provider's default)
    max_output_tokens: int | None = 2048  # None: not sent (the provider's default)
    json_mode: bool = True
    concurrency: int = 4
    max_retries: int = 5
    backoff_s: float = 1.0  # first retry delay; doubles each time, with jitter, capped
    max_backoff_s: float = 30.0
    backoff_jitter: float | None = None  # None: wait delay * uniform(0.5, 1.5); f: delay + uniform(0, f * delay)
    timeout_s: float = 60.0
    allow_external: bool = False
    cache_path: Path | None = None  # None: $CTBENCH_CACHE/llm.sqlite; use cache=False on the client to disable

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")

    @property
    def key_env(self) -> str:
        """The environment variable the API key is read from."""
        return self.api_key_env or DEFAULT_KEY_ENV[self.backend]

    def resolved_api_key(self) -> str:
        key = self.api_key or os.environ.get(self.key_env, "")
        if not key and is_loopback(self.base_url):
            key = "local"  # local servers (vLLM, tests) ignore it; the SDKs insist on one
        return key

    def identity(self) -> dict[str, object]:
        """What, besides the messages, determines the answer (goes into the cache key)."""
        return {"backend": self.backend, "model": self.model, "temperature": self.temperature,
                "max_output_tokens": self.max_output_tokens, "json_mode": self.json_mode}


def is_loopback(base_url: str | None) -> bool:
    if not base_url:
        return False
    host = urlparse(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(config: LLMConfig) -> None:
    """Raise ExternalCallRefused unless the endpoint is loopback or external calls are allowed."""
    if is_loopback(config.base_url) or config.allow_external:
        return
    where = config.base_url or f"the public {config.backend} API"
    raise ExternalCallRefused(
        f"refusing to send data to {where} (model {config.model!r}): report-derived text and images may only "
        "leave this machine with an explicit allow_external / --allow-external; loopback endpoints are always allowed")


def default_cache_path() -> Path:
    base = os.environ.get("CTBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ctbench")
    return Path(base) / "llm.sqlite"
