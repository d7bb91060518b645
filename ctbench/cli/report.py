"""`bench report`: HTML + markdown + PNG report for a run folder (or the reference runs)."""
from __future__ import annotations

from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.command()
@click.argument("run_dir", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where report.html, report.md and the PNGs go (default: RUN/report).")
@click.option("--metrics", "metric_opts", multiple=True, metavar="NAMES",
              help="Text metrics to include (as for `bench score`; e.g. offline). Default: none.")
@click.option("--reference", "reference", is_flag=False, flag_value="", default=None, metavar="[DIR]",
              help="Report on the published CT-SpatialVQA reference runs instead of a run folder.")
@click.option("--seed", default=0, show_default=True, help="Seed for drawing the example questions.")
@library_errors
def report(run_dir, out_dir, metric_opts, reference, seed) -> None:
    """Write a self-contained HTML report, a markdown summary and PNG figures.

    Run metadata and each server's model card; leaderboard, per category and per question
    type, all in percent with 95% CIs clustered by volume; paired comparisons; where
    RUN/judges/ holds verdicts, the jury and judge agreement; example questions with every
    server's answer (two per category, seeded, and those the servers disagree on most);
    error analysis; the run's attempts; how the intervals are computed.

    \b
    Example:
      bench report runs/phantom
      bench report --reference --metrics offline --out reference-report/
    """
    from ctbench.cli.score import _metric_names
    from ctbench.evaluation.report import write_report

    metrics = _metric_names(metric_opts)
    if reference is not None:
        from ctbench.evaluation.reference import load_reference_runs, score_reference

        ref = load_reference_runs(reference or None)
        result = score_reference(ref, metrics)
        target = Path(out_dir or "reference-report")
        notes = ["Reference runs of the CT-SpatialVQA paper; text metrics use the published protocol "
                 "(lower-cased, blank predictions skipped)."]
        files = write_report(result, target, "CT-SpatialVQA reference runs", notes, seed=seed)
    else:
        if run_dir is None:
            raise click.UsageError("give a run folder or --reference")
        from ctbench.evaluation import score_run

        result = score_run(run_dir, text_metrics=metrics)
        target = Path(out_dir) if out_dir else Path(run_dir) / "report"
        files = write_report(result, target, seed=seed)
    click.echo(f"wrote {files.html}, {files.markdown} and {len(files.figures)} figures in {target}")
