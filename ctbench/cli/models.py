"""`bench models`: list the published VLMs and fetch their weights."""
from __future__ import annotations

from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.group()
def models() -> None:
    """The published 3D medical VLMs: their weights, licences and servers.

    \b
    Example:
      bench models list
      bench models fetch medgemma --weights-dir ~/weights/medgemma
    """


@models.command("list")
@click.option("--weights-root", type=click.Path(file_okay=False, path_type=Path),
              help="Also say whether each model's weights are complete under ROOT/<name>.")
@library_errors
def list_models(weights_root) -> None:
    """Each model's weights id, licence, access and size.

    \b
    Example:
      bench models list --weights-root ~/weights
    """
    from rich.console import Console
    from rich.table import Table

    from ctbench.model_servers.vlm_common.catalog import CATALOG
    from ctbench.model_servers.vlm_common.weights import missing_files

    table = Table("model", "weights", "licence", "access", "size")
    if weights_root is not None:
        table.add_column("present")
    for name, entry in sorted(CATALOG.items()):
        row = [name, entry.weights_id, entry.license, "gated" if entry.gated else "open", f"~{entry.approx_gb:g} GB"]
        if weights_root is not None:
            missing = missing_files(weights_root / name, entry.required)
            row.append("yes" if not missing else f"missing {len(missing)}")
        table.add_row(*row)
    Console(width=200).print(table)


@models.command("fetch")
@click.argument("name")
@click.option("--weights-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the weights go; mount it read-only at /weights for the model's container.")
@click.option("--token", envvar="HF_TOKEN", help="Hugging Face token (default: $HF_TOKEN or the `hf auth login` one).")
@library_errors
def fetch_weights(name, weights_dir, token) -> None:
    """Download NAME's weights (resumable, checksummed) and write a manifest.

    Gated models need their terms accepted on huggingface.co first; the licence is printed
    before anything is downloaded.

    \b
    Example:
      bench models fetch lingshu --weights-dir ~/weights/lingshu
    """
    from ctbench.model_servers.vlm_common.fetch import fetch

    result = fetch(name, weights_dir, token=token, say=click.echo)
    click.echo(f"{len(result.files)} files verified in {result.weights_dir}")
    if result.missing:
        raise click.ClickException(f"{name}: still missing {', '.join(result.missing)}")
