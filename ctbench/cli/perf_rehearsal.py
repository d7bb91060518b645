"""`bench perf rehearsal`: N CT-sized volumes through `bench run`, memory and time against N."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--volumes", "volume_counts", default="10,50,200", show_default=True,
              help="Comma-separated numbers of distinct volumes, one rehearsal per number.")
@click.option("--servers", default="chance,blind,geometric,medgemma,lingshu", show_default=True,
              help="Servers to run (medgemma and lingshu with tiny random weights).")
@click.option("--transports", default="reference,inline", show_default=True, help="reference, inline or both.")
@click.option("--size", type=click.Choice(["ct-rate", "small"]), default="ct-rate", show_default=True,
              help="ct-rate: 512x512x200 int16 .nii.gz; small: 96x96x64 (plumbing checks).")
@click.option("--published", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CT-SpatialVQA qa_pairs JSON for the open questions (default: shared/data/ct-spatialvqa above here).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the volumes and run folders go (default: the system's temporary folder).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the figures as JSON here.")
def rehearsal(volume_counts, servers, transports, size, published, workdir, out) -> None:
    """Dress rehearsal: peak RSS of every server and the runner, and wall time, against N volumes.

    Checks the goals (peak RSS within 20% from the second largest N to the largest, nothing
    lost, wall time linear in N) and prints PASS or FAIL for each.

    \b
    Example:
      bench perf rehearsal --volumes 10,50,200 --servers chance,geometric,medgemma --out rehearsal.json
      bench perf rehearsal --volumes 2,3 --size small --servers chance,geometric
    """
    from ctbench.runners.perf_rehearsal import find_published_questions, format_table, rehearsal_benchmark

    try:
        counts = tuple(int(v) for v in volume_counts.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {volume_counts!r}", param_hint="--volumes") from None
    if published is None:
        published = find_published_questions()
        if published is None:
            click.echo("CT-SpatialVQA questions not found (shared/data/ct-spatialvqa): phantom questions only", err=True)
    try:
        figures = rehearsal_benchmark(
            volume_counts=counts, servers=tuple(s.strip() for s in servers.split(",") if s.strip()),
            transports=tuple(t.strip() for t in transports.split(",") if t.strip()), size=size,
            published=published, workdir=workdir, announce=lambda m: click.echo(m, err=True),
            on_run=None if out is None else (lambda so_far: out.write_text(json.dumps(so_far, indent=1))),
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if out is not None:
        out.write_text(json.dumps(figures, indent=1))
    click.echo(format_table(figures))
    click.echo(f"machine: {figures['machine']}")
    if not all(goal["pass"] for goal in figures["goals"]):
        raise SystemExit(1)
