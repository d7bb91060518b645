from __future__ import annotations

import math

import numpy as np
import pytest

from ctbench.datasets.qa_items import Dataset, QAItem
from ctbench.evaluation.compare import mcnemar_exact
from ctbench.evaluation.jury import aligned_jury, check_alignment, fleiss_kappa, published_jury
from ctbench.evaluation.ledger import LedgerIssues, PredictionRecord, ServerPredictions
from ctbench.evaluation.text_metrics import AlignScoreMetric, Bleu, Meteor, Rouge, TextProtocol, metrics
from ctbench.evaluation.text_scoring import text_metric_rows

ITEMS = [QAItem(f"v{i // 2}::{i % 2}", f"v{i // 2}", f"v{i // 2}", f"q{i}", f"a{i}") for i in range(6)]
PREDS = ServerPredictions("m", "m.jsonl", {it.question_id: PredictionRecord(it.question_id, f"p{i}", "ok")
                                            for i, it in enumerate(ITEMS)}, LedgerIssues())


def rows_for(indices, verdicts):
    return [{"question": f"q{i}", "answer": f"a{i}", "prediction": f"p{i}", "is_correct": v}
            for i, v in zip(indices, verdicts)]


def test_aligned_file_is_reported_as_lined_up():
    a = check_alignment(ITEMS, PREDS, rows_for(range(6), [True] * 6), "j")
    assert a.positional_ok and not a.missing_ids


def test_dropped_verdict_is_detected_with_its_position_and_joined_by_identity():
    # the verdict for item 2 is missing: from position 2 on, verdict i belongs to item i+1
    rows = rows_for([0, 1, 3, 4, 5], [True, False, True, False, True])
    a = check_alignment(ITEMS, PREDS, rows, "gem")
    assert not a.positional_ok and a.first_misaligned == 2 and a.missing_ids == ["v1::0"]
    assert a.by_id["v1::1"].is_correct is True and "v1::0" not in a.by_id
    assert "from item 2 on" in a.describe()


def test_jury_needs_two_votes_and_mean_at_least_066():
    judges = {
        "a": check_alignment(ITEMS, PREDS, rows_for(range(6), [True, True, False, True, None, True]), "a"),
        "b": check_alignment(ITEMS, PREDS, rows_for(range(6), [True, False, False, True, True, True]), "b"),
        "c": check_alignment(ITEMS, PREDS, rows_for(range(5), [False, True, False, False, True]), "c"),
    }
    jury = aligned_jury(ITEMS, judges)
    assert [jury[it.question_id].correct for it in ITEMS] == [True, True, False, True, True, True]
    assert jury["v2::1"].votes["c"] is None and jury["v2::1"].decided  # 2 of 3 judges present, both yes
    pub = published_jury(ITEMS, judges)
    assert pub.count == 5  # zipped by position, truncated to the shortest file


def test_fleiss_kappa_known_values():
    assert fleiss_kappa([[True, True, True], [False, False, False]] * 5) == pytest.approx(1.0)
    assert fleiss_kappa([[True, False], [False, True]] * 5) == pytest.approx(-1.0)
    assert math.isnan(fleiss_kappa([]))


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(5, 5) == 1.0


def test_bleu_meteor_rouge_on_identical_and_disjoint_text():
    for module in ("sacrebleu", "nltk", "rouge_score"):
        pytest.importorskip(module, reason=f"needs {module}: pip install -e .[test]")
    same = ["the left kidney is enlarged"] * 3
    assert Bleu().corpus(same, same)["bleu"] == pytest.approx(100.0)
    assert Meteor().per_item(same, same)["meteor"] == pytest.approx(np.full(3, 0.996), abs=1e-3)  # METEOR tops out just below 1
    r = Rouge().per_item(["kidneys enlarged"], ["the kidney is enlarged"])
    assert r["rouge1_f"][0] == pytest.approx(2 * 2 / (2 + 4))  # stemming: kidneys ~ kidney


def test_alignscore_is_unavailable_with_a_reason_never_a_number(tmp_path, monkeypatch):
    monkeypatch.setenv("CTBENCH_ALIGNSCORE_VENV", str(tmp_path / "no-venv"))
    ds = Dataset(items=ITEMS, data_root=tmp_path, name="t")
    rows, _ = text_metric_rows(ds, [PREDS], [AlignScoreMetric()])
    assert len(rows) == 1 and rows[0]["value"] is None and rows[0]["note"].startswith("unavailable:")


def test_text_rows_skip_blank_predictions_but_count_them(tmp_path):
    pytest.importorskip("rouge_score", reason="needs rouge-score: pip install -e .[test]")
    records = dict(PREDS.records)
    records["v0::0"] = PredictionRecord("v0::0", "  ", "ok")
    del records["v0::1"]
    preds = ServerPredictions("m", "m.jsonl", records, LedgerIssues())
    ds = Dataset(items=ITEMS, data_root=tmp_path, name="t")
    rows, _per_item = text_metric_rows(ds, [preds], [Rouge()])
    row = next(r for r in rows if r["metric"] == "rouge1_f" and r["group_kind"] == "all")
    assert (row["n"], row["scored"], row["missing"]) == (6, 4, 1)
    rows, _ = text_metric_rows(ds, [preds], [Rouge()], TextProtocol(skip_empty=False))
    assert next(r for r in rows if r["metric"] == "rouge1_f")["scored"] == 6


def test_metric_registry_lists_what_is_available():
    with pytest.raises(KeyError, match="Available: alignscore, bleu, meteor, rouge, sbert"):
        metrics.get("cider")


def test_wordnet_setup_builds_an_nltk_corpus(tmp_path):
    pytest.importorskip("nltk", reason="needs nltk: pip install -e .[test]")
    from ctbench.evaluation.wordnet_setup import DEBIAN_WORDNET, ensure_wordnet, lexnames_text

    if not (DEBIAN_WORDNET / "data.noun").is_file():
        pytest.skip("Debian wordnet-base is not installed (scripts/install-wordnet.sh)")
    root = ensure_wordnet(tmp_path / "nltk_data")
    corpus = root / "corpora" / "wordnet"
    assert (corpus / "lexnames").read_text() == lexnames_text() and lexnames_text().count("\n") == 45
    assert not (corpus / "data.noun").is_symlink()


def test_sbert_encoder_deduplicates_and_caches(tmp_path):
    from ctbench.evaluation.embeddings import EmbeddingCache, SentenceEncoder

    class Fake:
        def __init__(self):
            self.seen = []

        def encode(self, texts, **kw):
            self.seen += list(texts)
            v = np.array([[len(t), 1.0] for t in texts], np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    fake = Fake()
    enc = SentenceEncoder(cache=EmbeddingCache(tmp_path / "e.sqlite"), model=fake)
    out = enc.encode(["no", "yes", "no", "no"])
    assert out.shape == (4, 2) and fake.seen == ["no", "yes"]
    enc2 = SentenceEncoder(cache=EmbeddingCache(tmp_path / "e.sqlite"), model=fake)
    enc2.encode(["yes", "no"])
    assert fake.seen == ["no", "yes"] and enc2.encoded == 0
