"""Terminal tables (rich) for a ScoreResult: overall per server, then per group."""
from __future__ import annotations

from rich.table import Table

from ctbench.evaluation.scoring import ScoreResult


def _pct(row: dict) -> str:
    return f"{100 * row['value']:.1f} [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"


def overall_table(result: ScoreResult) -> Table:
    table = Table(title=f"{result.dataset_name}: {result.n_questions} questions (accuracy %, 95% CI by volume)")
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
