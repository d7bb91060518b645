"""Jury accuracy rows for a scored run: identity-aligned (ours) and as published (positional).
Each row's note is its metric's protocol text (`metric_registry.py`)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctbench.datasets.qa_items import Dataset
from ctbench.evaluation.grouping import groups as question_groups
from ctbench.evaluation.jury import (
    THRESHOLD,
    Alignment,
    agreement,
    aligned_jury,
    check_alignment,
    load_verdict_rows,
    published_jury,
)
from ctbench.evaluation.ledger import ServerPredictions
from ctbench.evaluation.metric_registry import protocol_of
from ctbench.evaluation.summary_row import SummaryRow


def jury_rows(
    dataset: Dataset,
    predictions: Sequence[ServerPredictions],
    verdict_files: dict[str, dict[str, Path]],
    threshold: float = THRESHOLD,
) -> tuple[list[SummaryRow], dict[str, Any], dict[str, dict[str, bool]]]:
    """(summary rows, JSON-ready jury section, server -> question_id -> jury-correct)."""
    rows: list[SummaryRow] = []
    section: dict[str, Any] = {"threshold": threshold, "servers": {}}
    correct_by_server: dict[str, dict[str, bool]] = {}
    items = dataset.items
    groups = question_groups(dataset.items)
    for preds in predictions:
        files = verdict_files.get(preds.server)
        if not files:
            continue
        alignments: dict[str, Alignment] = {
            judge: check_alignment(items, preds, load_verdict_rows(path), judge, source=path.name)
            for judge, path in sorted(files.items())
        }
        jury = aligned_jury(items, alignments, threshold)
        published = published_jury(items, alignments, threshold)
        positional = any(not a.keyed for a in alignments.values())  # published-format files
        correct_by_server[preds.server] = {qid: j.correct for qid, j in jury.items()}
        for kind, group, members in groups:
            values = [float(jury[it.question_id].correct) for it in members]
            rows.append(SummaryRow.proportion(
                preds.server, kind, group, "jury_accuracy", values, [it.case_id for it in members],
                scored=sum(jury[it.question_id].decided for it in members),
                note=protocol_of("jury_accuracy")))
            if kind == "question_type" or not positional:
                continue
            pub = [published.by_id.get(it.question_id) for it in members]
            if kind == "all":
                value, scored = published.accuracy, published.count
            else:  # the published per-category table divides by every question in the category
                value, scored = sum(m is not None and m >= threshold for m in pub) / len(members), sum(m is not None for m in pub)
            rows.append(SummaryRow.figure(preds.server, kind, group, "jury_accuracy_published", value,
                                          n=len(members), scored=scored, note=protocol_of("jury_accuracy_published")))
        misaligned = [a.to_json() for a in alignments.values() if not a.positional_ok]
        section["servers"][preds.server] = {
            "alignment": [a.to_json() for a in alignments.values()],
            "misaligned_files": [m["source"] for m in misaligned],
            "published_count": published.count if positional else None,
            "published_accuracy": published.accuracy if positional else None,
            "aligned_accuracy": sum(correct_by_server[preds.server].values()) / len(items),
            "agreement": agreement(jury),
            # judge -> the prompts its effective verdicts came from (ctbench ledgers record them)
            "prompts": {judge: sorted({str(r["prompt"]) for r in a.rows if isinstance(r, dict) and r.get("prompt")})
                        for judge, a in alignments.items()},
        }
    return rows, section, correct_by_server

