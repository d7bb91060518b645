"""`bench perf measure`: structures per second of `bench data qa measure` on a CT-sized label map."""
from __future__ import annotations

import json

import click

from ctbench.cli.options import library_errors


@click.command("measure")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 20), help="Timed repeats (medians reported).")
@click.option("--slices", default=300, show_default=True, type=click.IntRange(8, 2000), help="Slices of the 512x512 label map.")
@click.option("--pairs", type=click.Choice(["all", "lesions"]), default="all", show_default=True, help="Which pairs get questions.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@library_errors
def measure(repeats, slices, pairs, as_json) -> None:
    """Load, measure and build questions for a 512x512xN phantom label map; structures per second.

    \b
    Example:
      bench perf measure --repeats 3
    """
    from ctbench.datasets.measure.perf import measure_benchmark, report_lines

    figures = measure_benchmark(repeats=repeats, slices=slices, pairs=pairs)
    if as_json:
        click.echo(json.dumps(figures, indent=1))
        return
    for line in report_lines(figures):
        click.echo(line)
