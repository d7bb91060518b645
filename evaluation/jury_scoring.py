"""Jury accuracy rows for a scored run: identity-aligned (ours) and as published (positional)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ctbench.datasets.qa_items import Dataset
from ctbench.evaluation.categories import canonical_categories
from ctbench.evaluation.intervals import clustered_proportion_ci
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


def jury_rows(
    dataset: Dataset,
    predictions: Sequence[ServerPredictions],
    verdict_files: dict[str, dict[str, Path]],
    threshold: float = THRESHOLD,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, dict[str, bool]]]:
    """(summary rows, JSON-ready jury section, server -> question_id -> jury-correct)."""
    rows: list[dict[str, Any]] = []
    section: dict[str, Any] = {"threshold": threshold, "servers": {}}
    correct_by_server: dict[str, dict[str, bool]] = {}
    items = dataset.items
    groups = _groups(dataset)
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
            ci = clustered_proportion_ci(values, [it.case_id for it in members])
            rows.append({
                "server": preds.server, "group_kind": kind, "group": group, "metric": "jury_accuracy",
                "higher_is_better": True, "value": ci.estimate, "ci_low": ci.low, "ci_high": ci.high,
                "n": len(members), "answered": None, "errors": None, "missing": None,
                "correct": int(sum(values)), "scored": sum(jury[it.question_id].decided for it in members),
                "n_volumes": ci.n_clusters, "note": "verdicts joined by question identity",
            })
            if kind == "question_type" or not positional:
                continue
            pub = [published.by_id.get(it.question_id) for it in members]
            if kind == "all":
                value, scored = published.accuracy, published.count
            else:  # the published per-category table divides by every question in the category
                value, scored = sum(m is not None and m >= threshold for m in pub) / len(members), sum(m is not None for m in pub)
            rows.append({
                "server": preds.server, "group_kind": kind, "group": group, "metric": "jury_accuracy_published",
                "higher_is_better": True, "value": value, "ci_low": None, "ci_high": None,
                "n": len(members), "answered": None, "errors": None, "missing": None,
                "correct": None, "scored": scored, "n_volumes": None,
                "note": "as published: verdict files zipped by position, truncated to the shortest",
            })
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


def _groups(dataset: Dataset):
    out = [("all", "all", list(dataset.items))]
    members: dict[tuple[str, str], list] = {}
    for item in dataset.items:
        for c in canonical_categories(item.categories):
            members.setdefault(("category", c), []).append(item)
        if item.question_type:
            members.setdefault(("question_type", item.question_type), []).append(item)
    out += [(k[0], k[1], v) for k, v in sorted(members.items())]
    return out
