"""The report's PNG figures (matplotlib, the `report` extra).

Leaderboard (headline accuracy with 95% CI by volume), per-category bars with their intervals
and each server's overall level, answer-length distributions, the question x model correctness
heatmap, and judge agreement. Values are percentages, as everywhere in the report.
"""
from __future__ import annotations

from pathlib import Path

from ctbench.evaluation.report_tables import headline_label, headline_metric, leaderboard_rows
from ctbench.evaluation.scoring import ScoreResult


def write_figures(result: ScoreResult, out: Path, plt) -> list[Path]:
    """Every figure the run supports, as PNGs in `out`; `plt` is matplotlib.pyplot (Agg)."""
    import numpy as np

    metric = headline_metric(result)
    label = headline_label(result)
    files = []
    servers = result.servers
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    board = leaderboard_rows(result)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(board)))
    vals = [100 * r["headline"] for r in board]
    err = [[100 * (r["headline"] - r["ci_low"]) for r in board], [100 * (r["ci_high"] - r["headline"]) for r in board]]
    ax.barh([r["server"] for r in board][::-1], vals[::-1], xerr=[e[::-1] for e in err], color=colors[0], capsize=4)
    for i, r in enumerate(board[::-1]):
        ax.text(100 * r["ci_high"] + 1.5, i, f"{100 * r['headline']:.1f}", va="center", fontsize=9)
    ax.set_xlabel(f"{label} (%), 95% CI clustered by volume")
    ax.set_xlim(0, 100)
    ax.set_title("Leaderboard")
    files.append(_save(plt, fig, out / "leaderboard.png"))

    cats = sorted({r["group"] for r in result.rows if r["group_kind"] == "category" and r["metric"] == metric})
    if cats:
        fig, ax = plt.subplots(figsize=(9, 4.2))
        width = 0.8 / max(len(servers), 1)
        x = np.arange(len(cats))
        for k, s in enumerate(servers):
            cells = [result.value(s, metric, "category", c) for c in cats]
            v = [100 * c["value"] for c in cells]
            err = [[100 * (c["value"] - c["ci_low"]) for c in cells], [100 * (c["ci_high"] - c["value"]) for c in cells]]
            ax.bar(x + k * width - 0.4 + width / 2, v, width, yerr=err, capsize=2, error_kw={"elinewidth": 0.8},
                   label=s, color=colors[k % len(colors)])
        overall = [100 * result.value(s, metric)["value"] for s in servers]
        ax.set_xticks(x)
        ax.set_xticklabels([c.replace(" (", "\n(").replace(" & ", " &\n") for c in cats], fontsize=7)
        for k, v in enumerate(overall):
            ax.axhline(v, color=colors[k % len(colors)], linestyle=":", linewidth=1)
        ax.set_ylabel(f"{label} (%), 95% CI by volume")
        ax.set_ylim(0, 105)
        ax.set_title("Per spatial category (dotted line: each server's overall)")
        ax.legend(fontsize=8)
        files.append(_save(plt, fig, out / "categories.png"))

    fig, ax = plt.subplots(figsize=(8, 3.8))
    names = ["reference", *servers]
    data = [result.answer_words.get(n, []) or [0] for n in names]
    ax.boxplot(data, orientation="horizontal", showfliers=False)
    ax.set_yticks(range(1, len(names) + 1))
    ax.set_yticklabels(names)
    ax.set_xlabel("answer length (words); boxes show quartiles, whiskers 1.5 IQR")
    ax.set_title("Answer-length distributions")
    files.append(_save(plt, fig, out / "answer_lengths.png"))

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
        ax.set_title(f"Correctness by {label}\ngreen = correct", fontsize=10)
        files.append(_save(plt, fig, out / "correctness_heatmap.png"))

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
                    ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=8,
                            color="white" if m[i, j] > 0.8 else "black")
            short = [j.split("-")[0] for j in judges]
            if len(set(short)) < len(short):
                short = judges
            ax.set_xticks(range(len(judges)))
            ax.set_xticklabels(short, fontsize=8)
            ax.set_yticks(range(len(judges)))
            ax.set_yticklabels(short, fontsize=8)
            kappa = agr["fleiss_kappa"]
            ax.set_title(f"{server}: Fleiss κ = {kappa:.2f}" if kappa == kappa else f"{server}: judges never differ",
                         fontsize=9)
        fig.suptitle("Judge agreement (% of items two judges agree on)", fontsize=10)
        files.append(_save(plt, fig, out / "judge_agreement.png"))
    return files


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
