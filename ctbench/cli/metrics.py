"""`bench metrics`: metrics that run in an environment of their own (AlignScore)."""
from __future__ import annotations

from pathlib import Path

import click

from ctbench.cli.options import library_errors

METRICS = click.Choice(["alignscore"])


@click.group()
def metrics() -> None:
    """Set up the metrics whose stacks conflict with ctbench's, and fetch their weights.

    \b
    Example:
      bench metrics setup alignscore
      bench metrics fetch alignscore --weights ~/weights/alignscore
      bench score runs/phantom --metrics alignscore --alignscore-weights ~/weights/alignscore
    """


@metrics.command("setup")
@click.argument("name", type=METRICS)
@click.option("--venv", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the venv goes (default: $CTBENCH_ALIGNSCORE_VENV, else $CTBENCH_HOME/alignscore-venv, "
                   "else ~/.cache/ctbench/alignscore-venv).")
@click.option("--timeout", "timeout_s", type=click.IntRange(min=1), default=3600, show_default=True,
              help="Seconds each pip step may take.")
@library_errors
def setup(name, venv, timeout_s) -> None:
    """Create NAME's own venv from PyPI (idempotent; a complete one returns at once).

    \b
    Example:
      bench metrics setup alignscore --venv ~/.cache/ctbench/alignscore-venv
    """
    from ctbench.evaluation.alignscore import environment

    info = environment.setup(venv, say=click.echo, timeout_s=timeout_s)
    click.echo(f"{info['package']} with {len(info['installed'])} packages; left out: "
               + ", ".join(sorted(info["left_out"])))


@metrics.command("fetch")
@click.argument("name", type=METRICS)
@click.option("--weights", "weights_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The weights folder to fill (pass it to `bench score --alignscore-weights`).")
@click.option("--model", type=click.Choice(["base", "large"]), default="base", show_default=True)
@click.option("--dry-run", is_flag=True, help="Print what would be downloaded, from where, and stop.")
@library_errors
def fetch(name, weights_dir, model, dry_run) -> None:
    """Download the AlignScore checkpoint, its RoBERTa and NLTK's punkt_tab into a weights folder.

    Sources: the checkpoint from huggingface.co/yzha/AlignScore (the authors'), RoBERTa from
    huggingface.co/FacebookAI, punkt_tab from NLTK's nltk_data. Files already there are kept.

    \b
    Example:
      bench metrics fetch alignscore --weights ~/weights/alignscore --dry-run
    """
    from ctbench.evaluation.alignscore import weights

    if dry_run:
        for url, relative in weights.download_plan(model):
            click.echo(f"{url} -> {weights_dir / relative}")
        click.echo(f"about {weights.APPROX_GB[model]:g} GB")
        return
    weights.fetch(weights_dir, model, say=click.echo)
    click.echo(f"AlignScore-{model} weights complete in {weights_dir}")
