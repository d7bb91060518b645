"""Every `bench` command has help text with an example."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from ctbench.cli import COMMANDS, main


def _walk(group: click.Group, ctx: click.Context, prefix=()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _walk(command, click.Context(command, info_name=name, parent=ctx), prefix + (name,))


def test_every_listed_command_module_exists():
    ctx = click.Context(main)
    assert set(main.list_commands(ctx)) == set(COMMANDS), "a command in COMMANDS has no module"


@pytest.mark.parametrize("path", [p for p, _ in _walk(main, click.Context(main))], ids=lambda p: " ".join(p))
def test_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "usage:" in result.output.lower()
    command = main
    for name in path:
        command = command.get_command(click.Context(command), name)
    assert (command.help or "").strip(), f"bench {' '.join(path)} has no help text"
    assert "example" in result.output.lower(), f"bench {' '.join(path)} --help shows no example"
