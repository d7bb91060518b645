"""`bench`: a thin click layer over the library. Each command parses, calls one library
function, and prints. Commands live one module each under ctbench/cli/ and load lazily, so
`bench --help` does not import grpc, SimpleITK or torch."""
from __future__ import annotations

import importlib
import importlib.util

import click

from ctbench import __version__

# name -> "module:attribute"; add a line here when a command module is added.
COMMANDS = {
    "conformance": "ctbench.cli.conformance:conformance",
    "data": "ctbench.cli.data:data",
    "deploy": "ctbench.cli.deploy:deploy",
    "init": "ctbench.cli.init:init",
    "metrics": "ctbench.cli.metrics:metrics",
    "models": "ctbench.cli.models:models",
    "perf": "ctbench.cli.perf:perf",
    "report": "ctbench.cli.report:report",
    "run": "ctbench.cli.run:run",
    "score": "ctbench.cli.score:score",
    "selftest": "ctbench.cli.selftest:selftest",
    "serve": "ctbench.cli.serve:serve",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(self.commands)
        for name, target in COMMANDS.items():
            if importlib.util.find_spec(target.split(":")[0]) is not None:
                names.add(name)
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ctbench")
def main() -> None:
    """ctbench: test whether 3D medical VLMs understand space in CT volumes.

    \b
    Example:
      bench run --servers all --dataset synthetic --out runs/phantom
      bench score runs/phantom
    """
