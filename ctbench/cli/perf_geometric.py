"""`bench perf geometric`: the volume-reading baseline's time per volume against decoding it."""
from __future__ import annotations

import json

import click

from ctbench.cli.options import library_errors


@click.command("geometric")
@click.option("--data", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A phantom qa_pairs.json (default: generate one in a temporary folder).")
@click.option("--volumes", default=2, show_default=True, type=click.IntRange(1, 50), help="Volumes to generate.")
@click.option("--size", type=click.Choice(["ct-rate", "small"]), default="ct-rate", show_default=True,
              help="Size of the generated phantom (ct-rate: 512x512x300 int16).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@library_errors
def geometric(data, volumes, size, as_json):
    """Seconds per volume for `geometric` to answer all its questions, side by side with the
    seconds to decode the volume, on a phantom benchmark (answers checked against its truth).

    \b
    Example:
      bench perf geometric --volumes 2
      bench data synth --size ct-rate --volumes 2 --out /tmp/ctr && bench perf geometric --data /tmp/ctr/qa_pairs.json
    """
    from ctbench.model_servers.baselines.geometric_benchmark import geometric_benchmark, report_lines

    report = geometric_benchmark(data=data, volumes=volumes, size=size)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in report_lines(report):
        click.echo(line)
