"""`--prompt published`: the published harness's judging protocol, checked on the wire.

The loopback judge server records each request's JSON body; what it receives is compared with
messages built here, independently, from the shared protocol file
(`ct-spatialvqa/protocol/published-judging.json`; the tests skip with a message when the shared
folder is absent).
"""
from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("openai", reason="needs openai: pip install -e .[test]")
pytest.importorskip("google.genai", reason="needs google.genai: pip install -e .[test]")
from click.testing import CliRunner

from ctbench.cli import main
from ctbench.evaluation.judges import JudgeItem, JudgeSpec, LLMJudge, load_prompt
from ctbench.evaluation.judges.fake import rule_verdict
from ctbench.evaluation.reference import locate_reference
from ctbench.llm.testing import FakeLLMServer, FakeReply

ROOT = locate_reference()
PROTOCOL_PATH = ROOT / "protocol" / "published-judging.json" if ROOT else None
pytestmark = pytest.mark.skipif(PROTOCOL_PATH is None or not PROTOCOL_PATH.is_file(),
                                reason="shared data absent: needs <repo>/../shared/data/ct-spatialvqa/protocol/"
                                       "published-judging.json or CTBENCH_SHARED pointing at it")

ITEMS = [JudgeItem(f"v{i}::0", f"Which side is lesion {i} {{in}}?", "left" if i % 2 else "right",
                   "" if i == 4 else ("Left side" if i % 3 else "right")) for i in range(12)]
_LINE = re.compile(r"^(\d+)\. Question: .*\n   Answer: (.*)\n   Prediction: (.*)$", re.M)


def protocol() -> dict:
    return json.loads(PROTOCOL_PATH.read_text(encoding="utf-8"))


def expected_user(batch: list[JudgeItem]) -> str:
    """The published user message for one batch, built straight from the protocol file."""
    p = protocol()
    lines = [p["item_format"].format(offset=p["offset_starts_at"] + k, question=it.question, answer=it.answer,
                                     prediction=it.prediction) for k, it in enumerate(batch)]
    return p["prompt_template"].replace("{batch}", p["item_separator"].join(lines))


def published_responder(request) -> FakeReply:
    """Replies as the published prompt asks: a JSON list of {index, is_correct}, fenced like Gemini does."""
    verdicts = [{"index": int(n), "is_correct": rule_verdict({"prediction": pred, "reference_answer": ref})}
                for n, ref, pred in _LINE.findall(request.user)]
    return FakeReply("```json\n" + json.dumps(verdicts) + "\n```")


def make_judge(server, name, backend, tmp_path, **kw):
    url = server.openai_base_url if backend == "openai" else server.gemini_base_url
    return LLMJudge.create(JudgeSpec(name, backend, "judge-model", url), load_prompt("published"),
                           cache_path=tmp_path / "cache.sqlite", concurrency=1, **kw)  # requests in batch order


@pytest.mark.parametrize("name", ["gpt-4o", "qwen-plus", "local-vllm"])
def test_openai_judges_receive_the_published_messages_byte_for_byte(name, tmp_path):
    with FakeLLMServer(published_responder) as server:
        verdicts = make_judge(server, name, "openai", tmp_path).judge(ITEMS)
    p = protocol()
    entry = p["judges"].get(name, p["judges"]["gpt-4o"])  # a judge the file does not name: gpt-4o's settings
    assert p["batch_size"] == 5 and len(server.requests) == 3  # 12 items, 5 per call
    for k, request in enumerate(server.requests):
        batch = ITEMS[5 * k:5 * k + 5]
        assert request.body["messages"] == [{"role": "system", "content": entry["system_message"]},
                                             {"role": "user", "content": expected_user(batch)}]
        assert request.user.encode("utf-8") == expected_user(batch).encode("utf-8")
        assert request.body["temperature"] == entry["temperature"] == 0.0
        assert request.body["max_tokens"] == entry["max_tokens"] == 512
        assert "response_format" not in request.body
    for item, v in zip(ITEMS, verdicts):
        assert v.is_correct == rule_verdict({"prediction": item.prediction, "reference_answer": item.answer})
        assert v.prompt == "published" and v.prompt_sha256 and not v.failure


def test_gemini_judge_gets_the_bare_prompt_with_api_defaults(tmp_path):
    with FakeLLMServer(published_responder) as server:
        verdicts = make_judge(server, "gemini-2.5-flash", "gemini", tmp_path).judge(ITEMS[:5])
    (request,) = server.requests
    assert request.body["contents"] == [{"parts": [{"text": expected_user(ITEMS[:5])}], "role": "user"}]
    assert "systemInstruction" not in request.body  # system_message null: none sent
    config = request.body.get("generationConfig", {})
    assert "temperature" not in config and "maxOutputTokens" not in config and "responseMimeType" not in config
    assert all(v.is_correct is not None for v in verdicts)


def test_empty_predictions_are_sent_as_the_published_harness_did(tmp_path):
    with FakeLLMServer(published_responder) as server:
        make_judge(server, "gpt-4o", "openai", tmp_path).judge([ITEMS[4]])
    assert len(server.requests) == 1 and server.requests[0].user.endswith("   Prediction: \n")


@pytest.mark.parametrize("reply, label", [
    (FakeReply("I cannot grade these."), "PARSE_ERROR"),
    (FakeReply(""), "BLOCKED_OR_EMPTY_RESPONSE"),
    (FakeReply(status=400, text="bad request"), "REQUEST_ERROR: "),
])
def test_a_failed_batch_records_null_for_every_item_with_the_published_reason(reply, label, tmp_path):
    def responder(request):
        return reply if "lesion 5 " in request.user else published_responder(request)

    with FakeLLMServer(responder) as server:
        verdicts = make_judge(server, "gpt-4o", "openai", tmp_path, max_retries=0).judge(ITEMS)
    failed = verdicts[5:10]
    assert all(v.is_correct is None and v.reasoning.startswith(label) and v.failure.startswith(label) for v in failed)
    assert all(v.is_correct is not None for v in verdicts[:5] + verdicts[10:])


def test_the_protocol_sets_the_published_retry_schedule():
    settings = load_prompt("published").settings("gpt-4o", "openai")
    retries = protocol()["retries"]
    assert (settings["max_retries"], settings["backoff_s"], settings["max_backoff_s"], settings["backoff_jitter"]) == \
        (retries["max_retries"], retries["initial_backoff_s"], retries["max_backoff_s"], 0.25)


def test_a_protocol_file_without_its_prompt_is_refused(tmp_path):
    broken = {k: v for k, v in protocol().items() if k != "item_format"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(Exception, match="lacks item_format"):
        load_prompt(str(path))


def test_cli_score_with_the_published_prompt(small_run):
    with FakeLLMServer(published_responder) as server:
        res = CliRunner().invoke(main, ["score", str(small_run), "--judge", f"vllm:local-judge@{server.openai_base_url}",
                                        "--prompt", "published"], env={"CTBENCH_CACHE": str(small_run.parent / "cache")})
        assert res.exit_code == 0, res.output
        assert "judged good.local-judge: 5 new" in res.output
        assert "judge prompt: published from" in res.output and "published-judging.json" in res.output
        assert len(server.requests) == 2  # good: 5 items in one batch; flaky: 2 answered items
    rows = [json.loads(line) for line in (small_run / "judges" / "good.local-judge.jsonl").read_text().splitlines()]
    assert {r["prompt"] for r in rows} == {"published"}
    assert {r["prompt_sha256"] for r in rows} == {load_prompt("published").sha256}


def test_judging_again_with_the_published_prompt_replaces_the_v1_verdicts(small_run, tmp_path):
    from ctbench.evaluation import score_run
    from ctbench.evaluation.judges import judge_run
    from ctbench.evaluation.judges.fake import judge_responder

    def responder(request):
        return published_responder(request) if "Batch:" in request.user else judge_responder(request)

    with FakeLLMServer(responder) as server:
        v1 = LLMJudge.create(JudgeSpec("gpt-4o", "openai", "m", server.openai_base_url), load_prompt(),
                             cache_path=tmp_path / "c.sqlite")
        judge_run(small_run, [v1])
        first = len(server.requests)
        again = judge_run(small_run, [make_judge(server, "gpt-4o", "openai", tmp_path)])
    assert again.judged["good.gpt-4o"] == 5 and again.skipped["good.gpt-4o"] == 0
    assert len(server.requests) > first
    section = score_run(small_run).extra["jury"]["servers"]["good"]
    assert section["prompts"] == {"gpt-4o": ["published"]}
