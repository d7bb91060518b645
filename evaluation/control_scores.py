"""Volume reliance: each model's accuracy on the real volumes against each volume control.

A run with `--control` keeps each control's questions and answers under RUN/controls/<control>/
(`runners/controls/`). Per model, control and category (and overall) this pairs every question
with its real-volume verdict and reports both accuracies, their difference (real − control) with
a cluster-robust 95% interval (clusters = volumes) and McNemar's exact p. Two summaries:

- reliance = real − shuffled accuracy: what the model's score owes to the volume it was asked
  about; about 0 for a model that ignores the image.
- mirror consistency: of the questions whose expected answer names one side, the fraction
  whose answer flips (names the other side) when the volume is mirrored; and of those whose
  expected answer does not change, the fraction whose answer stays (the same option, or the
  same normalised text). A model that reads the image flips; one that ignores it stays.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctbench.datasets.qa_items import Dataset, QAItem, load_dataset
from ctbench.evaluation.compare import mcnemar_exact
from ctbench.evaluation.grouping import groups
from ctbench.evaluation.intervals import clustered_proportion_ci, paired_difference_ci
from ctbench.evaluation.ledger import PredictionsError, read_ledger
from ctbench.evaluation.normalize import exact_match, match_option
from ctbench.evaluation.scoring import ItemScore, ScoreResult, score_item
from ctbench.runners.controls.laterality import flips_under_mirror, laterality_words, swap_words

METHOD = {
    "difference": "real − control accuracy over the questions asked both ways, 95% cluster-robust (by volume) normal interval "
                  "(when every pair differs alike, ± the Wilson bound of 0 of the volume count); "
                  "McNemar's exact test on the discordant pairs",
    "reliance": "real − shuffled accuracy (each question asked of another patient's volume of the same size class)",
    "mirror_flip": "of the questions whose expected answer names one side, the fraction whose answer on the mirrored "
                   "volume names the other side(s) of the answer on the real volume (both answered)",
    "mirror_stay": "of the mirrored questions whose expected answer does not change, the fraction answered the same "
                   "(same option, or the same normalised text)",
}


def control_datasets(run_dir: str | Path) -> dict[str, Dataset]:
    """control name -> its questions (RUN/controls/<name>/dataset.jsonl), in name order."""
    root = Path(run_dir) / "controls"
    if not root.is_dir():
        return {}
    return {path.parent.name: load_dataset(path) for path in sorted(root.glob("*/dataset.jsonl"))}


def score_controls(run_dir: str | Path, real: ScoreResult, questions: Dataset) -> dict[str, Any] | None:
    """The `controls` section of summary.json, or None when the run had no controls.
    `real` is the run's score, `questions` its dataset (the real expected answers)."""
    datasets = control_datasets(run_dir)
    if not datasets:
        return None
    real_items = {(it.server, it.question_id): it for it in real.items}
    by_id = {item.question_id: item for item in questions.items}
    section: dict[str, Any] = {"controls": {}, "rows": [], "reliance": {}, "mirror_consistency": {}, "method": METHOD,
                               "ledger_issues": {}}
    for name, dataset in datasets.items():
        folder = Path(run_dir) / "controls" / name
        section["controls"][name] = _control_record(folder)
        for server in real.servers:
            ledger = folder / "predictions" / f"{server}.jsonl"
            if not ledger.is_file():
                continue
            try:
                predictions = read_ledger(ledger, dataset, server)
            except PredictionsError as exc:  # that ledger is unusable; the other controls and servers still count
                section["ledger_issues"][f"{server}@{name}"] = str(exc)
                continue
            issues = {k: v for k, v in predictions.issues.to_json().items() if isinstance(v, int) and v}
            if issues:
                section["ledger_issues"][f"{server}@{name}"] = issues
            pairs = [(real_items[(server, item.question_id)], score_item(item, predictions.records.get(item.question_id), server), item)
                     for item in dataset.items if (server, item.question_id) in real_items]
            section["rows"] += _rows(server, name, pairs)
            if name == "shuffle":
                overall = next(r for r in section["rows"] if (r["server"], r["control"], r["group_kind"]) == (server, name, "all"))
                section["reliance"][server] = {k: overall[k] for k in ("difference", "ci_low", "ci_high", "n", "n_volumes")}
            if name == "mirror-lr":
                section["mirror_consistency"][server] = mirror_consistency(pairs, by_id)
    return section


def _control_record(folder: Path) -> dict[str, Any]:
    try:
        record = json.loads((folder / "control.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in record.items() if k != "assignment"} if isinstance(record, dict) else {}


def _rows(server: str, control: str, pairs: list[tuple[ItemScore, ItemScore, QAItem]]) -> list[dict[str, Any]]:
    return [_row(server, control, kind, group, members)
            for kind, group, members in groups(pairs, categories=lambda pair: pair[0].categories,
                                               question_type=lambda pair: "")]


def _row(server: str, control: str, kind: str, group: str, pairs: Sequence[tuple[ItemScore, ItemScore, QAItem]]) -> dict[str, Any]:
    clusters = [real.case_id for real, _, _ in pairs]
    real_ci = clustered_proportion_ci([float(r.correct) for r, _, _ in pairs], clusters)
    control_ci = clustered_proportion_ci([float(c.correct) for _, c, _ in pairs], clusters)
    diff = paired_difference_ci([float(r.correct) - float(c.correct) for r, c, _ in pairs], clusters)
    only_real = sum(r.correct and not c.correct for r, c, _ in pairs)
    only_control = sum(c.correct and not r.correct for r, c, _ in pairs)
    return {
        "server": server, "control": control, "group_kind": kind, "group": group, "n": len(pairs),
        "n_volumes": real_ci.n_clusters,
        "real": real_ci.estimate, "real_ci_low": real_ci.low, "real_ci_high": real_ci.high,
        "control_accuracy": control_ci.estimate, "control_ci_low": control_ci.low, "control_ci_high": control_ci.high,
        "difference": diff.estimate, "ci_low": diff.low, "ci_high": diff.high,
        "only_real_correct": only_real, "only_control_correct": only_control,
        "mcnemar_p": mcnemar_exact(only_real, only_control),
        "control_errors": sum(c.status != "ok" for _, c, _ in pairs),
    }


def _sides(score: ItemScore, item: QAItem) -> frozenset[str]:
    """The sides an answer names: those of the option it picked, else of its text."""
    if score.option_index is not None and item.options:
        return laterality_words(item.options[score.option_index])
    return laterality_words(score.prediction or "")


def mirror_consistency(pairs: Sequence[tuple[ItemScore, ItemScore, QAItem]], real_questions: dict[str, QAItem]) -> dict[str, Any]:
    """Flip and stay fractions over the mirrored questions both answered (see the module doc)."""
    flip_values, flip_clusters, stay_values, stay_clusters = [], [], [], []
    not_answered = 0
    for real, mirrored, item in pairs:
        if real.status != "ok" or mirrored.status != "ok":
            not_answered += 1
            continue
        original = real_questions[item.question_id]
        if flips_under_mirror(original.answer):
            sides = _sides(real, original)
            flipped = bool(sides) and swap_words(sides) != sides and _sides(mirrored, item) == swap_words(sides)
            flip_values.append(float(flipped))
            flip_clusters.append(real.case_id)
        else:
            if original.options and real.option_index is not None:
                same = match_option(mirrored.prediction or "", item.options) == real.option_index
            else:
                same = exact_match(mirrored.prediction or "", real.prediction or "")
            stay_values.append(float(same))
            stay_clusters.append(real.case_id)
    return {"flip": _fraction(flip_values, flip_clusters), "stay": _fraction(stay_values, stay_clusters),
            "not_answered": not_answered}


def _fraction(values: list[float], clusters: list[str]) -> dict[str, Any]:
    ci = clustered_proportion_ci(values, clusters)
    return {"value": ci.estimate, "ci_low": ci.low, "ci_high": ci.high, "n": ci.n, "n_volumes": ci.n_clusters,
            "count": int(sum(values))}
