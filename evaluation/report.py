"""`bench report`: a self-contained HTML page, a markdown summary and PNG figures for a scored run.

The report is a list of sections (`SECTIONS`), one small function each: a function takes the
`ReportInput` and returns a `Section` (title, paragraphs, tables, the figures it shows) or None
when the run has nothing for it. Adding a section is one function and one line in `SECTIONS`;
both renderings (HTML, markdown) come from the same `Section`s. The headline is the
identity-aligned jury accuracy where judge verdicts exist, else accuracy (option match /
normalised exact match). Every figure is a percentage of the questions counted, with its 95%
interval clustered by volume, unless the section says otherwise.
"""
from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctbench.evaluation.control_report import control_sections
from ctbench.evaluation.error_analysis import error_samples, outcome_counts
from ctbench.evaluation.examples import Example, examples_per_category, most_disputed
from ctbench.evaluation.metric_registry import METRICS
from ctbench.evaluation.numeric_report import numeric_section
from ctbench.evaluation.report_tables import (
    LEADERBOARD_METRICS,
    Section,
    Table,
    headline_label,
    headline_metric,
    leaderboard_rows,
    missing,
    pct,
    pct_ci,
)
from ctbench.evaluation.scoring import ScoreResult

__all__ = ["SECTIONS", "ReportFiles", "ReportInput", "Section", "Table", "headline_metric", "write_report"]


@dataclass
class ReportFiles:
    html: Path
    markdown: Path
    figures: list[Path]


@dataclass
class ReportInput:
    """What every section function gets."""

    result: ScoreResult
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)  # stem -> PNG (empty without matplotlib)
    seed: int = 0  # for the example draw

    @property
    def metric(self) -> str:
        return headline_metric(self.result)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(text: Any, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- sections, in report order ---------------------------------------------------------------
def reading_section(inp: ReportInput) -> Section:
    return Section("How to read this report", [
        "Scales: every figure is a percentage (0–100) of the questions counted — accuracies, the jury, "
        "judge failure rates, and the text metrics (BLEU is sacrebleu's corpus score, already 0–100; METEOR, "
        "ROUGE-L F1, SBERT cosine and AlignScore means are shown ×100). The exceptions say so: Fleiss κ (−1 to 1), "
        "McNemar p-values, counts.",
        "Brackets are 95% intervals clustered by volume (method at the end). Every question of the dataset is "
        "in every denominator: missing and failed answers count as wrong."])


def run_section(inp: ReportInput) -> Section | None:
    r, m = inp.result, inp.result.manifest
    if not m and not r.attempts:
        return None
    rows: list[list[Any]] = [["dataset", r.dataset_name]]
    if m:
        rows += [["source", m.get("source", "")], ["dataset sha256", m.get("sha256", "")],
                 ["questions / volumes", f"{m.get('n_questions', r.n_questions)} / {m.get('n_volumes', '?')}"]]
    if r.subset_label:
        rows.append(["asked", r.subset_label])
    if r.attempts:
        first, last = r.attempts[0], r.attempts[-1]
        git = last.get("git") or {}
        version = str(last.get("ctbench_version", ""))
        if git.get("commit"):
            version += f" (git {git['commit'][:10]}{', modified' if git.get('dirty') else ''})"
        packages = ", ".join(f"{k} {v}" for k, v in (last.get("packages") or {}).items())
        rows += [["started", first.get("started_at", "")], ["finished", last.get("finished_at") or "(did not finish)"],
                 ["attempts", len(r.attempts)], ["ctbench", version], ["host", last.get("host", "")],
                 ["Python / packages", f"{last.get('python', '')}; {packages}"], ["backend", last.get("backend", "")]]
    return Section("Run", ["What was run, on which data, with which software (RUN/run.json; the last attempt's "
                           "software)."], [Table(["", "value"], rows, text=True)])


def volume_headers_section(inp: ReportInput) -> Section | None:
    headers = inp.result.volume_headers
    conflicts = headers.get("conflicts") or {}
    if not conflicts:
        return None
    rows = [[path, r.get("transform", ""), r.get("sform_code", ""), r.get("qform_code", ""), r.get("conflict", "")]
            for path, r in conflicts.items()]
    return Section("Volume headers", [
        f"{len(conflicts)} of {headers.get('checked', '?')} NIfTI volumes have a sform and a qform that disagree "
        "(a direction cosine by more than 0.01, a voxel size by more than 1%, or the origin by more than 1 mm). "
        "ctbench reads them with the sform, as the NIfTI standard and nibabel do; a loader that prefers the "
        "qform (SimpleITK for several code pairs) sees a different patient, possibly mirrored. "
        f"The run's policy was --conflicted-headers {headers.get('policy', 'warn')}."],
        [Table(["volume", "read with", "sform code", "qform code", "disagreement"], rows, text=True)])


def _cards(result: ScoreResult) -> dict[str, dict[str, Any]]:
    """server -> its latest model card (the last attempt that reported one)."""
    cards: dict[str, dict[str, Any]] = {}
    for attempt in result.attempts:
        for name, s in (attempt.get("servers") or {}).items():
            if s.get("card"):
                cards[name] = s["card"]
    return cards


def servers_section(inp: ReportInput) -> Section | None:
    cards = _cards(inp.result)
    if not cards:
        return None
    rows = []
    for server in inp.result.servers:
        card = cards.get(server)
        if card is None:
            rows.append([server, "(no card recorded)", "", "", "", ""])
            continue
        spec = card.get("input") or {}
        fed = "; ".join(f"{k} {v}" for k, v in spec.items() if k != "name" and v)
        generation = ", ".join(f"{k}={v}" for k, v in (card.get("generation") or {}).items())
        rows.append([server, f"{card.get('name', '')} {card.get('version', '')}".strip(), card.get("description", ""),
                     card.get("license", ""), fed, generation])
    return Section("Servers and model cards", ["Each server's card as it described itself to the runner."],
                   [Table(["server", "model", "description", "licence", "input", "generation"], rows, text=True)])


def _text_metric_cell(row: dict[str, Any] | None, metric: str) -> str:
    if row is None:
        return "–"
    if row["value"] is None:
        return "n/a"
    return pct_ci(row, METRICS.get(metric).report_factor)


def _all_or_nothing(result: ScoreResult, metric: str) -> list[str]:
    """Why an interval at 0% or 100% is as wide as it is, for each server where it matters."""
    lines = []
    for server in result.servers:
        row = result.value(server, metric)
        if row["value"] in (0.0, 1.0) and row["n"] > row["n_volumes"] > 0:
            word = "right" if row["value"] == 1.0 else "wrong"
            lines.append(
                f"{server}: {row['correct']}/{row['n']} correct on {row['n_volumes']} volumes; its interval "
                f"[{pct(row['ci_low'])}, {pct(row['ci_high'])}] is that of {row['n_volumes'] if word == 'right' else 0}/"
                f"{row['n_volumes']}. With every answer {word} there is no spread from which to estimate how "
                "strongly questions on one volume go together, so the interval counts volumes, not questions: "
                f"{row['n']}/{row['n']} on {row['n_volumes']} volumes and {row['n_volumes']}/{row['n_volumes']} on "
                f"{row['n_volumes']} volumes get the same interval. More questions per volume do not narrow it; "
                "more volumes do.")
    return lines


def leaderboard_section(inp: ReportInput) -> Section:
    result, metric = inp.result, inp.metric
    board = leaderboard_rows(result)
    extra = [c for c in LEADERBOARD_METRICS if any(c in r for r in board)]
    also_accuracy = metric != "accuracy"  # plain accuracy gets a column when the jury is the headline
    headers = ["server", f"{headline_label(result)} % [95% CI]", *(["accuracy % [95% CI]"] if also_accuracy else []),
               "n", "answered", "errors", "missing", *[METRICS.get(c).label for c in extra]]
    rows = [[r["server"], pct_ci(r["headline_row"]), *([pct_ci(r["accuracy_row"])] if also_accuracy else []),
             r["n"], r["answered"], r["errors"], r["missing"], *[_text_metric_cell(r.get(c), c) for c in extra]]
            for r in board]
    paragraphs = ["Best first. Every question of the dataset is in every denominator; missing and failed answers "
                  "count as wrong."]
    if "bleu" in extra:
        paragraphs.append("BLEU is corpus-level: one number per server, no interval.")
    return Section("Leaderboard", paragraphs + _all_or_nothing(result, metric), [Table(headers, rows)], ["leaderboard"])


def _group_table(result: ScoreResult, metric: str, kind: str) -> Table | None:
    groups = sorted({r["group"] for r in result.rows if r["group_kind"] == kind and r["metric"] == metric})
    if not groups:
        return None
    rows = []
    for g in groups:
        cells = {s: result.value(s, metric, kind, g) for s in result.servers}
        first = next(iter(cells.values()))
        rows.append([g, first["n"], first["n_volumes"], *[pct_ci(cells[s]) for s in result.servers]])
    overall = [result.value(s, metric) for s in result.servers]
    rows.append(["all questions", overall[0]["n"], overall[0]["n_volumes"], *[pct_ci(c) for c in overall]])
    return Table([kind.replace("_", " "), "n", "volumes", *[f"{s} %" for s in result.servers]], rows)


def categories_section(inp: ReportInput) -> Section | None:
    table = _group_table(inp.result, inp.metric, "category")
    if table is None:
        return None
    first = inp.result.servers[0]
    cats = [it.categories for it in inp.result.items if it.server == first]
    several, none = sum(len(c) > 1 for c in cats), sum(not c for c in cats)
    if several or none:
        note = (f"Categories overlap: {several} of {len(cats)} questions carry more than one category and count in "
                f"each, and {none} carry none. The rows are not a partition of the dataset, so they need not average "
                "to the overall figure (last row), and every category can sit below (or above) it.")
    else:
        note = ("Here every question carries exactly one category, so the rows partition the dataset. Where questions "
                "carry several (as in CT-SpatialVQA) they count in each, the rows no longer partition the dataset, "
                "and every category can sit below the overall figure (last row).")
    return Section("Per spatial category", [f"{headline_label(inp.result)}, % [95% CI].", note], [table], ["categories"])


def question_types_section(inp: ReportInput) -> Section | None:
    table = _group_table(inp.result, inp.metric, "question_type")
    if table is None:
        return None
    return Section("Per question type", [f"{headline_label(inp.result)}, % [95% CI]. Each question has one type."],
                   [table])


def comparisons_section(inp: ReportInput) -> Section | None:
    tables, titles = [], []
    for name, comps in inp.result.extra.get("comparisons", {}).items():
        if comps:
            titles.append(name)
            tables.append(Table([f"pair ({name})", "n", "only A right", "only B right",
                                 "difference, points [95% CI]", "McNemar p"],
                                [[f"{c['a']} vs {c['b']}", c["n"], c["only_a_correct"], c["only_b_correct"],
                                  f"{100 * c['difference']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]",
                                  f"{c['mcnemar_p']:.3g}"] for c in comps]))
    if not tables:
        return None
    return Section("Paired comparisons", ["The same questions, two servers: A − B in percentage points, with an "
                                          "interval clustered by volume, and McNemar's exact test on the questions "
                                          "only one of the two got right."], tables)


def jury_section(inp: ReportInput) -> Section | None:
    result = inp.result
    jury = result.extra.get("jury", {}).get("servers", {})
    if not jury:
        return None
    published = any(sec.get("published_accuracy") is not None for sec in jury.values())  # the reference runs
    rows = []
    for server, sec in jury.items():
        agr = sec["agreement"]
        rows.append([server, pct(sec["aligned_accuracy"]),
                     *([pct(sec["published_accuracy"]), sec["published_count"]] if published else []),
                     "– (judges never differ)" if missing(agr["fleiss_kappa"]) else f"{agr['fleiss_kappa']:.3f}",
                     ", ".join(f"{j}: {100 * r:.2f}" for j, r in agr["failure_rate"].items()),
                     "; ".join(sec["misaligned_files"]) or "none",
                     "; ".join(f"{j}: {', '.join(p)}" for j, p in sec.get("prompts", {}).items() if p) or "not recorded"])
    tables = [Table(["server", "jury % (aligned)", *(["jury % (as published)", "published count"] if published else []),
                     "Fleiss κ (−1 to 1)", "judge failure rate %", "misaligned verdict files", "judge prompts"], rows)]
    paragraphs = ["The jury counts a question correct when the mean of its judges' verdicts is ≥ 0.66 (2 of 3). "
                  "'Aligned' joins each verdict to its prediction by question identity; 'as published' zips the "
                  "verdict files by position, as the published pipeline did. Where a verdict file is misaligned the "
                  "two differ: verdicts of one question were counted for another."]
    mixed = [f"{server} / {judge}" for server, sec in jury.items() for judge, p in sec.get("prompts", {}).items()
             if len(p) > 1]
    if mixed:
        paragraphs.append("Verdicts from more than one prompt are mixed in: " + ", ".join(mixed) + ". Judge again "
                          "with one prompt (`bench score RUN --judge ... --prompt NAME` asks again every verdict "
                          "another prompt gave).")
    cats = sorted({r["group"] for r in result.rows
                   if r["group_kind"] == "category" and r["metric"] == "jury_accuracy_published"})
    if cats:
        tables.append(Table(["category (jury %: aligned / as published)", *jury],
                            [[c, *[f"{pct(result.value(s, 'jury_accuracy', 'category', c)['value'])} / "
                                   f"{pct(result.value(s, 'jury_accuracy_published', 'category', c)['value'])}"
                                   for s in jury]] for c in cats]))
        paragraphs.append("The published per-category table divides by every question of the category and uses the "
                          "position-joined verdicts; 'aligned' uses identity-joined verdicts.")
    details = [[a["source"], a["summary"]] for sec in jury.values() for a in sec["alignment"] if not a["positional_ok"]]
    if details:
        tables.append(Table(["verdict file that does not line up", "finding"], details, text=True))
    return Section("LLM jury and judge agreement", paragraphs, tables, ["judge_agreement"])


def _answer_cell(example: Example, server: str) -> str:
    item = example.answers.get(server)
    if item is None or item.status == "missing":
        return "✗ (missing)"
    if item.status == "error":
        return f"✗ (error: {item.error_type or 'untyped'})"
    return ("✓ " if example.correct.get(server) else "✗ ") + _short(item.prediction)


def _examples_table(result: ScoreResult, examples: list[Example], first_column: str) -> Table:
    return Table([first_column, "question", "reference", *result.servers],
                 [[(e.category + " · " if e.category else "") + e.question_id, _short(e.question), _short(e.answer),
                   *[_answer_cell(e, s) for s in result.servers]] for e in examples], text=True)


def controls_section(inp: ReportInput) -> Section | None:
    """Did the model read the volume? The volume controls (`bench run --control`)."""
    parts = control_sections(inp.result)
    if not parts:
        return None
    paragraphs = [f"{title}. {note}" if i else note for i, (title, _, _, note) in enumerate(parts)]
    return Section(parts[0][0], paragraphs, [Table(headers, rows) for _, headers, rows, _ in parts])


def examples_section(inp: ReportInput) -> Section | None:
    examples = examples_per_category(inp.result, inp.metric, seed=inp.seed)
    if not examples:
        return None
    return Section("Example questions", [
        f"Two questions per category, drawn at random (seed {inp.seed}), with every server's answer; "
        f"✓ / ✗ by {headline_label(inp.result)}."], [_examples_table(inp.result, examples, "category · question id")])


def disagreement_section(inp: ReportInput) -> Section | None:
    if len(inp.result.servers) < 2:
        return None
    disputed = most_disputed(inp.result, inp.metric, seed=inp.seed)
    if not disputed:
        return Section("Where the models disagree most", ["On every question the servers were all right or all wrong."])
    return Section("Where the models disagree most", [
        "The questions where right and wrong answers split the servers most evenly (then: the most distinct "
        "answers)."], [_examples_table(inp.result, disputed, "question id")])


def errors_section(inp: ReportInput) -> Section:
    result = inp.result
    counts = outcome_counts(result)
    kinds = sorted({k for c in counts.values() for k in c if k != "ok"})
    paragraphs = ["Every question's outcome per server: answered (ok), failed with the server's typed error, never "
                  "answered, or answered without picking exactly one of the declared options (scored wrong)."]
    tables = [Table(["outcome", *result.servers], [[k, *[counts[s][k] for s in result.servers]] for k in ["ok", *kinds]])]
    samples = error_samples(result)
    if samples:
        tables.append(Table(["server", "outcome", "count", "first questions", "sample messages"],
                            [[s.server, s.kind, s.count, ", ".join(s.question_ids),
                              " | ".join(_short(m, 200) for m in s.messages) or "(no message)"] for s in samples],
                            text=True))
    else:
        paragraphs.append("No failed, missing or unparseable answers.")
    return Section("Error analysis", paragraphs, tables)


def answers_section(inp: ReportInput) -> Section | None:
    shown: list[str] = [f for f in ("answer_lengths", "correctness_heatmap") if f in inp.figures]
    if not shown:
        return None
    return Section("Answers at a glance", ["How long each server's answers are next to the references', and which "
                                           "questions each got right."], figures=shown)


def attempts_section(inp: ReportInput) -> Section | None:
    if not inp.result.attempts:
        return None
    return Section("Run attempts", ["Every bench run on this run folder, first to last (RUN/run.json)."],
                   [Table(["#", "started", "finished", "command", "ctbench", "host", "backend", "servers"],
                          [_attempt_row(i, a) for i, a in enumerate(inp.result.attempts, start=1)], text=True)])


def _attempt_row(number: int, attempt: dict[str, Any]) -> list[Any]:
    git = attempt.get("git") or {}
    version = str(attempt.get("ctbench_version", ""))
    if git.get("commit"):
        version += f" ({git['commit'][:10]}{', modified' if git.get('dirty') else ''})"
    servers = []
    for name, s in (attempt.get("servers") or {}).items():
        card = s.get("card") or {}
        model = f" [{card.get('name', '?')} {card.get('version', '')}]".rstrip() if card else ""
        servers.append(f"{name}{model}: {s.get('ok', 0)} answered, {s.get('errors', 0)} errors"
                       + (f", {s['already_done']} earlier" if s.get("already_done") else "")
                       + (f", failed: {s['failure']}" if s.get("failure") else ""))
    return [number, attempt.get("started_at", ""), attempt.get("finished_at") or "(did not finish)",
            attempt.get("command", ""), version, attempt.get("host", ""), attempt.get("backend", ""),
            "; ".join(servers)]


def method_section(inp: ReportInput) -> Section:
    return Section("How the intervals are computed", [
        "Questions about the same CT volume are not independent: a model that misreads a volume tends to miss "
        "several of its questions. Each accuracy's 95% interval is therefore a Wilson score interval at the "
        "effective sample size n / deff, where the design effect deff compares the cluster-robust (by volume) "
        "variance of the accuracy with the binomial one. With one question per volume it is the plain Wilson "
        "interval; text-metric means use the cluster-robust normal interval.",
        "When a server gets every question of a group right (or every one wrong) there is no spread to estimate "
        "deff from. The interval then counts volumes rather than questions, which is the conservative choice: "
        "120/120 correct on 12 volumes gets the interval of 12/12 (75.8–100%), exactly as 12/12 on 12 volumes "
        "does, because ten questions that share one volume may share one mistake and cannot show otherwise."])


def notes_section(inp: ReportInput) -> Section | None:
    return Section("Notes", tables=[Table(["note"], [[n] for n in inp.notes], text=True)]) if inp.notes else None


SECTIONS: list[Callable[[ReportInput], Section | None]] = [
    reading_section,
    run_section,
    volume_headers_section,
    servers_section,
    leaderboard_section,
    categories_section,
    question_types_section,
    lambda inp: numeric_section(inp.result),  # evaluation/numeric_report.py
    comparisons_section,
    controls_section,
    jury_section,
    examples_section,
    disagreement_section,
    errors_section,
    answers_section,
    attempts_section,
    method_section,
    notes_section,
]


# --- rendering -------------------------------------------------------------------------------
def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in table.rows]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in table.rows)
    cls = " class='text'" if table.text else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}"
        "td:first-child,th:first-child{text-align:left}th{background:#f0f3f7}"
        "table.text td,table.text th{text-align:left}table.text td{max-width:26em;overflow-wrap:break-word}"
        "p{max-width:60em}img{max-width:100%;border:1px solid #eee;margin:.5em 0}"
        "h2{border-bottom:1px solid #ddd;margin-top:1.6em}nav li{display:inline;margin-right:1em}")


def _render_markdown(title: str, intro: str, sections: list[Section], figures: dict[str, Path]) -> str:
    md = [f"# {title}", "", intro, ""]
    for s in sections:
        md += [f"## {s.title}", ""]
        for p in s.paragraphs:
            md += [p, ""]
        for t in s.tables:
            md += [_md_table(t), ""]
        md += [f"![{f}]({figures[f].name})" for f in s.figures if f in figures]
        if any(f in figures for f in s.figures):
            md.append("")
    return "\n".join(md) + "\n"


def _render_html(title: str, intro: str, sections: list[Section], figures: dict[str, Path]) -> str:
    toc = "".join(f"<li><a href='#{_anchor(s.title)}'>{html.escape(s.title)}</a></li>" for s in sections)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{html.escape(intro)}</p><nav><ul>{toc}</ul></nav>"]
    for s in sections:
        parts.append(f"<section id='{_anchor(s.title)}'><h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [_html_table(t) for t in s.tables]
        for f in s.figures:
            if f in figures:
                data = base64.b64encode(figures[f].read_bytes()).decode()
                parts.append(f"<figure><img alt='{f}' src='data:image/png;base64,{data}'></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: ScoreResult, out_dir: str | Path, title: str = "", notes: list[str] | None = None,
                 seed: int = 0) -> ReportFiles:
    """report.html (self-contained), report.md and the PNG figures in `out_dir`."""
    from ctbench.evaluation.report_figures import write_figures

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = title or f"ctbench report: {result.dataset_name}"
    notes = list(notes or [])
    for server, issues in result.issues.items():
        info = {k: v for k, v in issues.to_json().items() if isinstance(v, int) and v}
        if info:
            notes.append(f"{server}: ledger issues {info}")
    for r in result.rows:
        if r["value"] is None and r.get("note", "").startswith("unavailable"):
            notes.append(f"{r['server']} {r['metric']}: {r['note']}")
    try:
        files = write_figures(result, out, _plt())
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib":
            raise
        # scripts/setup.sh installs ctbench without extras: the tables still make a report.
        files = []
        notes.append("No figures: matplotlib is not installed (pip install 'ctbench[report]').")
    inp = ReportInput(result, list(dict.fromkeys(notes)), {f.stem: f for f in files}, seed)
    sections = [s for s in (make(inp) for make in SECTIONS) if s is not None]
    counted = result.subset_label or f"{result.n_questions} questions"
    intro = f"{counted}; servers: {', '.join(result.servers)}."
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(_render_markdown(title, intro, sections, inp.figures), encoding="utf-8")
    html_path.write_text(_render_html(title, intro, sections, inp.figures), encoding="utf-8")
    return ReportFiles(html_path, md_path, files)
