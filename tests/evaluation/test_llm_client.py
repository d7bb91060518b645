"""The shared LLM client, exercised through the REAL openai and google-genai SDK clients against a
loopback server that speaks each API's wire format."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("openai", reason="needs openai: pip install -e .[test]")
pytest.importorskip("google.genai", reason="needs google.genai: pip install -e .[test]")

from ctbench.llm import ExternalCallRefused, LLMClient, LLMConfig, LLMError, ResponseCache
from ctbench.llm.testing import FakeLLMServer, FakeReply

BACKENDS = ["openai", "gemini"]


def base_url(server, backend):
    return server.openai_base_url if backend == "openai" else server.gemini_base_url


def config(server, backend, **kw):
    kw.setdefault("backoff_s", 0.001)
    return LLMConfig(backend=backend, model="judge-x", base_url=base_url(server, backend), **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_sdk_round_trip_carries_system_and_user_text(backend):
    with FakeLLMServer(lambda r: FakeReply(f"{r.api}|{r.model}|{r.system}|{r.user}")) as server:
        reply = LLMClient(config(server, backend), cache=False).complete("be brief", "hello")
    assert reply.text == f"{backend}|judge-x|be brief|hello" and not reply.cached


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_on_rate_limit_and_server_errors(backend, status):
    with FakeLLMServer(lambda r: FakeReply(status=status) if r.n <= 2 else FakeReply("ok")) as server:
        client = LLMClient(config(server, backend), cache=False)
        assert client.complete("s", "u").text == "ok"
    assert client.stats.retries == 2 and client.stats.calls == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_rate_limited_forever_gives_up_with_a_clear_error(backend):
    with FakeLLMServer(lambda r: FakeReply(status=429, text="quota")) as server:
        client = LLMClient(config(server, backend, max_retries=3), cache=False)
        with pytest.raises(LLMError, match="after 4 attempt.*429"):
            client.complete("s", "u")
        assert len(server.requests) == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_client_errors_are_not_retried(backend):
    with FakeLLMServer(lambda r: FakeReply(status=400, text="bad request")) as server:
        with pytest.raises(LLMError, match="400"):
            LLMClient(config(server, backend), cache=False).complete("s", "u")
        assert len(server.requests) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeout_is_retried_then_reported(backend):
    with FakeLLMServer(lambda r: FakeReply("late", delay_s=1.5)) as server:
        client = LLMClient(config(server, backend, timeout_s=0.3, max_retries=1), cache=False)
        with pytest.raises(LLMError, match="2 attempt"):
            client.complete("s", "u")


def test_persistent_cache_answers_without_a_call(tmp_path):
    with FakeLLMServer(lambda r: FakeReply(f"reply {r.n}")) as server:
        cfg = config(server, "openai")
        first = LLMClient(cfg, cache=ResponseCache(tmp_path / "c.sqlite")).complete("s", "u")
        again = LLMClient(cfg, cache=ResponseCache(tmp_path / "c.sqlite")).complete("s", "u")
        other_model = LLMClient(LLMConfig(**{**cfg.__dict__, "model": "judge-y"}),
                                cache=ResponseCache(tmp_path / "c.sqlite")).complete("s", "u")
    assert (first.text, again.text, again.cached) == ("reply 1", "reply 1", True)
    assert other_model.text == "reply 2"  # the model is part of the key
    assert len(server.requests) == 2


def test_concurrency_is_bounded():
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def responder(r):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        import time
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return FakeReply(r.user)

    with FakeLLMServer(responder) as server:
        client = LLMClient(config(server, "openai", concurrency=3), cache=False)
        replies = client.complete_many([("s", f"q{i}") for i in range(12)])
    assert [r.text for r in replies] == [f"q{i}" for i in range(12)]
    assert 1 < state["peak"] <= 3


@pytest.mark.parametrize("url", [None, "https://api.openai.com/v1", "http://10.0.0.5:8000/v1"])
def test_no_external_call_without_the_flag(url):
    with pytest.raises(ExternalCallRefused, match="allow"):
        LLMClient(LLMConfig(backend="openai", model="gpt-4o", base_url=url), cache=False)


def test_external_allowed_only_with_the_flag():
    client = LLMClient(LLMConfig(backend="gemini", model="g", allow_external=True, api_key="k"), cache=False)
    assert client.config.allow_external


def test_external_endpoint_without_a_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="GEMINI_API_KEY"):
        LLMClient(LLMConfig(backend="gemini", model="g", allow_external=True), cache=False)


@pytest.mark.parametrize("reply, error", [
    (FakeReply(refusal="I can't help with that."), "Refused"),
    (FakeReply("partial", finish_reason="content_filter"), "ContentFiltered"),
    (FakeReply("", finish_reason="length"), "EmptyReply"),
])
def test_unusable_replies_are_typed_errors_never_retried_nor_cached(reply, error, tmp_path):
    with FakeLLMServer(lambda r: reply) as server:
        client = LLMClient(config(server, "openai"), cache=ResponseCache(tmp_path / "c.sqlite"))
        for _ in range(2):
            with pytest.raises(LLMError) as caught:
                client.complete("s", "u")
            assert type(caught.value).__name__ == error
    assert len(server.requests) == 2 and len(client.cache) == 0


def test_every_attempt_timing_out_is_an_llm_timeout():
    from ctbench.llm import LLMTimeout

    with FakeLLMServer(lambda r: FakeReply("late", delay_s=1.5)) as server:
        with pytest.raises(LLMTimeout, match="2 attempt"):
            LLMClient(config(server, "openai", timeout_s=0.3, max_retries=1), cache=False).complete("s", "u")


def test_images_travel_as_content_parts_and_the_key_comes_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("CTBENCH_TEST_JUDGE_KEY", "sk-named")
    parts = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]
    with FakeLLMServer(lambda r: FakeReply("seen")) as server:
        client = LLMClient(config(server, "openai", api_key_env="CTBENCH_TEST_JUDGE_KEY"), cache=False)
        assert client.complete("", parts).text == "seen"
    (request,) = server.requests
    assert (request.user, request.image_urls, request.api_key) == ("look", ("data:image/png;base64,iVBO",), "sk-named")
    assert request.system == ""  # an empty system prompt sends no system message


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_retry_schedule_with_additive_jitter_waits_delay_plus_a_fraction(backend):
    waits: list[float] = []
    with FakeLLMServer(lambda r: FakeReply(status=503) if r.n <= 3 else FakeReply("ok")) as server:
        cfg = config(server, backend, backoff_s=5.0, max_backoff_s=120.0, backoff_jitter=0.25)
        assert LLMClient(cfg, cache=False, sleep=waits.append).complete("s", "u").text == "ok"
    assert len(waits) == 3
    for wait, delay in zip(waits, (5.0, 10.0, 20.0)):
        assert delay <= wait <= 1.25 * delay


@pytest.mark.parametrize("backend", BACKENDS)
def test_settings_left_unset_are_not_sent(backend):
    with FakeLLMServer(lambda r: FakeReply("ok")) as server:
        LLMClient(config(server, backend, temperature=None, max_output_tokens=None, json_mode=False),
                  cache=False).complete("", "u")
    body = server.requests[0].body
    sent = body if backend == "openai" else body.get("generationConfig", {})
    assert not {"temperature", "max_tokens", "maxOutputTokens", "response_format", "responseMimeType"} & set(sent)
    assert "systemInstruction" not in body and [m["role"] for m in body.get("messages", [])] in ([], ["user"])
