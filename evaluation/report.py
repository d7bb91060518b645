"""`bench report`: a self-contained HTML page, a markdown summary and PNG figures for a scored run.

Figures: leaderboard (headline accuracy with 95% CI by volume), per-category grouped bars,
answer-length distributions, the question x model correctness heatmap, and judge agreement.
The headline is the identity-aligned jury accuracy where judge verdicts exist, else accuracy
(option match / normalised exact match).
"""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctbench.evaluation.control_report import control_sections
from ctbench.evaluation.scoring import ScoreResult


@dataclass
class ReportFiles:
    html: Path
    markdown: Path
    figures: list[Path]


def headline_metric(result: ScoreResult) -> str:
    return "jury_accuracy" if any(r["metric"] == "jury_accuracy" for r in result.rows) else "accuracy"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{100 * v:.1f}" if pct else f"{v:.4f}"
    return str(v)


def _leaderboard_rows(result: ScoreResult) -> list[dict[str, Any]]:
    metric = headline_metric(result)
    out = []
    for s in result.servers:
        h = result.value(s, metric)
        acc = result.value(s, "accuracy")
        row = {"server": s, "headline": h["value"], "ci_low": h["ci_low"], "ci_high": h["ci_high"],
               "accuracy": acc["value"], "n": acc["n"], "answered": acc["answered"], "errors": acc["errors"],
               "missing": acc["missing"]}
        for m in ("jury_accuracy_published", "bleu", "meteor", "rougeL_f", "sbert_cosine", "alignscore"):
            try:
                r = result.value(s, m)
                row[m] = r["value"] if r["value"] is not None else "n/a"
            except KeyError:
                pass
        out.append(row)
    return sorted(out, key=lambda r: -(r["headline"] or 0))


def _figures(result: ScoreResult, out: Path) -> list[Path]:
    import numpy as np

    plt = _plt()
    metric = headline_metric(result)
    label = "jury accuracy (aligned)" if metric == "jury_accuracy" else "accuracy"
    files = []
    servers = result.servers
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    board = _leaderboard_rows(result)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(board)))
    vals = [100 * r["headline"] for r in board]
    err = [[100 * (r["headline"] - r["ci_low"]) for r in board], [100 * (r["ci_high"] - r["headline"]) for r in board]]
    ax.barh([r["server"] for r in board][::-1], vals[::-1], xerr=[e[::-1] for e in err], color=colors[0], capsize=4)
    for i, r in enumerate(board[::-1]):
        ax.text(100 * r["ci_high"] + 1.5, i, f"{100 * r['headline']:.1f}", va="center", fontsize=9)
    ax.set_xlabel(f"{label} (%), 95% CI clustered by volume")
    ax.set_xlim(0, 100)
    ax.set_title("Leaderboard")
    files.append(_save(fig, out / "leaderboard.png"))

    cats = sorted({r["group"] for r in result.rows if r["group_kind"] == "category" and r["metric"] == metric})
    if cats:
        fig, ax = plt.subplots(figsize=(9, 4.2))
        width = 0.8 / max(len(servers), 1)
        x = np.arange(len(cats))
        for k, s in enumerate(servers):
            v = [100 * result.value(s, metric, "category", c)["value"] for c in cats]
            ax.bar(x + k * width - 0.4 + width / 2, v, width, label=s, color=colors[k % len(colors)])
        ax.set_xticks(x)
        ax.set_xticklabels([c.replace(" (", "\n(").replace(" & ", " &\n") for c in cats], fontsize=7)
        ax.set_ylabel(f"{label} (%)")
        ax.set_title("Per spatial category")
        ax.legend(fontsize=8)
        files.append(_save(fig, out / "categories.png"))

    fig, ax = plt.subplots(figsize=(8, 3.8))
    names = ["reference", *servers]
    data = [result.answer_words.get(n, []) or [0] for n in names]
    ax.boxplot(data, orientation="horizontal", showfliers=False)
    ax.set_yticks(range(1, len(names) + 1))
    ax.set_yticklabels(names)
    ax.set_xlabel("answer length (words); boxes show quartiles, whiskers 1.5 IQR")
    ax.set_title("Answer-length distributions")
    files.append(_save(fig, out / "answer_lengths.png"))

    per = result.headline.get(metric, {})
    if per:
        qids = list(next(iter(per.values())).keys())
        mat = np.array([[per[s].get(q, False) for s in servers] for q in qids], float)
        order = np.lexsort([*(mat[:, k] for k in reversed(range(len(servers)))), mat.sum(1)])
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(servers), 5))
        ax.imshow(mat[order], aspect="auto", cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks(range(len(servers)))
        ax.set_xticklabels(servers, rotation=30)
        ax.set_ylabel(f"{len(qids)} questions (sorted)")
        ax.set_title(f"Correctness ({label})\ngreen = correct", fontsize=10)
        files.append(_save(fig, out / "correctness_heatmap.png"))

    jury = result.extra.get("jury", {}).get("servers", {})
    if jury:
        fig, axes = plt.subplots(1, len(jury), figsize=(3.6 * len(jury), 3.4), squeeze=False)
        for ax, (server, sec) in zip(axes[0], jury.items()):
            agr = sec["agreement"]
            judges = agr["judges"]
            m = np.eye(len(judges))
            for key, v in agr["pairwise_agreement"].items():
                a, b = key.split("~")
                m[judges.index(a), judges.index(b)] = m[judges.index(b), judges.index(a)] = v
            ax.imshow(m, vmin=0.5, vmax=1, cmap="Blues")
            for i in range(len(judges)):
                for j in range(len(judges)):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if m[i, j] > 0.8 else "black")
            short = [j.split("-")[0] for j in judges]
            if len(set(short)) < len(short):
                short = judges
            ax.set_xticks(range(len(judges)))
            ax.set_xticklabels(short, fontsize=8)
            ax.set_yticks(range(len(judges)))
            ax.set_yticklabels(short, fontsize=8)
            ax.set_title(f"{server}: Fleiss κ = {agr['fleiss_kappa']:.2f}", fontsize=9)
        fig.suptitle("Judge agreement (share of items two judges agree on)", fontsize=10)
        files.append(_save(fig, out / "judge_agreement.png"))
    return files


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sections(result: ScoreResult, notes: list[str]) -> list[tuple[str, list[str], list[list[Any]], str]]:
    """(title, headers, rows, paragraph) shared by the HTML and markdown renderings."""
    metric = headline_metric(result)
    board = _leaderboard_rows(result)
    extra_cols = [c for c in ("jury_accuracy_published", "bleu", "meteor", "rougeL_f", "sbert_cosine", "alignscore")
                  if any(c in r for r in board)]
    sections = []
    # Plain accuracy gets its own column only when the headline is another metric (the jury).
    also_accuracy = metric != "accuracy"
    headers = ["server", f"{metric} %", "95% CI", *(["accuracy %"] if also_accuracy else []),
               "n", "answered", "errors", "missing", *extra_cols]
    rows = [[r["server"], _fmt(r["headline"], True), f"{_fmt(r['ci_low'], True)}–{_fmt(r['ci_high'], True)}",
             *([_fmt(r["accuracy"], True)] if also_accuracy else []), r["n"], r["answered"], r["errors"], r["missing"],
             *[(_fmt(r.get(c), c.startswith("jury")) if not isinstance(r.get(c), str) else r[c]) for c in extra_cols]]
            for r in board]
    sections.append(("Leaderboard", headers, rows,
                     "Every question of the dataset is in every denominator; missing and failed answers count as wrong."))
    cats = sorted({r["group"] for r in result.rows if r["group_kind"] == "category" and r["metric"] == metric})
    if cats:
        rows = []
        for c in cats:
            cells = [result.value(s, metric, "category", c) for s in result.servers]
            rows.append([c, cells[0]["n"], *[f"{_fmt(x['value'], True)} [{_fmt(x['ci_low'], True)}, {_fmt(x['ci_high'], True)}]"
                                             for x in cells]])
        sections.append(("Per spatial category", ["category", "n", *result.servers], rows, ""))
    for name, comps in result.extra.get("comparisons", {}).items():
        if comps:
            rows = [[f"{c['a']} vs {c['b']}", c["n"], c["only_a_correct"], c["only_b_correct"],
                     f"{100 * c['difference']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]",
                     f"{c['mcnemar_p']:.3g}"] for c in comps]
            sections.append((f"Paired comparisons ({name})", ["pair", "n", "only A right", "only B right",
                                                              "difference (points, 95% CI)", "McNemar p"], rows, ""))
    sections += control_sections(result)
    jury = result.extra.get("jury", {}).get("servers", {})
    if jury:
        rows = []
        for server, sec in jury.items():
            agr = sec["agreement"]
            rows.append([server, _fmt(sec["aligned_accuracy"], True), _fmt(sec["published_accuracy"], True),
                         _fmt(sec["published_count"]), _fmt(agr["fleiss_kappa"]),
                         ", ".join(f"{j}: {100 * r:.2f}%" for j, r in agr["failure_rate"].items()),
                         "; ".join(sec["misaligned_files"]) or "none"])
        para = ("The jury counts a question correct when the mean of its judges' verdicts is ≥ 0.66 (2 of 3). "
                "'Aligned' joins each verdict to its prediction by question identity; 'as published' zips the "
                "verdict files by position, as the published pipeline did. Where a verdict file is misaligned "
                "the two differ: verdicts of one question were counted for another.")
        sections.append(("LLM jury and judge agreement", ["server", "jury % (aligned)", "jury % (as published)",
                                                          "published count", "Fleiss κ", "judge failure rate",
                                                          "misaligned verdict files"], rows, para))
        cats = sorted({r["group"] for r in result.rows
                       if r["group_kind"] == "category" and r["metric"] == "jury_accuracy_published"})
        if cats:
            rows = [[c, *[f"{_fmt(result.value(s, 'jury_accuracy', 'category', c)['value'], True)} / "
                          f"{_fmt(result.value(s, 'jury_accuracy_published', 'category', c)['value'], True)}"
                          for s in jury]] for c in cats]
            sections.append(("Jury per category: aligned / as published (%)", ["category", *jury], rows,
                             "The published per-category table divides by every question of the category and "
                             "uses the position-joined verdicts; 'aligned' uses identity-joined verdicts."))
        details = [[a["source"], a["summary"]] for sec in jury.values() for a in sec["alignment"] if not a["positional_ok"]]
        if details:
            sections.append(("Verdict files that do not line up", ["file", "finding"], details, ""))
    if result.attempts:
        sections.append(("Run attempts", ["#", "started", "finished", "command", "ctbench", "host", "backend", "servers"],
                         [_attempt_row(i, a) for i, a in enumerate(result.attempts, start=1)],
                         "Every `bench run` on this run folder, first to last (RUN/run.json)."))
    if notes:
        sections.append(("Notes", ["note"], [[n] for n in notes], ""))
    return sections


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


def write_report(result: ScoreResult, out_dir: str | Path, title: str = "", notes: list[str] | None = None) -> ReportFiles:
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
        figures = _figures(result, out)
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib":
            raise
        # scripts/setup.sh installs ctbench without extras: the tables still make a report.
        figures = []
        notes.append("No figures: matplotlib is not installed (pip install 'ctbench[report]').")
    notes = list(dict.fromkeys(notes))
    sections = _sections(result, notes)

    counted = result.subset_label or f"{result.n_questions} questions"
    md = [f"# {title}", "", f"{counted}, servers: {', '.join(result.servers)}.", ""]
    for name, headers, rows, para in sections:
        md += [f"## {name}", ""] + ([para, ""] if para else []) + [_md_table(headers, rows), ""]
    md += ["## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figures]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")

    css = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
           "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}"
           "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
           "th{background:#f0f3f7}img{max-width:100%;border:1px solid #eee;margin:.5em 0}h2{border-bottom:1px solid #ddd}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{css}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{html.escape(counted)}; servers: {html.escape(', '.join(result.servers))}.</p>"]
    for name, headers, rows, para in sections:
        parts.append(f"<h2>{html.escape(name)}</h2>" + (f"<p>{html.escape(para)}</p>" if para else "")
                     + _html_table(headers, rows))
    parts.append("<h2>Figures</h2>")
    for f in figures:
        data = base64.b64encode(f.read_bytes()).decode()
        parts.append(f"<figure><img alt='{f.stem}' src='data:image/png;base64,{data}'></figure>")
    parts.append("</body></html>")
    html_path = out / "report.html"
    html_path.write_text("\n".join(parts), encoding="utf-8")
    return ReportFiles(html_path, md_path, figures)
