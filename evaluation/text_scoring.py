"""Text metrics over a run: per server, and per category / question type, with clustered CIs."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ctbench.datasets.qa_items import Dataset
from ctbench.evaluation import progress
from ctbench.evaluation.grouping import groups as question_groups
from ctbench.evaluation.intervals import clustered_mean_ci
from ctbench.evaluation.ledger import ServerPredictions
from ctbench.evaluation.summary_row import SummaryRow
from ctbench.evaluation.text_metrics import TextMetric, TextProtocol


def text_metric_rows(
    dataset: Dataset,
    predictions: Sequence[ServerPredictions],
    instances: Sequence[TextMetric],
    protocol: TextProtocol = TextProtocol(),  # noqa: B008 - a frozen dataclass of settings
) -> tuple[list[SummaryRow], dict[tuple[str, str], dict[str, float]]]:
    """Rows like scoring.aggregate's, plus per-item values {(server, question_id): {metric: v}}."""
    rows: list[SummaryRow] = []
    per_item: dict[tuple[str, str], dict[str, float]] = {}
    for preds in predictions:
        scored, texts, refs = [], [], []
        status = {}
        for item in dataset.items:
            rec = preds.records.get(item.question_id)
            prediction = rec.prediction if rec is not None and rec.status == "ok" else None
            status[item.question_id] = "ok" if prediction is not None else ("missing" if rec is None else "error")
            text = prediction if prediction is not None else ""
            if protocol.skip_empty and not text.strip():
                continue
            scored.append(item)
            texts.append(protocol.prepare(text))
            refs.append(protocol.prepare(item.answer))
        groups = _groups(dataset, scored)
        for metric in instances:
            progress.report(f"{preds.server} text metrics", instances.index(metric), len(instances))
            reason = metric.unavailable()
            if reason:
                for name in metric.outputs:
                    rows.append(_row(preds.server, "all", "all", name, dataset.items, status,
                                     len(scored), None, note=f"unavailable: {reason}"))
                continue
            if metric.corpus_level:
                for kind, group, members, idx in groups:
                    totals = metric.corpus([texts[i] for i in idx], [refs[i] for i in idx]) if idx else {}
                    for name in metric.outputs:
                        rows.append(_row(preds.server, kind, group, name, members, status,
                                         len(idx), totals.get(name), note="corpus-level; no CI"))
                continue
            values = metric.per_item(texts, refs)
            for name, arr in values.items():
                for item, v in zip(scored, arr):
                    per_item.setdefault((preds.server, item.question_id), {})[name] = float(v)
                dtype = getattr(metric, "mean_dtype", np.float64)
                for kind, group, members, idx in groups:
                    sub = np.asarray(arr)[idx] if idx else np.zeros(0)
                    ci = clustered_mean_ci([float(x) for x in sub], [scored[i].case_id for i in idx])
                    value = float(np.mean(sub, dtype=dtype)) if len(sub) else None
                    rows.append(_row(preds.server, kind, group, name, members, status, len(idx),
                                     value, ci.low, ci.high))
    return rows, per_item


def _groups(dataset: Dataset, scored) -> list[tuple[str, str, list, list[int]]]:
    """(kind, group, all dataset items in the group, indices into `scored`)."""
    position = {item.question_id: i for i, item in enumerate(scored)}
    return [(kind, group, members, [position[it.question_id] for it in members if it.question_id in position])
            for kind, group, members in question_groups(dataset.items)]


def _row(server, kind, group, name, members, status, scored, value, low=None, high=None, note="") -> SummaryRow:
    counts = [status[it.question_id] for it in members]
    clean = lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else x  # noqa: E731
    return SummaryRow.figure(
        server, kind, group, name, clean(value), ci_low=clean(low), ci_high=clean(high), n=len(members),
        answered=counts.count("ok"), errors=counts.count("error"), missing=counts.count("missing"),
        scored=scored, n_volumes=len({it.case_id for it in members}), note=note,
    )
