"""The report's section on measured numbers: accuracy within the tolerance and MRA per server
and question type, and the predictions no number could be read from (`numeric_scoring.py`)."""
from __future__ import annotations

from ctbench.evaluation.report_tables import Section, Table, pct_ci
from ctbench.evaluation.scoring import ScoreResult

MAX_LISTED = 20


def numeric_section(result: ScoreResult) -> Section | None:
    section = result.extra.get("numeric")
    if not section:
        return None
    rows = {(r["server"], r["group_kind"], r["group"], r["metric"]): r for r in result.rows
            if r["metric"] in ("numeric_accuracy", "mra")}
    keys = sorted({(server, kind, group) for server, kind, group, _ in rows}, key=lambda k: (k[0], k[1] != "all", k[2]))
    table = Table(["server", "question type", "n", "within tolerance % [95% CI]", "MRA % [95% CI]", "unparseable"], [
        [server, "all" if kind == "all" else group, rows[(server, kind, group, "mra")]["n"],
         pct_ci(rows[(server, kind, group, "numeric_accuracy")]), pct_ci(rows[(server, kind, group, "mra")]),
         len(section["unparseable"].get(server, [])) if kind == "all" else ""]
        for server, kind, group in keys
    ])
    listed = [[server, u["question_id"], u["prediction"], u["reason"]]
              for server, entries in sorted(section["unparseable"].items()) for u in entries][:MAX_LISTED]
    tables = [table]
    if listed:
        tables.append(Table(["server", "question", "prediction", "why no number"], listed, text=True))
    thresholds = section["mra_thresholds"]
    paragraphs = [
        f"Open questions whose answer is a measured number with a unit. Within tolerance: the relative error "
        f"|prediction - reference| / reference is at most {100 * section['tolerance_relative']:g}% (this is the "
        f"question's accuracy above). MRA (mean relative accuracy, as VSI-Bench): the fraction of thresholds "
        f"θ = {thresholds[0]:.2f}, {thresholds[1]:.2f}, ..., {thresholds[-1]:.2f} at which the relative error is "
        "below 1 - θ. A prediction with no readable number, or with a unit of the wrong kind, counts as wrong"
        + (f"; the first {MAX_LISTED} are listed." if listed else "."),
    ]
    return Section("Numeric answers", paragraphs, tables)


def numeric_terminal_table(result: ScoreResult):
    """The same figures for `bench score`'s terminal (rich), overall per server; None without numbers."""
    section = result.extra.get("numeric")
    if not section:
        return None
    from rich.table import Table as RichTable

    table = RichTable(title=f"measured numbers (within {100 * section['tolerance_relative']:g}% relative; MRA), % with 95% CI")
    for col in ("server", "within tolerance", "MRA", "n", "unparseable"):
        table.add_column(col, justify="left" if col == "server" else "right")
    for server in result.servers:
        try:
            within, mra = result.overall(server, "numeric_accuracy"), result.overall(server, "mra")
        except KeyError:
            continue
        table.add_row(server, pct_ci(within), pct_ci(mra), str(mra["n"]), str(len(section["unparseable"].get(server, []))))
    return table
