"""Text-similarity metrics: BLEU, METEOR, ROUGE-1/2/L, Sentence-BERT cosine, AlignScore.

Each metric scores a list of (prediction, reference) pairs. Per-item scoring is separate from
aggregation: `per_item` gives one float per pair (BLEU is corpus-level and gives none), `corpus`
the aggregate. A metric whose dependency or weights are absent says so via `unavailable()` and is
reported with that reason, never as a number.

The protocol that reproduces the published CT-SpatialVQA table (`TextProtocol()` defaults):
lower-case both sides; skip items whose prediction is empty or blank (and missing/failed ones);
sacrebleu corpus BLEU with its default 13a tokenizer; METEOR (NLTK, WordNet 3.0) on whitespace
tokens, averaged; ROUGE F1 with the Porter stemmer, averaged; SBERT cosine, averaged.

Each metric's name, the figures it produces, their direction, scale and protocol text are
declared in `metric_registry.py` (the figure's `text_metric` and `implementation`); `metrics`
is that registry's view of the text metrics, and a class here holds only the computation.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ctbench.evaluation.metric_registry import TEXT_METRICS


@dataclass(frozen=True)
class TextProtocol:
    lowercase: bool = True
    skip_empty: bool = True  # False: blank/missing predictions score as "" (in the denominator)

    def prepare(self, text: str) -> str:
        return text.lower() if self.lowercase else text


class TextMetric:
    """Base class. Subclasses implement `per_item` (or `corpus`); their name and figures are
    their declarations' (`metric_registry.py`)."""

    corpus_level = False  # True: only a corpus figure, no per-item values

    @property
    def name(self) -> str:
        """The name `bench score --metrics` selects it by ("" when nothing declares this class)."""
        return TEXT_METRICS.name_of(type(self)) or ""

    @property
    def outputs(self) -> tuple[str, ...]:
        """The summary metrics this produces (ROUGE gives three)."""
        return TEXT_METRICS.outputs(self.name)

    def unavailable(self) -> str | None:
        """Why this metric cannot run here, or None."""
        return None

    def per_item(self, preds: Sequence[str], refs: Sequence[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def corpus(self, preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
        return {k: float(np.mean(v)) if len(v) else float("nan") for k, v in self.per_item(preds, refs).items()}


metrics = TEXT_METRICS  # the text metrics by name: `metrics.get("rouge")` is `Rouge`


class Bleu(TextMetric):
    corpus_level = True

    def unavailable(self) -> str | None:
        return _missing("sacrebleu")

    def corpus(self, preds, refs):
        import sacrebleu

        return {"bleu": float(sacrebleu.corpus_bleu(list(preds), [list(refs)]).score)}


class Meteor(TextMetric):
    def unavailable(self) -> str | None:
        reason = _missing("nltk")
        if reason:
            return reason
        from ctbench.evaluation.wordnet_setup import WordNetMissing, ensure_wordnet

        try:
            ensure_wordnet()
        except WordNetMissing as exc:
            return str(exc)
        return None

    def per_item(self, preds, refs):
        from nltk.translate.meteor_score import meteor_score

        from ctbench.evaluation.wordnet_setup import ensure_wordnet

        ensure_wordnet()
        return {"meteor": np.array([meteor_score([r.split()], p.split()) for p, r in zip(preds, refs)])}


class Rouge(TextMetric):
    def unavailable(self) -> str | None:
        return _missing("rouge_score")

    def per_item(self, preds, refs):
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
        scores = [scorer.score(r, p) for p, r in zip(preds, refs)]
        return {f"{k}_f": np.array([s[k].fmeasure for s in scores]) for k in ("rouge1", "rouge2", "rougeL")}


class SbertCosine(TextMetric):
    mean_dtype = np.float32  # the published pipeline averages in torch float32

    def __init__(self, encoder=None):
        self._encoder = encoder

    def encoder(self):
        if self._encoder is None:
            from ctbench.evaluation.embeddings import SentenceEncoder

            self._encoder = SentenceEncoder()
        return self._encoder

    def unavailable(self) -> str | None:
        from ctbench.evaluation.embeddings import SentenceEncoder

        return SentenceEncoder.check_available()

    def per_item(self, preds, refs):
        from ctbench.evaluation.embeddings import cosine_pairs

        enc = self.encoder()
        return {"sbert_cosine": cosine_pairs(enc.encode(preds), enc.encode(refs))}

    def corpus(self, preds, refs):
        # float32 mean, as torch computes it in the published pipeline
        values = self.per_item(preds, refs)["sbert_cosine"]
        return {"sbert_cosine": float(np.mean(values, dtype=np.float32)) if len(values) else float("nan")}


class AlignScoreMetric(TextMetric):
    """AlignScore (Zha et al. 2023, nli_sp mode): factual consistency of the prediction with the reference.

    Runs in its own venv (`bench metrics setup alignscore`; its PyPI package pins protobuf<=3.20.3
    and numpy<2, against ctbench's protobuf 7) through a JSON-lines worker, with the checkpoint
    and its RoBERTa from a weights folder (`--alignscore-weights DIR` or $CTBENCH_ALIGNSCORE_WEIGHTS;
    `bench metrics fetch alignscore`). See ctbench/evaluation/alignscore/. Without the venv or the
    weights it is reported unavailable, with the reason and the command that fixes it.
    """

    def __init__(self, weights: str | None = None, model: str | None = None, venv: str | None = None,
                 device: str = "cpu", scorer=None):
        if scorer is None:
            from ctbench.evaluation.alignscore.client import AlignScoreScorer

            scorer = AlignScoreScorer(weights=weights, model=model, venv=venv, device=device)
        self.scorer = scorer

    def unavailable(self) -> str | None:
        return self.scorer.unavailable()

    def per_item(self, preds, refs):
        return {"alignscore": self.scorer.score(list(refs), list(preds))}


def _missing(module: str) -> str | None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"python package {module!r} is not installed"
    return None


ALL_TEXT_METRICS = TEXT_METRICS.in_order()  # bleu, meteor, rouge, sbert, alignscore
OFFLINE_TEXT_METRICS = TEXT_METRICS.offline()  # all but alignscore
