"""`bench serve MODEL`: run one model server (what every container's entrypoint calls).

Its options are parsed by `ctbench.server_cli` (argparse), which ctbench-sdk carries, so a
server's environment without click has the same command; this module only lists it in `bench`."""
from __future__ import annotations

import click

from ctbench.cli.options import library_errors, passed_through


@click.command(**passed_through)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@library_errors
def serve(args: tuple[str, ...]) -> None:
    """Serve MODEL over gRPC (AnswerVolumeQuestion, health, reflection); `bench serve --help` lists the options.

    \b
    Example:
      bench serve geometric --port 50051 --data-root /data
    """
    from ctbench.server_cli import serve as run

    run(args)
