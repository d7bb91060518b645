"""LLM judges through the real SDK clients against the loopback wire-format server."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("openai", reason="needs openai: pip install -e .[test]")
pytest.importorskip("google.genai", reason="needs google.genai: pip install -e .[test]")
from click.testing import CliRunner

from ctbench.cli import main
from ctbench.evaluation import score_run
from ctbench.evaluation.judges import JudgeItem, JudgeSpec, LLMJudge, judge_run, load_prompt, parse_verdicts
from ctbench.evaluation.judges.fake import judge_responder, rule_verdict
from ctbench.evaluation.judges.judge import parse_judge_spec
from ctbench.llm.testing import FakeLLMServer, FakeReply

ITEMS = [JudgeItem(f"v{i}::0", f"Which side is lesion {i}?", "left" if i % 2 else "right",
                   "Left side" if i % 3 else "right") for i in range(20)]


def make_judge(server, backend, tmp_path, batch_size=8, name="j", **kw):
    url = server.openai_base_url if backend == "openai" else server.gemini_base_url
    spec = JudgeSpec(name, backend, "judge-model", url)
    return LLMJudge.create(spec, load_prompt(), batch_size=batch_size, cache_path=tmp_path / "cache.sqlite",
                           backoff_s=0.001, **kw)


@pytest.mark.parametrize("backend", ["openai", "gemini"])
def test_batched_verdicts_carry_prompt_hash_and_match_items(backend, tmp_path):
    with FakeLLMServer(judge_responder) as server:
        judge = make_judge(server, backend, tmp_path)
        verdicts = judge.judge(ITEMS)
    assert len(server.requests) == 3  # 20 items, 8 per call
    prompt = load_prompt()
    for item, v in zip(ITEMS, verdicts):
        expected = rule_verdict({"prediction": item.prediction, "reference_answer": item.answer})
        assert (v.question_id, v.is_correct, v.failure) == (item.question_id, expected, "")
        assert v.prompt_sha256 == prompt.sha256 and v.prompt == "ct-spatialvqa-judge-v1"
    assert any("Which side is lesion 0?" in r.user for r in server.requests)
    assert all("radiologist" in r.system for r in server.requests)


def test_cache_saves_every_call_on_a_second_pass_with_other_batching(tmp_path):
    with FakeLLMServer(judge_responder) as server:
        first = make_judge(server, "openai", tmp_path, batch_size=8).judge(ITEMS)
        second_judge = make_judge(server, "openai", tmp_path, batch_size=5)
        second = second_judge.judge(ITEMS)
    assert len(server.requests) == 3
    assert [v.is_correct for v in first] == [v.is_correct for v in second]
    assert second_judge.stats.cache_hits == 20 and all(v.cached for v in second)


def test_garbage_reply_is_a_judge_failure_not_a_wrong_answer(tmp_path):
    def responder(req):
        if "lesion 3?" in req.user:
            return FakeReply("I think they are all fine!!")
        return judge_responder(req)

    with FakeLLMServer(responder) as server:
        judge = make_judge(server, "gemini", tmp_path, batch_size=4)
        verdicts = judge.judge(ITEMS)
        # failures are not cached: a retry asks again
        again = make_judge(server, "gemini", tmp_path, batch_size=4).judge(ITEMS[:4])
    failed = [v for v in verdicts if v.is_correct is None]
    assert [v.question_id for v in failed] == [f"v{i}::0" for i in range(4)]
    assert all("unparseable reply" in v.failure for v in failed)
    assert judge.stats.failures == 4 and all(v.is_correct is None for v in again)


@pytest.mark.parametrize("reply, expected", [
    ("[" * 100_000 + "]" * 100_000, [None, None]),
    ('{"verdicts": ' + "[" * 50_000 + '{"id": 0, "is_correct": true}' + "]" * 50_000 + "}", [True, None]),  # loose rescue
    ("```json\n" + '{"a": ' * 30_000 + "1" + "}" * 30_000 + "\n```", [None, None]),
], ids=["brackets", "verdict buried deep", "fenced objects"])
def test_a_deeply_nested_reply_is_an_unparseable_verdict_not_a_crash(reply, expected):
    parsed = parse_verdicts(reply, 2)
    assert [parsed[i][0] for i in range(2)] == expected
    assert all(parsed[i][2] for i in range(2) if parsed[i][0] is None)


def test_a_deeply_nested_reply_fails_its_batch_alone(tmp_path):
    def responder(req):
        if "lesion 3?" in req.user:
            return FakeReply("[" * 100_000 + "]" * 100_000)
        return judge_responder(req)

    with FakeLLMServer(responder) as server:
        verdicts = make_judge(server, "openai", tmp_path, batch_size=4).judge(ITEMS)
    assert [v.question_id for v in verdicts if v.is_correct is None] == [f"v{i}::0" for i in range(4)]
    assert all(v.is_correct is not None for v in verdicts[4:])


def test_judge_rate_limited_forever_records_failures_and_keeps_the_rest(tmp_path):
    def responder(req):
        if "lesion 0?" in req.user:
            return FakeReply(status=429, text="quota exhausted")
        return judge_responder(req)

    with FakeLLMServer(responder) as server:
        verdicts = make_judge(server, "openai", tmp_path, batch_size=10, max_retries=2).judge(ITEMS)
    assert all(v.is_correct is None and "429" in v.failure for v in verdicts[:10])
    assert all(v.is_correct is not None for v in verdicts[10:])


@pytest.mark.parametrize("reply, expected", [
    ('{"verdicts": [{"id": 0, "is_correct": true}, {"id": 1, "is_correct": false}]}', [True, False]),
    ('```json\n[{"id": 1, "is_correct": "no"}, {"id": 0, "is_correct": "yes"},]\n```', [True, False]),
    ("Sure! {'verdicts': [{'id': 0, 'is_correct': True}, {'id': 1, 'is_correct': False}]} hope it helps", [True, False]),
    ('{"verdicts": [{"id": 0, "is_correct": true}', [True, None]),  # truncated: loose rescue of item 0
    ('{"verdicts": [{"id": 0, "is_correct": "maybe"}]}', [None, None]),
    ("", [None, None]),
])
def test_tolerant_parsing(reply, expected):
    parsed = parse_verdicts(reply, 2)
    assert [parsed[i][0] for i in range(2)] == expected
    assert all(parsed[i][2] for i in range(2) if parsed[i][0] is None)


def test_empty_predictions_are_not_sent(tmp_path):
    with FakeLLMServer(judge_responder) as server:
        verdicts = make_judge(server, "openai", tmp_path).judge([JudgeItem("a::0", "q", "left", "  ")])
    assert verdicts[0].is_correct is False and not server.requests


def test_judge_spec_parsing():
    assert parse_judge_spec("gemini").model == "gemini-2.5-flash"
    spec = parse_judge_spec("vllm:qwen2.5-7b@http://127.0.0.1:9000/v1")
    assert (spec.name, spec.backend, spec.model, spec.base_url) == ("qwen2.5-7b", "openai", "qwen2.5-7b",
                                                                    "http://127.0.0.1:9000/v1")
    with pytest.raises(ValueError, match="needs a model"):
        parse_judge_spec("vllm")


def _judged_run(small_run, tmp_path):
    with FakeLLMServer(judge_responder) as server:
        judges = [make_judge(server, backend, tmp_path, name=name)
                  for name, backend in (("ja", "openai"), ("jb", "gemini"), ("jc", "openai"))]
        first = judge_run(small_run, judges)
        calls = len(server.requests)
        again = judge_run(small_run, judges)
    return first, again, calls, server


def test_judge_run_writes_ledgers_resumes_and_feeds_the_jury(small_run, tmp_path):
    first, again, calls, server = _judged_run(small_run, tmp_path)
    assert first.judged["good.ja"] == 5 and first.judged["flaky.jb"] == 2
    assert again.judged["good.ja"] == 0 and again.skipped["good.ja"] == 5
    assert len(server.requests) == calls  # resume: no new call
    rows = [json.loads(l) for l in (small_run / "judges" / "good.ja.jsonl").read_text().splitlines()]
    assert {r["prompt_sha256"] for r in rows} == {load_prompt().sha256}
    result = score_run(small_run)
    jury = result.value("good", "jury_accuracy")
    assert jury["n"] == 5 and 0 <= jury["value"] <= 1
    section = result.extra["jury"]["servers"]["good"]
    # one rule behind all three judges: they always agree
    assert set(section["agreement"]["pairwise_agreement"].values()) == {1.0}
    flaky = result.value("flaky", "jury_accuracy")
    assert flaky["n"] == 5  # unanswered items stay in the denominator


def test_cli_judge_refuses_external_endpoint_without_flag(small_run):
    res = CliRunner().invoke(main, ["score", str(small_run), "--judge", "gpt-4o"])
    assert res.exit_code == 1 and "--allow-external" in res.output


def test_cli_judge_against_local_server(small_run):
    with FakeLLMServer(judge_responder) as server:
        res = CliRunner().invoke(main, ["score", str(small_run), "--judge", f"vllm:local-judge@{server.openai_base_url}"],
                                 env={"CTBENCH_CACHE": str(small_run.parent / "cache")})
    assert res.exit_code == 0, res.output
    assert "judged good.local-judge: 5 new" in res.output
    assert (small_run / "judges" / "good.local-judge.jsonl").is_file()
