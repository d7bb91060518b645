"""`bench data synth`: write the phantom benchmark."""
from __future__ import annotations

from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for qa_pairs.json, volumes/ and labels/ (label maps, kept out of volumes/).")
@click.option("--volumes", "n_volumes", default=12, show_default=True, help="Number of volumes (10 questions each).")
@click.option("--size", type=click.Choice(["small", "ct-rate"]), default="small", show_default=True, help="small: 96x96x64; ct-rate: 512x512x300 int16 for performance work.")
@click.option("--seed", default=0, show_default=True)
@click.option("--noise-hu", default=5.0, show_default=True, help="Gaussian noise (HU standard deviation) inside the body.")
@library_errors
def synth(out_dir, n_volumes, size, seed, noise_hu) -> None:
    """Generate CT-like phantom volumes with exact spatial ground truth.

    \b
    Example:
      bench data synth --out data/phantom --volumes 12
      bench run --servers all --dataset data/phantom/qa_pairs.json --out runs/phantom
    """
    from ctbench.datasets.phantom.generate import PhantomConfig, generate

    try:
        config = PhantomConfig(n_volumes=n_volumes, size=size, seed=seed, noise_hu=noise_hu)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    qa_path = generate(out_dir, config)
    click.echo(f"wrote {n_volumes} volumes and {n_volumes * 10} questions: {qa_path}")
