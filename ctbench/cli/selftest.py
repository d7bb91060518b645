"""`bench selftest MODEL`: load, serve and question a tiny random-weight MODEL in this environment."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.command()
@click.argument("model_name", metavar="MODEL")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the tiny weights, phantom volume and server log here (default: a temporary folder).")
@click.option("--load-timeout", "load_timeout_s", default=300.0, show_default=True,
              help="How long the server may take to load the tiny model, seconds.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A `bench serve` option for the tiny model, repeatable (e.g. variant=published).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the report as JSON here.")
@library_errors
def selftest(model_name, workdir, load_timeout_s, options, json_path) -> None:
    """Check that MODEL's server loads, serves and answers here, with no weights: a tiny
    random-weight instance of the model's real architecture is built, served by `bench serve`
    on loopback and asked phantom questions (open and with options). Each stage (imports,
    build, serve, load, describe, answers) is timed. Exits 1 when a stage fails.

    \b
    Example (inside a model's image, right after building it):
      bench selftest medgemma --json selftest.json
      bench selftest vila-m3 --option variant=published
    """
    from ctbench.model_servers.selftest import run_selftest

    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {option!r}", param_hint="--option")
        parsed[key] = value
    report = run_selftest(model_name, workdir=workdir, load_timeout_s=load_timeout_s, options=parsed)
    click.echo(report.to_text())
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if not report.passed:
        raise SystemExit(report.exit_code)
