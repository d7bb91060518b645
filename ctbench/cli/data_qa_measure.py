"""`bench data qa measure`: measured spatial questions from CT volumes and their label maps."""
from __future__ import annotations

from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.command("measure")
@click.option("--volumes", "volumes_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="Folder of CT volumes (.nii/.nii.gz).")
@click.option("--labels", "labels_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="Folder of label maps, one per volume with the same file name, on the volume's grid.")
@click.option("--label-table", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
              help="JSON or CSV: label value -> name, laterality, kind (datasets/README.md).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for dataset.jsonl, measurements.json and manifest.json.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder the image paths are relative to (default: --volumes); bench run's --data-root.")
@click.option("--pairs", type=click.Choice(["lesions", "all"]), default="lesions", show_default=True,
              help="Pairs asked about: those with at least one lesion, or every pair.")
@library_errors
def measure(volumes_dir, labels_dir, label_table, out_dir, data_root, pairs) -> None:
    """Measure every labelled structure and pair in patient space and write questions about them.

    \b
    Example:
      bench data synth --out data/phantom
      bench data qa measure --volumes data/phantom/volumes --labels data/phantom/labels \\
          --label-table data/phantom/labels/label_table.json --out data/measured
      bench run --servers geometric,blind --dataset data/measured/dataset.jsonl \\
          --data-root data/phantom/volumes --out runs/measured
    """
    from ctbench.datasets.measure.build import build_measured_dataset

    manifest = build_measured_dataset(
        volumes_dir, labels_dir, label_table, out_dir, data_root=data_root, pairs=pairs,
        on_volume=lambda name, n: click.echo(f"{name}: {n} questions", err=True),
    )
    click.echo(f"{manifest['n_questions']} questions over {manifest['n_volumes']} volumes; sha256 {manifest['sha256']}")
    for qtype, count in manifest["per_question_type"].items():
        click.echo(f"  {count:6d}  {qtype}")
    click.echo(f"wrote {out_dir / 'dataset.jsonl'}, {out_dir / 'measurements.json'} and {out_dir / 'manifest.json'}")
