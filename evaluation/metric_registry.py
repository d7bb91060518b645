"""Every metric a summary reports, declared once: its name, direction, whether it runs offline,
its scale and its protocol text (what summary.json's `protocol` says about how it is computed).

The scorers compute; this module describes. `scoring.PROTOCOL` and the text-metric protocol in
summary.json are read from these declarations.
"""
from __future__ import annotations

from dataclasses import dataclass

from ctbench.registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    offline: bool  # False: needs weights or a venv set up first (`bench metrics setup`)
    scale: str  # proportion | mean in [0, 1] | 0-100
    protocol: str


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(name: str, *, scale: str, protocol: str, higher_is_better: bool = True,
                    offline: bool = True) -> MetricSpec:
    spec = MetricSpec(name, higher_is_better, offline, scale, protocol)
    METRICS.register(name)(spec)
    return spec


register_metric("exact_match", scale="proportion", protocol=(
    "lower-case (NFKC), punctuation to spaces, drop articles a/an/the, collapse whitespace"))
register_metric("accuracy", scale="proportion", protocol=(
    "option match where the question declares options (and its answer is one of them); for measured "
    "numbers (numeric_scoring.py) a relative error within 10%; else normalized exact match"))
register_metric("option_match", scale="proportion", protocol=(
    "prediction picks exactly one option (equal after normalization, a bare option letter, "
    "or the only option mentioned as a whole phrase); none or several = wrong"))
register_metric("numeric_accuracy", scale="proportion", protocol="relative error within 10% of the reference")
register_metric("mra", scale="mean in [0, 1]", protocol=(
    "mean relative accuracy over thresholds 0.50 ... 0.95 (VSI-Bench)"))
register_metric("jury_accuracy", scale="proportion", protocol="verdicts joined by question identity")
register_metric("jury_accuracy_published", scale="proportion", protocol=(
    "as published: verdict files zipped by position, truncated to the shortest"))
register_metric("bleu", scale="0-100", protocol="sacrebleu corpus BLEU, 13a tokenizer")
register_metric("meteor", scale="mean in [0, 1]", protocol="NLTK meteor_score on whitespace tokens, WordNet 3.0, mean")
for _rouge in ("rouge1_f", "rouge2_f", "rougeL_f"):
    register_metric(_rouge, scale="mean in [0, 1]", protocol="rouge-score F1 with Porter stemmer, mean")
register_metric("sbert_cosine", scale="mean in [-1, 1]", protocol="all-MiniLM-L6-v2 cosine, float32 mean")
register_metric("alignscore", scale="mean in [0, 1]", offline=False, protocol=(
    "AlignScore nli_sp, reference as context, prediction as claim"))


def protocol_of(name: str) -> str:
    return METRICS.get(name).protocol
