"""Terminal tables (rich) for a ScoreResult: overall per server, then per group."""
from __future__ import annotations

from rich.table import Table

from ctbench.evaluation.scoring import ScoreResult


def _pct(row: dict) -> str:
    return f"{100 * row['value']:.1f} [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"


def overall_table(result: ScoreResult) -> Table:
    counted = result.subset_label or f"{result.n_questions} questions"
    table = Table(title=f"{result.dataset_name}: {counted} (accuracy %, 95% CI by volume)")
    for col in ("server", "accuracy", "exact match", "n", "answered", "errors", "missing"):
        table.add_column(col, justify="left" if col == "server" else "right")
    for server in result.servers:
        acc = result.overall(server, "accuracy")
        em = result.overall(server, "exact_match")
        table.add_row(server, _pct(acc), _pct(em), str(acc["n"]), str(acc["answered"]),
                      str(acc["errors"]), str(acc["missing"]))
    return table


def group_table(result: ScoreResult, kind: str, metric: str = "accuracy") -> Table | None:
    rows = [r for r in result.rows if r["group_kind"] == kind and r["metric"] == metric]
    if not rows:
        return None
    groups = sorted({r["group"] for r in rows})
    table = Table(title=f"{metric} % per {kind.replace('_', ' ')}")
    table.add_column(kind.replace("_", " "))
    table.add_column("n", justify="right")
    for server in result.servers:
        table.add_column(server, justify="right")
    for group in groups:
        cells = {r["server"]: r for r in rows if r["group"] == group}
        n = next(iter(cells.values()))["n"]
        table.add_row(group, str(n), *[_pct(cells[s]) if s in cells else "-" for s in result.servers])
    return table


TEXT_METRIC_ORDER = ("jury_accuracy", "jury_accuracy_published", "bleu", "meteor", "rouge1_f", "rouge2_f",
                     "rougeL_f", "sbert_cosine", "alignscore")


def text_table(result: ScoreResult) -> Table:
    """Overall text metrics and jury per server (unavailable metrics show their reason)."""
    rows = [r for r in result.rows if r["group_kind"] == "all" and r["metric"] in TEXT_METRIC_ORDER]
    present = [m for m in TEXT_METRIC_ORDER if any(r["metric"] == m for r in rows)]
    table = Table(title="text metrics and jury (overall)")
    table.add_column("server")
    for m in present:
        table.add_column(m, justify="right")
    notes = []
    for server in result.servers:
        cells = []
        for m in present:
            row = next((r for r in rows if r["server"] == server and r["metric"] == m), None)
            if row is None:
                cells.append("-")
            elif row["value"] is None:
                cells.append("n/a")
                notes.append(f"{server} {m}: {row['note']}")
            else:
                cells.append(f"{row['value']:.4f}")
        table.add_row(server, *cells)
    if notes:
        table.caption = "; ".join(sorted(set(notes)))
    return table


def comparison_table(checks: list[dict]) -> Table:
    table = Table(title="reproduction of the published figures")
    for col in ("model", "figure", "ours", "published", "|diff|", "ok"):
        table.add_column(col, justify="left" if col in ("model", "figure") else "right")
    for c in checks:
        ok = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "(info)"}[c["ok"]]
        table.add_row(c["model"], c["figure"], f"{c['ours']:.6f}" if c["ours"] is not None else "-",
                      f"{c['published']:.6f}", f"{c['abs_diff']:.1e}" if c["abs_diff"] is not None else "-", ok)
    return table
