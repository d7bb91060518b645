"""generate -> filter -> categorize against a loopback OpenAI-compatible server, and offline."""
from __future__ import annotations

import json

import pytest

from ctbench.datasets.categories import LATERALITY, LONGITUDINAL
from ctbench.datasets.qa import pipeline
from ctbench.datasets.qa.llm import LLMError, make_chat_model
from ctbench.datasets.qa.prompting import load_prompt
from ctbench.datasets.qa_items import load_dataset

FINDINGS = "There is a nodule in the right lung upper lobe. The left lung is clear. No effusion was detected."
REPORTS = {
    "valid_1_a_1.nii.gz": {"Findings_EN": FINDINGS, "Impressions_EN": "Right upper lobe nodule."},
    "valid_2_a_1.nii.gz": {"Findings_EN": FINDINGS, "Impressions_EN": "Nodule."},
    "valid_3_a_1.nii.gz": {"Impressions_EN": "Findings within normal limits."},  # no Findings
    "valid_4_a_1.nii.gz": {"Findings_EN": "Trakea ve her iki ana bronş açıktır, lenf nodu saptanmadı.", "Impressions_EN": ""},
}
GOOD_PAIRS = [
    {"question": "Which lung holds the nodule?", "answer": "The right lung."},
    {"question": "Which lobe holds the nodule?", "answer": "The upper lobe."},
    {"question": "Is there any effusion?", "answer": "No effusion was detected."},
] + [{"question": f"Where is finding {i}?", "answer": "In the left lung."} for i in range(5)]


def _model(fake_llm, tmp_path=None):
    cache = (tmp_path or fake_llm.tmp) / "llm_cache.sqlite"
    return make_chat_model("openai:test-model", base_url=fake_llm.base_url, cache_path=cache, max_retries=0)


@pytest.fixture(autouse=True)
def _llm_tmp(fake_llm, tmp_path):
    fake_llm.tmp = tmp_path


@pytest.fixture
def reports(tmp_path):
    path = tmp_path / "reports.json"
    path.write_text(json.dumps(REPORTS))
    return path


def test_external_llm_needs_an_explicit_allow(reports, tmp_path):
    from ctbench.llm import ExternalCallRefused

    with pytest.raises(ExternalCallRefused, match="allow_external"):
        make_chat_model("openai:gpt-4o-mini")


def test_generate_records_model_prompt_and_date_and_refuses_bad_reports(fake_llm, reports, tmp_path):
    fake_llm.reply = lambda messages: json.dumps(GOOD_PAIRS)
    out = tmp_path / "qa"
    summary = pipeline.generate_qa(reports, out, _model(fake_llm))
    assert summary.done_now == 2 and len(summary.errors) == 2
    assert any("no Findings_EN" in e for e in summary.errors)
    assert any("does not look like English" in e for e in summary.errors)
    data = json.loads((out / "qa_pairs_unfiltered.json").read_text())
    assert set(data) == {"valid_1_a_1.nii.gz", "valid_2_a_1.nii.gz"}
    prov = data["valid_1_a_1.nii.gz"]["qa_pairs"][0]["provenance"]["generate"]
    assert prov["model"] == "openai:test-model" and prov["prompt_sha256"] == load_prompt("generate").sha256
    assert prov["date"].endswith("+00:00")
    sent = fake_llm.requests[0]["messages"][1]["content"]
    assert FINDINGS in sent and "Right upper lobe nodule." in sent and "7 and 10" in sent


def test_generate_resumes_and_caches(fake_llm, reports, tmp_path):
    fake_llm.reply = lambda messages: json.dumps(GOOD_PAIRS)
    out = tmp_path / "qa"
    pipeline.generate_qa(reports, out, _model(fake_llm), volumes=["valid_1_a_1.nii.gz"])
    calls = len(fake_llm.requests)
    summary = pipeline.generate_qa(reports, out, _model(fake_llm), volumes=["valid_1_a_1.nii.gz", "valid_2_a_1.nii.gz"])
    assert summary.done_before == 1 and summary.done_now == 1
    assert len(fake_llm.requests) == calls + 1


@pytest.mark.parametrize(
    "reply, message",
    [
        ("Sure! Here are the pairs: ...", "not JSON"),
        ('{"question": "q", "answer": "a"}', "expected a list"),
        ('[{"question": "q"}]', "lacks a non-empty 'question' and 'answer'"),
        ("[]", "empty list"),
    ],
)
def test_bad_llm_replies_are_recorded_and_the_rest_is_kept(fake_llm, reports, tmp_path, reply, message):
    replies = iter([json.dumps(GOOD_PAIRS), reply])
    fake_llm.reply = lambda messages: next(replies)
    out = tmp_path / "qa"
    summary = pipeline.generate_qa(reports, out, _model(fake_llm), volumes=["valid_1_a_1.nii.gz", "valid_2_a_1.nii.gz"])
    assert summary.done_now == 1 and message in summary.errors[0]
    ledger = [json.loads(line) for line in (out / "generate.jsonl").read_text().splitlines()]
    assert [row["status"] for row in ledger] == ["ok", "error"]
    assert "valid_1_a_1.nii.gz" in json.loads((out / "qa_pairs_unfiltered.json").read_text())


def test_duplicate_generated_questions_are_dropped_with_a_warning(fake_llm, reports, tmp_path):
    fake_llm.reply = lambda messages: json.dumps(GOOD_PAIRS + [{"question": "which lung holds the nodule", "answer": "x"}])
    summary = pipeline.generate_qa(reports, tmp_path / "qa", _model(fake_llm), volumes=["valid_1_a_1.nii.gz"])
    assert any("dropped 1 duplicate" in w for w in summary.warnings)


def test_unreachable_llm_stops_the_step_with_a_clear_error(reports, tmp_path):
    model = make_chat_model("openai:m", base_url="http://127.0.0.1:9/v1", max_retries=0, cache_path=tmp_path / "c.sqlite")
    with pytest.raises(LLMError, match="failed after 1 attempt"):
        pipeline.generate_qa(reports, tmp_path / "qa", model, volumes=["valid_1_a_1.nii.gz"])


def test_refused_api_key_is_reported(fake_llm, reports, tmp_path):
    fake_llm.status = 401
    with pytest.raises(LLMError, match="HTTP 401"):
        pipeline.generate_qa(reports, tmp_path / "qa", _model(fake_llm), volumes=["valid_1_a_1.nii.gz"])


def _unfiltered(tmp_path):
    path = tmp_path / "qa_pairs_unfiltered.json"
    path.write_text(json.dumps({"valid_1_a_1.nii.gz": {"qa_pairs": GOOD_PAIRS[:3]}}))
    return path


def test_rule_based_filter_and_tagger_run_offline(tmp_path):
    out = tmp_path / "qa"
    f = pipeline.filter_qa(_unfiltered(tmp_path), out)
    assert f.model.startswith("rules:") and f.prompt_sha256 is None
    kept = json.loads((out / "qa_pairs.json").read_text())["valid_1_a_1.nii.gz"]["qa_pairs"]
    assert [p["question"] for p in kept] == [GOOD_PAIRS[0]["question"], GOOD_PAIRS[1]["question"]]
    pipeline.categorize_qa(out / "qa_pairs.json", out)
    dataset = load_dataset(out / "qa_pairs_with_categories.json")
    assert LATERALITY in dataset.items[0].categories and LONGITUDINAL in dataset.items[1].categories


def test_llm_filter_and_categorize(fake_llm, tmp_path):
    out = tmp_path / "qa"

    def reply(messages):
        prompt = messages[-1]["content"]
        if "Decide for each pair" in prompt:
            return json.dumps([{"index": 0, "spatial": True}, {"index": 1, "spatial": True}, {"index": 2, "spatial": False}])
        return "```json\n" + json.dumps([{"index": 0, "categories": ["Laterality & Bilateral Symmetry"]},
                                         {"index": 1, "categories": ["Longitudinal Position"]}]) + "\n```"

    fake_llm.reply = reply
    pipeline.filter_qa(_unfiltered(tmp_path), out, _model(fake_llm))
    summary = pipeline.categorize_qa(out / "qa_pairs.json", out, _model(fake_llm))
    assert summary.prompt_sha256 == load_prompt("categorize").sha256
    pairs = json.loads((out / "qa_pairs_with_categories.json").read_text())["valid_1_a_1.nii.gz"]["qa_pairs"]
    assert [p["category"] for p in pairs] == [[LATERALITY], [LONGITUDINAL]]
    assert set(pairs[0]["provenance"]) == {"filter", "categorize"}


@pytest.mark.parametrize(
    "reply, message",
    [
        ('[{"index": 0, "spatial": true}]', "covers 1 of 3 pairs"),
        ('[{"index": 0, "spatial": "yes"}, {"index": 1, "spatial": true}, {"index": 2, "spatial": false}]', "true or false"),
        ('[{"index": 0, "spatial": true}, {"index": 0, "spatial": true}, {"index": 2, "spatial": false}]', "repeated index"),
    ],
)
def test_wrong_shaped_filter_replies_are_errors(fake_llm, tmp_path, reply, message):
    fake_llm.reply = lambda messages: reply
    summary = pipeline.filter_qa(_unfiltered(tmp_path), tmp_path / "qa", _model(fake_llm))
    assert summary.done_now == 0 and message in summary.errors[0]


def test_unknown_category_from_the_llm_is_an_error(fake_llm, tmp_path):
    fake_llm.reply = lambda messages: json.dumps([{"index": i, "categories": ["Size"]} for i in range(3)])
    summary = pipeline.categorize_qa(_unfiltered(tmp_path), tmp_path / "qa", _model(fake_llm))
    assert "not one of the six spatial categories" in summary.errors[0]
