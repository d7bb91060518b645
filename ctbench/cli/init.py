"""`bench init DIR`: write a project folder (registry, Dockerfiles, .proto, template server)."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace project files already in DIRECTORY.")
def init(directory: Path, force: bool) -> None:
    """Write a ctbench project folder to DIRECTORY to edit: the server registry
    (compose/compose.yaml), the Dockerfiles and their build context, the .proto, the model-team
    guide (docs/) and its template server (dockerfiles/template/).

    `bench` never needs this folder: an installed ctbench carries the same files and uses them.
    Run `bench` from DIRECTORY (or pass --registry DIRECTORY/compose/compose.yaml) to use your
    edited registry.

    \b
    Example:
      bench init my-bench && cd my-bench && bench run --servers chance,blind
    """
    from ctbench.project import REGISTRY, write_project

    try:
        dest = write_project(directory, overwrite=force)
    except FileExistsError as exc:
        raise click.ClickException(f"{exc}; use --force to replace them") from None
    click.echo(f"wrote a ctbench project folder to {dest}")
    click.echo(f"  registry: {dest / REGISTRY}")
    click.echo(f"  guide:    {dest / 'docs' / 'shipping-a-model-container.md'}")
