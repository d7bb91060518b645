"""Scoring of a run folder: accuracy, exact match and option match, with clustered intervals.

Per-item scoring (`score_item`) is separate from aggregation (`aggregate`). Every question of the
run's dataset is in every denominator: a question with no prediction ("missing") or a failed one
("error") counts as wrong and is reported in the counts, never dropped.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ctbench.datasets.qa_items import Dataset, QAItem, load_dataset
from ctbench.errors import DatasetError
from ctbench.evaluation.categories import canonical_categories
from ctbench.evaluation.compare import correctness_matrix, paired_comparisons
from ctbench.evaluation.grouping import groups
from ctbench.evaluation.jury import find_verdict_files
from ctbench.evaluation.ledger import (
    LedgerIssues,
    PredictionRecord,
    ServerPredictions,
    load_run_dataset,
    read_ledger,
    run_ledgers,
)
from ctbench.evaluation.metric_registry import protocol_of
from ctbench.evaluation.normalize import exact_match, match_option
from ctbench.evaluation.numeric_scoring import is_numeric, numeric_rows, score_numeric
from ctbench.evaluation.summary_row import SummaryRow, write_summary_csv
from ctbench.evaluation.text_metrics import TextMetric, TextProtocol, metrics

SUMMARY_FIELDS = SummaryRow.FIELDS  # summary.csv's columns


@dataclass(frozen=True)
class ItemScore:
    server: str
    question_id: str
    case_id: str
    status: str  # ok | error | missing
    correct: bool  # the headline per-item verdict: option match if options declared, else exact
    exact: bool
    option_index: int | None  # the option the prediction picked (None: none/ambiguous/no options)
    has_options: bool
    categories: tuple[str, ...]
    question_type: str
    prediction: str | None = None  # the effective prediction (None: missing or failed)
    error_type: str = ""  # the ledger's error type for failed items
    error_message: str = ""  # and its message


@dataclass(frozen=True)
class ScoreResult:
    dataset_name: str
    n_questions: int
    servers: list[str]
    items: list[ItemScore]
    rows: list[SummaryRow]
    issues: dict[str, LedgerIssues] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    text_values: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # jury, comparisons, ... (JSON-ready)
    headline: dict[str, dict[str, dict[str, bool]]] = field(default_factory=dict)  # metric -> server -> qid -> ok
    answer_words: dict[str, list[int]] = field(default_factory=dict)  # server (and "reference") -> word counts
    subset: dict[str, Any] | None = None  # run.json's subset record when the run asked part of its dataset
    attempts: list[dict[str, Any]] = field(default_factory=list)  # run.json's attempts (bench report shows them)
    manifest: dict[str, Any] = field(default_factory=dict)  # run.json's dataset manifest ({} without run.json)
    volume_headers: dict[str, Any] = field(default_factory=dict)  # run.json's NIfTI header check (conflicted volumes)
    questions: dict[str, QAItem] = field(default_factory=dict)  # question id -> the question, in dataset order

    @property
    def subset_label(self) -> str:
        """'subset: N of M questions', or '' when the run asked its whole dataset."""
        return self.subset.get("label", "") if self.subset else ""

    def value(self, server: str, metric: str, kind: str = "all", group: str = "all") -> SummaryRow:
        for row in self.rows:
            if (row["server"], row["group_kind"], row["group"], row["metric"]) == (server, kind, group, metric):
                return row
        raise KeyError(f"no {metric!r} row for server {server!r}, {kind} {group!r}")

    def overall(self, server: str, metric: str = "accuracy") -> SummaryRow:
        for row in self.rows:
            if row["server"] == server and row["group_kind"] == "all" and row["metric"] == metric:
                return row
        raise KeyError(f"no overall {metric!r} row for server {server!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset_name,
            "n_questions": self.n_questions,
            "subset": self.subset,
            "servers": self.servers,
            "sources": self.sources,
            "protocol": {**PROTOCOL, **self.protocol},
            "ledger_issues": {s: i.to_json() for s, i in self.issues.items()},
            "rows": [row.to_json() for row in self.rows],
            **self.extra,
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write summary.csv and summary.json into `out_dir`; returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = out / "summary.csv", out / "summary.json"
        write_summary_csv(self.rows, csv_path)
        json_path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        written = [csv_path, json_path]
        for metric, per_server in self.headline.items():
            path = out / f"correctness_{metric}.csv"  # the question x server matrix, 1 = correct
            servers = [s for s in self.servers if s in per_server]
            qids = list(dict.fromkeys(q for s in servers for q in per_server[s]))
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["question_id", *servers])
                for q in qids:
                    writer.writerow([q, *[int(per_server[s].get(q, False)) for s in servers]])
            written.append(path)
        return written


PROTOCOL = {
    "normalization": protocol_of("exact_match"),
    "accuracy": protocol_of("accuracy"),
    "option_match": protocol_of("option_match"),
    "denominator": "every question of the dataset; missing and error predictions count as wrong",
    "interval": "95% Wilson interval at the cluster-robust effective sample size, clusters = volumes (case_id)",
}


def score_item(item: QAItem, record: PredictionRecord | None, server: str) -> ItemScore:
    cats = canonical_categories(item.categories)
    if record is None or record.status != "ok" or record.prediction is None:
        status = "missing" if record is None else "error"
        error = record.error if record is not None else None
        return ItemScore(server, item.question_id, item.case_id, status, False, False, None,
                         bool(item.options), cats, item.question_type,
                         error_type=error.type if error is not None else "",
                         error_message=error.message if error is not None else "")
    exact = exact_match(record.prediction, item.answer)
    option = match_option(record.prediction, item.options) if item.options else None
    answer_index = match_option(item.answer, item.options) if item.options else None
    if answer_index is not None:
        correct = option is not None and option == answer_index
    elif is_numeric(item):  # a measured number: within the tolerance (numeric_scoring.py)
        correct = score_numeric(record.prediction, item.answer).within_tolerance
    else:  # no options, or an answer that is none of them: fall back to exact match
        correct = exact
    return ItemScore(server, item.question_id, item.case_id, "ok", correct, exact, option,
                     bool(item.options), cats, item.question_type, prediction=record.prediction)


def score_predictions(
    dataset: Dataset,
    predictions: Sequence[ServerPredictions],
    text_metrics: Sequence[str | TextMetric] = (),
    protocol: TextProtocol = TextProtocol(),  # noqa: B008 - a frozen dataclass of settings
    verdicts: dict[str, dict[str, Path]] | None = None,
) -> ScoreResult:
    """Score loaded predictions: exact/option match always, plus the named text metrics and,
    where verdict files are given (server -> judge -> path), the jury."""
    items: list[ItemScore] = []
    for preds in predictions:
        for item in dataset.items:
            items.append(score_item(item, preds.records.get(item.question_id), preds.server))
    servers = [p.server for p in predictions]
    rows = aggregate(items, servers)
    text_values: dict[tuple[str, str], dict[str, float]] = {}
    if text_metrics:
        from ctbench.evaluation.text_scoring import text_metric_rows

        instances = [metrics.get(m)() if isinstance(m, str) else m for m in text_metrics]
        text_rows, text_values = text_metric_rows(dataset, predictions, instances, protocol)
        rows += text_rows
    extra: dict[str, Any] = {}
    questions = {it.question_id: it for it in dataset.items}
    if any(is_numeric(q) for q in dataset.items):
        n_rows, extra["numeric"] = numeric_rows(items, questions, servers)
        rows += n_rows
    per_item_correct = {s: {it.question_id: it.correct for it in items if it.server == s} for s in servers}
    headline = {"accuracy": per_item_correct}
    if verdicts:
        from ctbench.evaluation.jury_scoring import jury_rows

        j_rows, section, jury_correct = jury_rows(dataset, predictions, verdicts)
        rows += j_rows
        extra["jury"] = section
        if jury_correct:
            headline["jury_accuracy"] = jury_correct
    clusters = {it.question_id: it.case_id for it in dataset.items}
    extra["comparisons"] = {
        name: paired_comparisons(correctness_matrix(per), clusters, [s for s in servers if s in per])
        for name, per in headline.items()
    }
    subset = dataset.extra.get("subset")
    subset_label = subset.get("label", "") if subset else ""
    if subset_label:
        rows = [row.with_note(subset_label) for row in rows]
    answer_words = {"reference": [len(it.answer.split()) for it in dataset.items]}
    for preds in predictions:
        answer_words[preds.server] = [len(r.prediction.split()) for r in preds.records.values()
                                      if r.status == "ok" and r.prediction is not None]
    result = ScoreResult(
        dataset_name=dataset.name,
        n_questions=len(dataset.items),
        servers=servers,
        items=items,
        rows=rows,
        extra=extra,
        issues={p.server: p.issues for p in predictions},
        sources={p.server: p.source for p in predictions},
        text_values=text_values,
        protocol={"text": {"lowercase": protocol.lowercase, "skip_empty": protocol.skip_empty,
                           "bleu": protocol_of("bleu"), "meteor": protocol_of("meteor"),
                           "rouge": protocol_of("rouge1_f"), "sbert": protocol_of("sbert_cosine")}}
        if text_metrics else {},
        headline=headline,
        answer_words=answer_words,
        subset=subset,
        attempts=list(dataset.extra.get("attempts", [])),
        manifest=dict(dataset.extra.get("manifest", {})),
        volume_headers=dict(dataset.extra.get("volume_headers", {})),
        questions=questions,
    )
    return result


def score_run(
    run_dir: str | Path | None = None,
    prediction_files: Iterable[str | Path] = (),
    dataset: str | Path | Dataset | None = None,
    text_metrics: Sequence[str | TextMetric] = (),
    protocol: TextProtocol = TextProtocol(),  # noqa: B008 - a frozen dataclass of settings
    verdicts_dir: str | Path | None = None,
) -> ScoreResult:
    """Score every ledger in RUN/predictions/ plus any extra prediction files, and the run's
    volume controls (RUN/controls/, `control_scores.py`) when it has any.

    The denominator is RUN/dataset.jsonl unless `dataset` is given (needed when there is no
    run folder). Extra files take their server name from the file name (`m3d.jsonl` -> m3d).
    """
    if isinstance(dataset, Dataset):
        ds = dataset
    elif dataset is not None:
        ds = load_dataset(dataset)
    elif run_dir is not None:
        ds = load_run_dataset(run_dir)
    else:
        raise DatasetError("nothing to score against: give a run folder or a dataset")
    files = list(run_ledgers(run_dir)) if run_dir is not None else []
    files += [Path(p) for p in prediction_files]
    if not files:
        raise DatasetError("no predictions to score (RUN/predictions/*.jsonl is empty and no files given)", run_dir)
    loaded: list[ServerPredictions] = []
    for path in files:
        preds = read_ledger(path, ds)
        if any(p.server == preds.server for p in loaded):
            raise DatasetError(f"two prediction files for server {preds.server!r}", path)
        loaded.append(preds)
    if verdicts_dir is None and run_dir is not None and (Path(run_dir) / "judges").is_dir():
        verdicts_dir = Path(run_dir) / "judges"
    verdicts = find_verdict_files(verdicts_dir) if verdicts_dir is not None else None
    result = score_predictions(ds, loaded, text_metrics, protocol, verdicts)
    if run_dir is not None:
        from ctbench.evaluation.control_scores import score_controls

        controls = score_controls(run_dir, result, ds)
        if controls is not None:
            result = replace(result, extra={**result.extra, "controls": controls})
    return result


# --- aggregation ---------------------------------------------------------------------------
def item_groups(items: list[ItemScore]) -> list[tuple[str, str, list[ItemScore]]]:
    """`grouping.groups` over scored items (their categories are canonical already)."""
    return groups(items, categories=lambda it: it.categories)


def _row(server: str, kind: str, group: str, metric: str, items: list[ItemScore], values: Sequence[float]) -> SummaryRow:
    return SummaryRow.proportion(
        server, kind, group, metric, values, [it.case_id for it in items],
        answered=sum(it.status == "ok" for it in items),
        errors=sum(it.status == "error" for it in items),
        missing=sum(it.status == "missing" for it in items),
    )


def aggregate(items: list[ItemScore], servers: Sequence[str]) -> list[SummaryRow]:
    """Rows of (server, group, metric) with value, 95% clustered CI and counts."""
    rows: list[SummaryRow] = []
    for server in servers:
        mine = [it for it in items if it.server == server]
        for kind, group, members in item_groups(mine):
            rows.append(_row(server, kind, group, "accuracy", members, [it.correct for it in members]))
            rows.append(_row(server, kind, group, "exact_match", members, [it.exact for it in members]))
            with_options = [it for it in members if it.has_options]
            if with_options:
                rows.append(_row(server, kind, group, "option_match", with_options,
                                 [it.correct for it in with_options]))
    return rows
