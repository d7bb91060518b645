"""Judge a run folder: RUN/judges/<server>.<judge>.jsonl, appended as verdicts arrive, resumable."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ctbench.evaluation import progress
from ctbench.evaluation.judges.judge import JudgeItem, LLMJudge
from ctbench.evaluation.ledger import load_run_dataset, read_ledger, run_ledgers


@dataclass
class JudgeRunReport:
    judged: dict[str, int] = field(default_factory=dict)  # "<server>.<judge>" -> new verdicts written
    skipped: dict[str, int] = field(default_factory=dict)  # already judged (resume)
    failures: dict[str, int] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)


def _done(path: Path, prompt_sha256: str) -> set[str]:
    """Question ids whose last verdict is a real one from this prompt: a verdict from another
    prompt is asked again (its new line then wins), so one ledger never mixes two protocols."""
    done: set[str] = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("is_correct") is not None and row.get("prompt_sha256") == prompt_sha256:
                done.add(row["question_id"])
            else:
                done.discard(row.get("question_id"))
    return done


def judge_run(run_dir: str | Path, judge_list: Sequence[LLMJudge], servers: Sequence[str] | None = None,
              chunk: int = 256) -> JudgeRunReport:
    """Judge every answered item of every (selected) server with every judge; skip items already
    judged with the judge's prompt."""
    run_dir = Path(run_dir)
    dataset = load_run_dataset(run_dir)
    out_dir = run_dir / "judges"
    out_dir.mkdir(exist_ok=True)
    report = JudgeRunReport()
    for ledger in run_ledgers(run_dir):
        preds = read_ledger(ledger, dataset)
        if servers and preds.server not in servers:
            continue
        items = [JudgeItem(it.question_id, it.question, it.answer, preds.records[it.question_id].prediction or "")
                 for it in dataset.items
                 if it.question_id in preds.records and preds.records[it.question_id].status == "ok"]
        for judge in judge_list:
            tag = f"{preds.server}.{judge.spec.name}"
            path = out_dir / f"{tag}.jsonl"
            done = _done(path, judge.prompt.sha256)
            todo = [it for it in items if it.question_id not in done]
            report.skipped[tag] = len(items) - len(todo)
            report.judged[tag] = report.failures[tag] = 0
            with path.open("a", encoding="utf-8") as handle:
                for start in range(0, len(todo), chunk):
                    for verdict in judge.judge(todo[start:start + chunk]):
                        row = verdict.to_json() | {"server": preds.server,
                                                   "ts": datetime.now(timezone.utc).isoformat(timespec="seconds")}
                        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                        report.judged[tag] += 1
                        report.failures[tag] += verdict.is_correct is None
                    handle.flush()
                    progress.report(f"judge {tag}", min(start + chunk, len(todo)), len(todo))
            report.stats[judge.spec.name] = judge.stats.to_json() | {"llm": judge.client.stats.to_json()}
    return report
