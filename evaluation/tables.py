"""Terminal tables (rich) for a ScoreResult: overall per server, then per group."""
from __future__ import annotations

from rich.table import Table

from ctbench.evaluation.metric_registry import declared
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


#: The jury and the text metrics, in declaration order (`metric_registry.py`).
TEXT_METRIC_ORDER = tuple(spec.name for spec in declared() if spec.table == "text")


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


def _pp(value: float, low: float, high: float) -> str:
    """A difference in percentage points with its interval."""
    return f"{100 * value:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def _ci(cell: dict) -> str:
    return f"{100 * cell['value']:.1f} [{100 * cell['ci_low']:.1f}, {100 * cell['ci_high']:.1f}]"


def controls_tables(result: ScoreResult) -> list[Table]:
    """Volume controls (`bench run --control`): accuracy on the real volumes against each control,
    reliance per category, mirror consistency. Empty when the run had no controls."""
    section = result.extra.get("controls")
    if not section:
        return []
    tables = []
    overall = Table(title="Volume controls: accuracy % on the real volumes vs each control (paired, 95% CI by volume)")
    for col in ("server", "control", "n", "real", "control volume", "real − control (points)", "McNemar p"):
        overall.add_column(col, justify="left" if col in ("server", "control") else "right")
    for row in (r for r in section["rows"] if r["group_kind"] == "all"):
        overall.add_row(row["server"], row["control"], str(row["n"]),
                        _ci({"value": row["real"], "ci_low": row["real_ci_low"], "ci_high": row["real_ci_high"]}),
                        _ci({"value": row["control_accuracy"], "ci_low": row["control_ci_low"], "ci_high": row["control_ci_high"]}),
                        _pp(row["difference"], row["ci_low"], row["ci_high"]), f"{row['mcnemar_p']:.3g}")
    tables.append(overall)
    shuffle_rows = [r for r in section["rows"] if r["control"] == "shuffle"]
    if shuffle_rows:
        servers = list(dict.fromkeys(r["server"] for r in shuffle_rows))
        reliance = Table(title="Volume reliance: real − shuffled accuracy (points, 95% CI by volume)")
        reliance.add_column("category")
        for server in servers:
            reliance.add_column(server, justify="right")
        for group in dict.fromkeys(r["group"] for r in shuffle_rows):
            cells = {r["server"]: r for r in shuffle_rows if r["group"] == group}
            reliance.add_row(group, *[_pp(cells[s]["difference"], cells[s]["ci_low"], cells[s]["ci_high"]) if s in cells else "-"
                                      for s in servers])
        tables.append(reliance)
    if section.get("mirror_consistency"):
        mirror = Table(title="Mirror consistency (mirror-lr): answers naming a side that flip; answers that should stay that stay (%)")
        for col in ("server", "flip", "n", "stay", "n", "not answered"):
            mirror.add_column(col, justify="left" if col == "server" else "right")
        for server, cell in section["mirror_consistency"].items():
            mirror.add_row(server, _ci(cell["flip"]), str(cell["flip"]["n"]), _ci(cell["stay"]), str(cell["stay"]["n"]),
                           str(cell["not_answered"]))
        tables.append(mirror)
    return tables
