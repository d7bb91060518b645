"""`bench perf ingest`: time loading once + all eight presets against per-model preprocessing."""
from __future__ import annotations

import json

import click

from ctbench.cli.options import library_errors


def _shape(ctx, param, value: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three integers like 300,512,512, got {value!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"expected three positive integers like 300,512,512, got {value!r}")
    return shape


@click.command("ingest")
@click.option("--shape", default="300,512,512", show_default=True, callback=_shape,
              help="Volume shape (slices,rows,cols) of the synthetic int16 gzip NIfTI.")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1, 20), help="Runs per side; the best is reported.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="Where to write the NIfTI (default: a temporary folder).")
@click.option("--backend", type=click.Choice(["sitk", "torch"]), default="sitk", show_default=True,
              help="Resampling backend for the shared side (torch uses CUDA when present).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@library_errors
def ingest(shape, repeats, workdir, backend, as_json):
    """Ingest benchmark: decode a CT-RATE-sized volume once and build all eight model inputs,
    against each model re-reading the file and preprocessing on its own.

    \b
    Example:
      bench perf ingest --repeats 3
      bench perf ingest --shape 60,128,128 --json
      bench perf ingest --backend torch     # on a GPU host
    """
    from ctbench.preprocess.benchmark import ingest_benchmark

    report = ingest_benchmark(shape=shape, repeats=repeats, workdir=workdir, backend=backend)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"volume {'x'.join(map(str, report['shape']))} int16, gzip NIfTI {report['file_bytes'] / 1e6:.1f} MB, "
               f"{report['threads']} threads, resampling: {report.get('resampling_backend', 'sitk')}, "
               f"slice resize: {report['slice_resize_backend']}")
    click.echo(f"load once + 8 presets : {report['shared_s']:.2f} s")
    click.echo(f"per model (published) : {report['per_model_s']:.2f} s")
    click.echo(f"ratio                 : {report['ratio']:.2f}x (best of each side; median of "
               f"{len(report.get('runs', []))} runs {report.get('median_run_ratio', report['ratio']):.2f}x)")
    for side in ("shared", "per_model"):
        parts = ", ".join(f"{k} {v:.2f}" for k, v in report[f"{side}_breakdown_s"].items() if v >= 0.01)
        click.echo(f"{side.replace('_', ' ')} time goes to (s): {parts}")
