"""Every metric a summary reports, declared once: its name, direction, whether it runs offline,
its scale, its protocol text (what summary.json's `protocol` says about how it is computed), the
report's column header for it, and, for a text metric's figures, which text metric computes them.

The scorers compute; this module describes. Everything that describes a metric elsewhere reads
it from here: a summary row's direction (`SummaryRow`), summary.json's protocol texts
(`scoring.py`), the jury's notes (`jury_scoring.py`), the numeric tolerance and MRA thresholds
(`numeric_scoring.py`), the report's columns and scales (`report_tables.py`), the terminal's
text-metric table (`tables.py`), and the text metrics `bench score --metrics` can run
(`TEXT_METRICS`, a view of these declarations; `text_metrics.py` holds their code).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ctbench.errors import UnknownName
from ctbench.registry import Registry, import_target

#: Scales a metric's values are on; the report shows each as a percentage but "0-100".
SCALES = ("proportion", "mean in [0, 1]", "mean in [-1, 1]", "0-100")
#: The terminal tables a metric's overall figure appears in (`tables.py`, `numeric_report.py`).
TABLES = ("accuracy", "numeric", "text")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    offline: bool  # False: needs weights or a venv set up first (`bench metrics setup`)
    scale: str  # one of SCALES
    protocol: str
    label: str  # the report's column header
    table: str = "accuracy"  # one of TABLES
    leaderboard: bool = False  # a column of the report's leaderboard, beside the headline
    text_metric: str = ""  # the text metric (`bench score --metrics NAME`) that computes it
    implementation: str = ""  # that text metric's class, "package.module:Class"

    @property
    def report_factor(self) -> float:
        """What puts a value on the report's 0-100 scale."""
        return 1.0 if self.scale == "0-100" else 100.0


METRICS: Registry[MetricSpec] = Registry("metric")
_DECLARED: list[MetricSpec] = []  # declaration order: the order summaries and tables list them in


def register_metric(name: str, *, scale: str, protocol: str, label: str, higher_is_better: bool = True,
                    offline: bool = True, table: str = "accuracy", leaderboard: bool = False,
                    text_metric: str = "", implementation: str = "") -> MetricSpec:
    if scale not in SCALES or table not in TABLES:
        raise ValueError(f"metric {name!r}: scale {scale!r} / table {table!r} is not one of {SCALES} / {TABLES}")
    if bool(text_metric) != bool(implementation):
        raise ValueError(f"metric {name!r}: a text metric's figure names both the text metric and its class")
    for other in _DECLARED:
        if text_metric and other.text_metric == text_metric and other.implementation != implementation:
            raise ValueError(f"text metric {text_metric!r} is implemented by two classes")
    spec = MetricSpec(name, higher_is_better, offline, scale, protocol, label, table, leaderboard,
                      text_metric, implementation)
    METRICS.register(name)(spec)
    _DECLARED.append(spec)
    return spec


def declared() -> list[MetricSpec]:
    """Every declaration, in the order it was made."""
    return list(_DECLARED)


def protocol_of(name: str) -> str:
    return METRICS.get(name).protocol


class TextMetricView:
    """The text metrics `bench score --metrics NAME` can run, read from the declarations of the
    figures each computes: a name, its class (imported on `get`), its figures (`outputs`)."""

    def names(self) -> list[str]:
        return sorted(self.in_order())

    def in_order(self) -> tuple[str, ...]:
        """Every text metric, in declaration order (the order `--metrics all` runs them in)."""
        return tuple(dict.fromkeys(s.text_metric for s in _DECLARED if s.text_metric))

    def offline(self) -> tuple[str, ...]:
        """The text metrics all of whose figures run offline (`--metrics offline`)."""
        return tuple(m for m in self.in_order() if all(s.offline for s in self._specs(m)))

    def outputs(self, name: str) -> tuple[str, ...]:
        """The summary metrics text metric `name` produces (ROUGE gives three)."""
        return tuple(s.name for s in self._specs(name))

    def get(self, name: str) -> type:
        specs = self._specs(name)
        cls = import_target(specs[0].implementation)
        if not isinstance(cls, type):
            raise UnknownName(f"text metric {name!r}: {specs[0].implementation!r} is not a class")
        return cls

    def name_of(self, cls: type) -> str | None:
        """The text metric a class implements, itself or through a class it derives from (None if
        none is declared)."""
        for klass in cls.__mro__:
            where = f"{klass.__module__}:{klass.__qualname__}"
            found = next((s.text_metric for s in _DECLARED if s.implementation == where), None)
            if found is not None:
                return found
        return None

    def _specs(self, name: str) -> list[MetricSpec]:
        specs = [s for s in _DECLARED if s.text_metric == name]
        if not specs:
            raise UnknownName(f"Unknown metric {name!r}. Available: {', '.join(self.names()) or '(none)'}")
        return specs

    def __contains__(self, name: object) -> bool:
        return name in self.in_order()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


TEXT_METRICS = TextMetricView()

#: Measured numbers (`numeric_scoring.py`): the relative tolerance and MRA's thresholds.
NUMERIC_TOLERANCE = 0.10
MRA_THRESHOLDS = tuple(round(0.50 + 0.05 * i, 2) for i in range(10))  # 0.50 ... 0.95
_TEXT = "ctbench.evaluation.text_metrics"

register_metric("exact_match", scale="proportion", label="exact match", protocol=(
    "lower-case (NFKC), punctuation to spaces, drop articles a/an/the, collapse whitespace"))
register_metric("accuracy", scale="proportion", label="accuracy", protocol=(
    "option match where the question declares options (and its answer is one of them); for measured "
    f"numbers (numeric_scoring.py) a relative error within {100 * NUMERIC_TOLERANCE:g}%; else normalized exact match"))
register_metric("option_match", scale="proportion", label="option match", protocol=(
    "prediction picks exactly one option (equal after normalization, a bare option letter, "
    "or the only option mentioned as a whole phrase); none or several = wrong"))
register_metric("numeric_accuracy", scale="proportion", label="within tolerance", table="numeric",
                protocol=f"relative error within {100 * NUMERIC_TOLERANCE:g}% of the reference")
register_metric("mra", scale="mean in [0, 1]", label="MRA", table="numeric", protocol=(
    f"mean relative accuracy over thresholds {MRA_THRESHOLDS[0]:.2f} ... {MRA_THRESHOLDS[-1]:.2f} (VSI-Bench)"))
register_metric("jury_accuracy", scale="proportion", label="jury accuracy (aligned)", table="text",
                protocol="verdicts joined by question identity")
register_metric("jury_accuracy_published", scale="proportion", label="jury % (as published)", table="text",
                leaderboard=True, protocol="as published: verdict files zipped by position, truncated to the shortest")
register_metric("bleu", scale="0-100", label="BLEU (0–100)", table="text", leaderboard=True,
                text_metric="bleu", implementation=f"{_TEXT}:Bleu",
                protocol="sacrebleu corpus BLEU, 13a tokenizer")
register_metric("meteor", scale="mean in [0, 1]", label="METEOR ×100", table="text", leaderboard=True,
                text_metric="meteor", implementation=f"{_TEXT}:Meteor",
                protocol="NLTK meteor_score on whitespace tokens, WordNet 3.0, mean")
for _rouge, _label in (("rouge1_f", "ROUGE-1 F1 ×100"), ("rouge2_f", "ROUGE-2 F1 ×100"), ("rougeL_f", "ROUGE-L F1 ×100")):
    register_metric(_rouge, scale="mean in [0, 1]", label=_label, table="text", leaderboard=_rouge == "rougeL_f",
                    text_metric="rouge", implementation=f"{_TEXT}:Rouge",
                    protocol="rouge-score F1 with Porter stemmer, mean")
register_metric("sbert_cosine", scale="mean in [-1, 1]", label="SBERT cosine ×100", table="text", leaderboard=True,
                text_metric="sbert", implementation=f"{_TEXT}:SbertCosine",
                protocol="all-MiniLM-L6-v2 cosine, float32 mean")
register_metric("alignscore", scale="mean in [0, 1]", label="AlignScore ×100", table="text", leaderboard=True,
                offline=False, text_metric="alignscore", implementation=f"{_TEXT}:AlignScoreMetric",
                protocol="AlignScore nli_sp, reference as context, prediction as claim")
