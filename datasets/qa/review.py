"""Human review of QA pairs: export a CSV a radiologist fills in, import it back, measure agreement.

The CSV has one row per pair; a reviewer fills ``verdict`` with ``accept``, ``reject`` or ``edit``
(then ``corrected_question`` / ``corrected_answer``), and may add ``notes``. Blank verdicts are
"not reviewed". Several reviewers each fill their own copy (``reviewer`` column or file name).

`agreement_summary` gives, per reviewer, how many pairs they reviewed and accepted; over the
pairs with two or more reviews, the share where all reviewers agree, Cohen's kappa for each
pair of reviewers, and the consensus rate (pairs whose majority verdict is accept or edit: the
figure the CT-SpatialVQA paper reports as 95%).
"""
from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from ctbench.datasets.qa_items import load_dataset
from ctbench.errors import DatasetError

COLUMNS = [
    "question_id", "volume", "question", "answer", "categories",
    "verdict", "corrected_question", "corrected_answer", "reviewer", "notes",
]
VERDICTS = ("accept", "reject", "edit")


def export_review(
    qa_path: str | Path, out_csv: str | Path, *, sample: int | None = None, seed: int = 0, reviewer: str = ""
) -> int:
    """Write the review sheet; `sample` draws that many pairs at random (seeded). Returns rows."""
    dataset = load_dataset(qa_path)
    items = dataset.items
    if sample is not None and sample < len(items):
        items = sorted(random.Random(seed).sample(items, sample), key=lambda i: dataset.items.index(i))
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for item in items:
            writer.writerow({
                "question_id": item.question_id, "volume": item.case_id, "question": item.question,
                "answer": item.answer, "categories": "; ".join(item.categories), "verdict": "",
                "corrected_question": "", "corrected_answer": "", "reviewer": reviewer, "notes": "",
            })
    return len(items)


@dataclass(frozen=True)
class Review:
    question_id: str
    reviewer: str
    verdict: str
    corrected_question: str = ""
    corrected_answer: str = ""
    notes: str = ""


def import_reviews(paths: list[str | Path]) -> list[Review]:
    """Read filled-in sheets. Bad verdicts and edits without a correction are errors (file:line)."""
    reviews: list[Review] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DatasetError("review sheet not found", path)
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"question_id", "verdict"} - set(reader.fieldnames or ())
            if missing:
                raise DatasetError(f"review sheet lacks column(s) {sorted(missing)}", path)
            for line, row in enumerate(reader, start=2):
                verdict = (row.get("verdict") or "").strip().lower()
                if not verdict:
                    continue
                if verdict not in VERDICTS:
                    raise DatasetError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}", path, line)
                fixed_q = (row.get("corrected_question") or "").strip()
                fixed_a = (row.get("corrected_answer") or "").strip()
                if verdict == "edit" and not (fixed_q or fixed_a):
                    raise DatasetError("verdict 'edit' needs a corrected_question or corrected_answer", path, line)
                reviews.append(Review(
                    question_id=(row.get("question_id") or "").strip(),
                    reviewer=(row.get("reviewer") or "").strip() or path.stem,
                    verdict=verdict, corrected_question=fixed_q, corrected_answer=fixed_a,
                    notes=(row.get("notes") or "").strip(),
                ))
    return reviews


def _cohen_kappa(a: list[str], b: list[str]) -> float | None:
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return None if expected == 1 else round((observed - expected) / (1 - expected), 4)


def _keep(verdict: str) -> str:
    return "reject" if verdict == "reject" else "keep"


def agreement_summary(reviews: list[Review], known_ids: set[str] | None = None) -> dict:
    """Per-reviewer counts, agreement between reviewers, and the consensus (keep) rate."""
    if known_ids is not None:
        unknown = sorted({r.question_id for r in reviews} - known_ids)
        if unknown:
            raise DatasetError(f"{len(unknown)} reviewed question id(s) are not in the QA set: {unknown[:5]}")
    by_item: dict[str, dict[str, str]] = defaultdict(dict)
    for r in reviews:
        by_item[r.question_id][r.reviewer] = r.verdict  # a reviewer's last row wins
    reviewers = sorted({r.reviewer for r in reviews})
    per_reviewer = {}
    for name in reviewers:
        verdicts = [v[name] for v in by_item.values() if name in v]
        counts = Counter(verdicts)
        per_reviewer[name] = {"reviewed": len(verdicts), **{k: counts.get(k, 0) for k in VERDICTS},
                              "keep_rate": round(1 - counts.get("reject", 0) / len(verdicts), 4) if verdicts else None}
    multi = {q: v for q, v in by_item.items() if len(v) >= 2}
    all_agree = sum(len({_keep(x) for x in v.values()}) == 1 for v in multi.values())
    pairwise = {}
    for a, b in combinations(reviewers, 2):
        both = [v for v in by_item.values() if a in v and b in v]
        pairwise[f"{a} vs {b}"] = {
            "n": len(both),
            "agreement": round(sum(_keep(v[a]) == _keep(v[b]) for v in both) / len(both), 4) if both else None,
            "cohen_kappa": _cohen_kappa([_keep(v[a]) for v in both], [_keep(v[b]) for v in both]),
        }
    majority_keep = 0
    for v in by_item.values():
        votes = Counter(_keep(x) for x in v.values())
        majority_keep += votes["keep"] > votes["reject"]
    return {
        "items_reviewed": len(by_item),
        "reviewers": per_reviewer,
        "items_with_2plus_reviews": len(multi),
        "all_reviewers_agree": round(all_agree / len(multi), 4) if multi else None,
        "pairwise": pairwise,
        "consensus_keep_rate": round(majority_keep / len(by_item), 4) if by_item else None,
        "note": "verdicts compared as keep (accept or edit) vs reject; ties count as not kept",
    }


def apply_reviews(qa_path: str | Path, reviews: list[Review], out_path: str | Path) -> dict:
    """Write the QA set with majority-rejected pairs dropped and edits applied (JSONL, ids kept)."""
    dataset = load_dataset(qa_path)
    known = {item.question_id for item in dataset.items}
    summary = agreement_summary(reviews, known)
    votes: dict[str, Counter] = defaultdict(Counter)
    edits: dict[str, Review] = {}
    for r in reviews:
        votes[r.question_id][_keep(r.verdict)] += 1
        if r.verdict == "edit":
            edits[r.question_id] = r
    dropped = edited = 0
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as handle:
        for item in dataset.items:
            v = votes.get(item.question_id)
            if v and v["reject"] >= v["keep"]:
                dropped += 1
                continue
            row = item.to_json()
            if item.question_id in edits:
                e = edits[item.question_id]
                row["question"] = e.corrected_question or row["question"]
                row["answer"] = e.corrected_answer or row["answer"]
                edited += 1
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary.update({"dropped": dropped, "edited": edited, "written": len(dataset.items) - dropped, "output": str(out_path)})
    return summary
