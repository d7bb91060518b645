"""The three steps that turn CT reports into a spatial QA benchmark, as in CT-SpatialVQA.

``generate`` (reports -> ``qa_pairs_unfiltered.json``), ``filter`` (-> ``qa_pairs.json``) and
``categorize`` (-> ``qa_pairs_with_categories.json``) each write the published file shape into
an output folder, next to their ledger (``<step>.jsonl``, see `ledger.Ledger`). Each step:

* resumes: units already done by the same model and prompt are not redone;
* caches LLM replies on disk through the shared client (`ctbench.llm`, sqlite, keyed by model,
  settings and messages);
* records per pair which model, prompt (sha256) and date produced it, under ``provenance``;
* keeps going past a bad unit (missing section, non-English report, a reply that is not JSON or
  has the wrong shape), records the error, and reports the count at the end.

Filter and categorize run offline with the rule-based backend (`rules.py`) unless an LLM is given.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ctbench.datasets.ct_spatialvqa import question_key
from ctbench.datasets.qa import rules
from ctbench.datasets.qa.ledger import Ledger, now_iso
from ctbench.datasets.qa.llm import ChatModel, LLMError
from ctbench.datasets.qa.prompting import Prompt, load_prompt
from ctbench.datasets.qa.replies import (
    BadInput,
    BadReply,
    parse_categories,
    parse_qa_pairs,
    parse_spatial_decisions,
    report_sections,
)
from ctbench.errors import DatasetError

SYSTEM_MESSAGE = "You are a precise radiology assistant."
TEMPERATURE = 0.2
PAIRS_PER_REPORT = (7, 10)
OUTPUT_FILES = {
    "generate": "qa_pairs_unfiltered.json",
    "filter": "qa_pairs.json",
    "categorize": "qa_pairs_with_categories.json",
}
RULES_BACKEND = "rules"


@dataclass
class StepSummary:
    step: str
    model: str
    prompt: str | None
    prompt_sha256: str | None
    units: int = 0
    done_before: int = 0
    done_now: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    output: str = ""
    ledger: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _read_json_object(path: str | Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} not found", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"malformed JSON: {exc.msg}", path, exc.lineno) from None
    if not isinstance(data, dict):
        raise DatasetError(f"expected a JSON object of volume_name -> ..., got {type(data).__name__}", path)
    return data


def _messages(user: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": user}]


def _run_units(
    keys: list[str],
    work: Callable[[str], dict],
    ledger: Ledger,
    fingerprint: dict,
    summary: StepSummary,
    workers: int,
    on_unit: Callable[[str], None],
    on_start: Callable[[int], None],
) -> None:
    """Run `work` on each key not already done; write one ledger line per unit."""
    pending = []
    for key in keys:
        if ledger.done(key, fingerprint):
            summary.done_before += 1
        else:
            pending.append(key)
    on_start(len(pending))

    def one(key: str) -> None:
        base = {"key": key, **fingerprint, "date": now_iso()}
        try:
            row = {**base, "status": "ok", **work(key)}
        except (BadInput, BadReply) as exc:
            row = {**base, "status": "error", "error": {"type": type(exc).__name__, "message": str(exc)}}
            summary.errors.append(str(exc) if str(exc).startswith(key) else f"{key}: {exc}")
        ledger.append(row)
        if row["status"] == "ok":
            summary.done_now += 1
            summary.warnings.extend(f"{key}: {w}" for w in row.get("warnings", ()))
        on_unit(key)

    if workers <= 1:
        for key in pending:
            one(key)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(one, key) for key in pending]:
                future.result()  # LLMError (service down, key refused) stops the step


def _write_output(out_dir: Path, step: str, volumes: dict[str, list[dict]]) -> Path:
    path = out_dir / OUTPUT_FILES[step]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps({v: {"qa_pairs": pairs} for v, pairs in volumes.items() if pairs}, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    tmp.replace(path)
    return path


def _provenance(pair: dict, step: str, row: dict) -> dict:
    prov = dict(pair.get("provenance") or {})
    prov[step] = {"model": row["model"], "prompt_sha256": row.get("prompt_sha256"), "date": row["date"]}
    return prov


# --- generate ---------------------------------------------------------------------------------
def generate_qa(
    reports_path: str | Path,
    out_dir: str | Path,
    llm: ChatModel,
    *,
    prompt: Prompt | None = None,
    volumes: list[str] | None = None,
    limit: int | None = None,
    workers: int = 1,
    on_unit: Callable[[str], None] = lambda key: None,
    on_start: Callable[[int], None] = lambda n: None,
) -> StepSummary:
    """7-10 spatial QA pairs per report from its Findings and Impressions (published pipeline)."""
    out_dir = Path(out_dir)
    reports = _read_json_object(reports_path, "reports file")
    prompt = prompt or load_prompt("generate")
    keys = [v for v in (volumes or list(reports)) if v in reports][:limit]
    unknown = [v for v in (volumes or []) if v not in reports]
    if unknown:
        raise DatasetError(f"{len(unknown)} volume(s) have no report: {', '.join(unknown[:5])}", reports_path)
    fingerprint = {"model": llm.name, "prompt": prompt.name, "prompt_sha256": prompt.sha256}
    summary = StepSummary("generate", llm.name, prompt.name, prompt.sha256, units=len(keys))
    ledger = Ledger(out_dir / "generate.jsonl")

    def work(volume: str) -> dict:
        findings, impressions, warnings = report_sections(reports[volume], volume)
        reply = llm.complete(_messages(prompt.render(findings=findings, impressions=impressions)), temperature=TEMPERATURE)
        pairs = parse_qa_pairs(reply)
        unique: list[dict] = []
        dropped: list[dict] = []
        seen = set()
        for pair in pairs:
            key = question_key(pair["question"])
            (dropped if key in seen else unique).append(pair)
            seen.add(key)
        if dropped:
            warnings.append(f"dropped {len(dropped)} duplicate question(s): {[p['question'] for p in dropped]}")
        low, high = PAIRS_PER_REPORT
        if not low <= len(unique) <= high:
            warnings.append(f"{len(unique)} pairs, outside the asked-for {low}-{high}")
        return {"qa_pairs": unique, "warnings": warnings}

    _run_units(keys, work, ledger, fingerprint, summary, workers, on_unit, on_start)
    assembled = {}
    for volume in keys:
        row = ledger.done(volume, fingerprint)
        if row:
            assembled[volume] = [
                {"question": p["question"], "answer": p["answer"], "provenance": _provenance(p, "generate", row)}
                for p in row["qa_pairs"]
            ]
    summary.output = str(_write_output(out_dir, "generate", assembled))
    summary.ledger = str(ledger.path)
    return summary


# --- filter and categorize --------------------------------------------------------------------
def _render_pairs(pairs: list[dict]) -> str:
    return json.dumps(
        [{"index": i, "question": p["question"], "answer": p["answer"]} for i, p in enumerate(pairs)],
        indent=1, ensure_ascii=False,
    )


def _label_step(
    step: str,
    in_path: str | Path,
    out_dir: str | Path,
    llm: ChatModel | None,
    prompt: Prompt | None,
    label_rules: Callable[[list[dict]], list[dict]],
    label_llm: Callable[[str, int], list],
    apply: Callable[[dict, object], dict | None],
    workers: int,
    limit: int | None,
    on_unit: Callable[[str], None],
    on_start: Callable[[int], None],
) -> StepSummary:
    out_dir = Path(out_dir)
    data = _read_json_object(in_path, "QA file")
    keys = list(data)[:limit]
    for volume in keys:
        if not isinstance(data[volume], dict) or not isinstance(data[volume].get("qa_pairs"), list):
            raise DatasetError(f"volume {volume!r}: expected {{'qa_pairs': [...]}}", in_path)
    backend: tuple[ChatModel, Prompt] | None = None  # None: the rules label
    if llm is None:
        summary = StepSummary(step, f"{RULES_BACKEND}:{rules.RULES_VERSION}", None, None, units=len(keys))
    else:
        prompt = prompt or load_prompt(step)
        backend = (llm, prompt)
        summary = StepSummary(step, llm.name, prompt.name, prompt.sha256, units=len(keys))
    fingerprint = {"model": summary.model, "prompt": summary.prompt, "prompt_sha256": summary.prompt_sha256}
    ledger = Ledger(out_dir / f"{step}.jsonl")

    def work(volume: str) -> dict:
        pairs = data[volume]["qa_pairs"]
        for i, pair in enumerate(pairs):
            if not isinstance(pair, dict) or not isinstance(pair.get("question"), str) or not isinstance(pair.get("answer"), str):
                raise BadInput(f"{volume}: pair {i} lacks 'question'/'answer' strings")
        if not pairs:
            return {"labels": []}
        if backend is None:
            return {"labels": label_rules(pairs)}
        chat, chosen = backend
        reply = chat.complete(_messages(chosen.render(pairs=_render_pairs(pairs))), temperature=TEMPERATURE)
        return {"labels": label_llm(reply, len(pairs))}

    _run_units(keys, work, ledger, fingerprint, summary, workers, on_unit, on_start)
    assembled = {}
    for volume in keys:
        row = ledger.done(volume, fingerprint)
        if not row:
            continue
        kept = []
        for pair, label in zip(data[volume]["qa_pairs"], row["labels"]):
            out = apply(pair, label)
            if out is not None:
                out["provenance"] = _provenance(pair, step, row)
                kept.append(out)
        assembled[volume] = kept
    summary.output = str(_write_output(out_dir, step, assembled))
    summary.ledger = str(ledger.path)
    return summary


def filter_qa(
    in_path: str | Path,
    out_dir: str | Path,
    llm: ChatModel | None = None,
    *,
    prompt: Prompt | None = None,
    workers: int = 1,
    limit: int | None = None,
    on_unit: Callable[[str], None] = lambda key: None,
    on_start: Callable[[int], None] = lambda n: None,
) -> StepSummary:
    """Keep the spatial pairs. ``llm=None``: the rule-based filter (offline, deterministic)."""

    def by_rules(pairs):
        out = []
        for p in pairs:
            decision = rules.spatial_filter(p["question"], p["answer"])
            out.append({"spatial": decision.value, "reasons": list(decision.reasons)})
        return out

    def by_llm(reply, n):
        return [{"spatial": s} for s in parse_spatial_decisions(reply, n)]

    def apply(pair, label):
        if not label["spatial"]:
            return None
        return {k: v for k, v in pair.items() if k != "provenance"}

    return _label_step("filter", in_path, out_dir, llm, prompt, by_rules, by_llm, apply, workers, limit, on_unit, on_start)


def categorize_qa(
    in_path: str | Path,
    out_dir: str | Path,
    llm: ChatModel | None = None,
    *,
    prompt: Prompt | None = None,
    workers: int = 1,
    limit: int | None = None,
    on_unit: Callable[[str], None] = lambda key: None,
    on_start: Callable[[int], None] = lambda n: None,
) -> StepSummary:
    """Tag each pair with its spatial categories. ``llm=None``: the rule-based tagger."""

    def by_rules(pairs):
        out = []
        for p in pairs:
            decision = rules.tag_categories(p["question"], p["answer"])
            out.append({"categories": list(decision.value), "reasons": list(decision.reasons)})
        return out

    def by_llm(reply, n):
        return [{"categories": list(c)} for c in parse_categories(reply, n)]

    def apply(pair, label):
        out = {k: v for k, v in pair.items() if k != "provenance"}
        out["category"] = label["categories"]
        return out

    return _label_step("categorize", in_path, out_dir, llm, prompt, by_rules, by_llm, apply, workers, limit, on_unit, on_start)


__all__ = ["OUTPUT_FILES", "LLMError", "StepSummary", "categorize_qa", "filter_qa", "generate_qa"]
