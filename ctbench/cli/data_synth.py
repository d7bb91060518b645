"""PLACEHOLDER on the datasets branch only: the lead's `bench data synth` lives here on main.
On merge, take main's version of this file."""
from __future__ import annotations

import click


@click.command("synth")
def synth() -> None:
    """Phantom benchmark (placeholder until the lead's command is merged)."""
    raise click.ClickException("bench data synth is not on this branch")
