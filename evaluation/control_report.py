"""The report's volume-control section: did the model read the volume? (`bench run --control`).

Tables from summary.json's `controls` section (`control_scores.py`), in the report's
(title, headers, rows, paragraph) form, so the HTML and markdown renderings show the same.
"""
from __future__ import annotations

from typing import Any

from ctbench.evaluation.scoring import ScoreResult

Section = tuple[str, list[str], list[list[Any]], str]


def _pct(value: float, low: float, high: float) -> str:
    return f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _points(value: float, low: float, high: float) -> str:
    return f"{100 * value:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def control_sections(result: ScoreResult) -> list[Section]:
    """The volume-control tables, or none when the run had no controls."""
    section = result.extra.get("controls")
    if not section:
        return []
    described = "; ".join(f"{name}: {record.get('description', '')}" for name, record in section["controls"].items())
    method = section["method"]
    overall = [[r["server"], r["control"], r["n"], _pct(r["real"], r["real_ci_low"], r["real_ci_high"]),
                _pct(r["control_accuracy"], r["control_ci_low"], r["control_ci_high"]),
                _points(r["difference"], r["ci_low"], r["ci_high"]), f"{r['mcnemar_p']:.3g}", r["control_errors"]]
               for r in section["rows"] if r["group_kind"] == "all"]
    sections: list[Section] = [(
        "Did the model read the volume? Volume controls",
        ["server", "control", "n", "real volumes %", "control %", "real − control (points)", "McNemar p", "control errors"],
        overall,
        f"The same questions asked again of changed volumes ({described}). Difference: {method['difference']}. "
        "A model that reads the image loses accuracy on shuffle, blank and noise, and keeps it on mirror-lr "
        "(whose expected answers have left and right swapped); a model that ignores the image scores the same on all.",
    )]
    servers = list(dict.fromkeys(r["server"] for r in section["rows"]))
    by_group: dict[tuple[str, str], dict[str, dict]] = {}
    for r in section["rows"]:
        if r["group_kind"] == "category":
            by_group.setdefault((r["control"], r["group"]), {})[r["server"]] = r
    if by_group:
        rows = [[control, group, *[_points(c[s]["difference"], c[s]["ci_low"], c[s]["ci_high"]) if s in c else "-"
                                   for s in servers]]
                for (control, group), c in sorted(by_group.items())]
        sections.append(("Real − control accuracy per category (points, 95% CI)", ["control", "category", *servers], rows,
                         f"Reliance is the shuffle rows: {method['reliance']}. Categories overlap (a question can "
                         "belong to several), so the rows do not add up to the overall figure."))
    mirror = section.get("mirror_consistency") or {}
    if mirror:
        rows = [[server, _pct(c["flip"]["value"], c["flip"]["ci_low"], c["flip"]["ci_high"]), c["flip"]["n"],
                 _pct(c["stay"]["value"], c["stay"]["ci_low"], c["stay"]["ci_high"]), c["stay"]["n"], c["not_answered"]]
                for server, c in mirror.items()]
        sections.append(("Mirror consistency (mirror-lr)", ["server", "flip %", "n", "stay %", "n", "not answered"], rows,
                         f"Flip: {method['mirror_flip']}. Stay: {method['mirror_stay']}. "
                         "All percentages here are of 0–100; intervals are 95%, clustered by volume."))
    return sections
