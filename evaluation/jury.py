"""The LLM jury: join judges' verdicts to predictions by identity, vote, measure agreement.

A question is correct when the mean of its judges' verdicts is >= 0.66 (2 of 3, as published).
Verdicts are joined to predictions by question identity (question_id when the verdict carries
one, else the (question, answer, prediction) text, k-th to k-th), never by position. The
published figures were computed by position; `published_jury` reproduces that computation and
`check_alignment` says which verdict file stops lining up with its predictions, and where.
"""
from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctbench.datasets.qa_items import QAItem
from ctbench.errors import DatasetError
from ctbench.evaluation.ledger import ServerPredictions

THRESHOLD = 0.66
VERDICT_FILE = re.compile(r"^(?P<server>[^.]+)\.(?P<judge>.+)\.jsonl?$")


@dataclass(frozen=True)
class Verdict:
    is_correct: bool | None  # None: the judge gave no usable verdict (a judge failure)
    reasoning: str = ""
    failure: str = ""  # why there is no verdict (unparseable reply, timeout, null, ...)


@dataclass
class Alignment:
    """One verdict file checked against the predictions it judges."""

    server: str
    judge: str
    source: str
    n_verdicts: int
    n_predictions: int
    first_misaligned: int | None  # 0-based position where verdict i stops matching prediction i
    misaligned_positions: int  # how many positions do not match
    missing_ids: list[str]  # questions with no verdict (by identity)
    unmatched_verdicts: int  # verdicts that match no prediction
    keyed: bool = False  # every verdict names its question_id (ctbench judge ledgers): no position to check
    by_id: dict[str, Verdict] = field(repr=False, default_factory=dict)
    rows: list[dict[str, Any]] = field(repr=False, default_factory=list)

    @property
    def positional_ok(self) -> bool:
        return self.keyed or (self.first_misaligned is None and self.n_verdicts == self.n_predictions)

    def describe(self) -> str:
        if self.keyed:
            return (f"{self.source}: {self.n_verdicts} verdicts keyed by question id"
                    + (f"; {len(self.missing_ids)} answered questions have no verdict" if self.missing_ids else ""))
        if self.positional_ok:
            return f"{self.source}: {self.n_verdicts} verdicts, line up with the predictions"
        where = (f"from item {self.first_misaligned} on ({self.misaligned_positions} positions differ)"
                 if self.first_misaligned is not None else "in length only")
        return (f"{self.source}: {self.n_verdicts} verdicts for {self.n_predictions} predictions; "
                f"misaligned {where}; by identity {len(self.missing_ids)} questions have no verdict"
                + (f" (first: {self.missing_ids[0]})" if self.missing_ids else ""))

    def to_json(self) -> dict[str, Any]:
        return {"server": self.server, "judge": self.judge, "source": self.source,
                "n_verdicts": self.n_verdicts, "n_predictions": self.n_predictions,
                "positional_ok": self.positional_ok, "first_misaligned": self.first_misaligned,
                "misaligned_positions": self.misaligned_positions, "missing_ids": self.missing_ids,
                "unmatched_verdicts": self.unmatched_verdicts, "summary": self.describe()}


def load_verdict_rows(path: str | Path) -> list[dict[str, Any]]:
    """A published verdict file (JSON list) or a ctbench judge ledger (JSONL; last line per id wins)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows: list[dict[str, Any]] = []
        seen: dict[object, int] = {}  # question id -> its row's index
        for _line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line of an interrupted judge run
            qid = row.get("question_id")
            if qid in seen:
                rows[seen[qid]] = row
            else:
                seen[qid] = len(rows)
                rows.append(row)
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"malformed JSON: {exc.msg}", path, exc.lineno) from None
    if not isinstance(data, list):
        raise DatasetError(f"expected a list of verdicts, got {type(data).__name__}", path)
    return data


def _verdict(row: dict[str, Any]) -> Verdict:
    value = row.get("is_correct")
    if isinstance(value, bool):
        return Verdict(value, str(row.get("reasoning") or ""))
    if isinstance(value, (int, float)) and value in (0, 1):
        return Verdict(bool(value), str(row.get("reasoning") or ""))
    return Verdict(None, str(row.get("reasoning") or ""), str(row.get("failure") or "no verdict (is_correct is null)"))


def _text_key(question: Any, answer: Any, prediction: Any) -> tuple[str, str, str]:
    return tuple(" ".join(str(x or "").split()) for x in (question, answer, prediction))  # type: ignore[return-value]


def check_alignment(items: Sequence[QAItem], preds: ServerPredictions, rows: list[dict[str, Any]],
                    judge: str, source: str = "") -> Alignment:
    """Join verdict `rows` to `items` by identity and check whether they also line up by position."""
    pred_text = {qid: (rec.prediction or "") for qid, rec in preds.records.items()}
    keys = [_text_key(it.question, it.answer, pred_text.get(it.question_id, "")) for it in items]
    keyed = bool(rows) and all(row.get("question_id") for row in rows)
    # position check (the published pipeline joined by position); meaningless for keyed ledgers
    first, differ = None, 0
    for i, row in enumerate([] if keyed else rows[: len(items)]):
        row_key = _text_key(row.get("question"), row.get("answer"), row.get("prediction"))
        qid = row.get("question_id")
        same = (qid == items[i].question_id) if qid else (row_key == keys[i])
        if not same:
            differ += 1
            if first is None:
                first = i
    if not keyed and len(rows) != len(items) and first is None:
        first = min(len(rows), len(items))
    # identity join
    by_key: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    by_qid: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.get("question_id"):
            by_qid[row["question_id"]] = i
        else:
            by_key[_text_key(row.get("question"), row.get("answer"), row.get("prediction"))].append(i)
    used: dict[tuple[str, str, str], int] = defaultdict(int)
    by_id: dict[str, Verdict] = {}
    matched: set[int] = set()
    missing: list[str] = []
    for it, key in zip(items, keys):
        j: int | None
        if it.question_id in by_qid:
            j = by_qid[it.question_id]
        else:
            k = used[key]
            used[key] += 1
            j = by_key[key][k] if k < len(by_key.get(key, ())) else None
        if j is None:
            if it.question_id in preds.records and preds.records[it.question_id].status == "ok":
                missing.append(it.question_id)  # answered but not judged (unanswered: nothing to judge)
            continue
        matched.add(j)
        by_id[it.question_id] = _verdict(rows[j])
    return Alignment(preds.server, judge, source or f"{preds.server}.{judge}", len(rows), len(items),
                     first, differ, missing, len(rows) - len(matched), keyed, by_id, rows)


# --- the vote ----------------------------------------------------------------------------
@dataclass
class JuryItem:
    votes: dict[str, bool | None]
    mean: float | None  # mean of the available verdicts
    correct: bool  # decided and mean >= threshold
    decided: bool  # at least `min_votes` verdicts available


def aligned_jury(items: Sequence[QAItem], alignments: dict[str, Alignment], threshold: float = THRESHOLD,
                 min_votes: int = 2) -> dict[str, JuryItem]:
    """question_id -> the jury's vote over the identity-joined verdicts (every item present)."""
    out: dict[str, JuryItem] = {}
    for it in items:
        votes = {j: (a.by_id[it.question_id].is_correct if it.question_id in a.by_id else None)
                 for j, a in alignments.items()}
        given = [v for v in votes.values() if v is not None]
        mean = sum(given) / len(given) if given else None
        decided = len(given) >= min(min_votes, len(alignments))
        out[it.question_id] = JuryItem(votes, mean, bool(decided and mean is not None and mean >= threshold), decided)
    return out


@dataclass
class PublishedJury:
    """The published computation: verdict files zipped by position, truncated to the shortest."""

    count: int
    accuracy: float
    by_id: dict[str, float]  # positional means laid on question ids (skipping ids with no verdict)


def published_jury(items: Sequence[QAItem], alignments: dict[str, Alignment],
                   threshold: float = THRESHOLD) -> PublishedJury:
    rows = {j: a.rows for j, a in alignments.items()}
    n = min(len(r) for r in rows.values())
    means = [sum(bool(rows[j][i].get("is_correct")) for j in rows) / len(rows) for i in range(n)]
    accuracy = sum(m >= threshold for m in means) / n if n else math.nan
    missing = {qid for a in alignments.values() for qid in a.missing_ids}
    ids = [it.question_id for it in items if it.question_id not in missing][:n]
    return PublishedJury(n, accuracy, dict(zip(ids, means)))


# --- agreement and failures ------------------------------------------------------------
def fleiss_kappa(ratings: Sequence[Sequence[bool]]) -> float:
    """Fleiss' kappa for binary ratings; each inner sequence holds one item's judges' verdicts."""
    rows = [r for r in ratings if len(r) >= 2]
    if not rows:
        return math.nan
    m = len(rows[0])
    if any(len(r) != m for r in rows):
        raise ValueError("Fleiss' kappa needs the same number of ratings per item")
    n_items = len(rows)
    p_yes = sum(sum(r) for r in rows) / (n_items * m)
    p_e = p_yes**2 + (1 - p_yes) ** 2
    p_i = [(sum(r) * (sum(r) - 1) + (m - sum(r)) * (m - sum(r) - 1)) / (m * (m - 1)) for r in rows]
    p_bar = sum(p_i) / n_items
    return (p_bar - p_e) / (1 - p_e) if p_e < 1 else math.nan


def agreement(jury: dict[str, JuryItem]) -> dict[str, Any]:
    """Fleiss' kappa over items every judge rated, pairwise raw agreement, per-judge failure rates."""
    judges = sorted({j for it in jury.values() for j in it.votes})
    complete: list[list[bool]] = []  # the items every judge rated
    for it in jury.values():
        given = [v for j in judges if (v := it.votes[j]) is not None]
        if len(given) == len(judges):
            complete.append(given)
    pairwise = {}
    for a in range(len(judges)):
        for b in range(a + 1, len(judges)):
            both = [(it.votes[judges[a]], it.votes[judges[b]]) for it in jury.values()
                    if it.votes[judges[a]] is not None and it.votes[judges[b]] is not None]
            pairwise[f"{judges[a]}~{judges[b]}"] = sum(x == y for x, y in both) / len(both) if both else math.nan
    n = len(jury)
    failures = {j: sum(it.votes[j] is None for it in jury.values()) for j in judges}
    return {
        "judges": judges,
        "fleiss_kappa": fleiss_kappa(complete),
        "items_rated_by_all": len(complete),
        "pairwise_agreement": pairwise,
        "failures": failures,
        "failure_rate": {j: (failures[j] / n if n else math.nan) for j in judges},
        "undecided": sum(not it.decided for it in jury.values()),
    }


def find_verdict_files(folder: str | Path) -> dict[str, dict[str, Path]]:
    """server -> judge -> path, from `<server>.<judge>.json[l]` names."""
    out: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in sorted(Path(folder).glob("*.json*")):
        m = VERDICT_FILE.match(path.name)
        if m:
            out[m["server"]][m["judge"]] = path
    return dict(out)
