"""`bench conformance HOST:PORT`: check a model server against the protocol before shipping it.

Its options are parsed by `ctbench.server_cli` (argparse), which ctbench-sdk carries, so a
server's environment without click has the same command; this module only lists it in `bench`."""
from __future__ import annotations

import click

from ctbench.cli.options import library_errors, passed_through


@click.command(**passed_through)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@library_errors
def conformance(args: tuple[str, ...]) -> None:
    """Check a model server (HOST:PORT, --image or --serve) against the protocol and what its model is fed; `bench conformance --help` lists the options.

    \b
    Example:
      bench conformance 127.0.0.1:50051 --data-root ./data --json conformance.json
    """
    from ctbench.server_cli import conformance as run

    run(args)
