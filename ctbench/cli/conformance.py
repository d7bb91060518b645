"""`bench conformance HOST:PORT`: check a model server against the protocol before shipping it."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.command()
@click.argument("address", metavar="[HOST:PORT]", required=False)
@click.option("--image", help="Instead of HOST:PORT: start this image in Docker (as `bench run` would), check it, stop it.")
@click.option("--serve", "serve_model", metavar="MODEL",
              help="Instead of HOST:PORT: start `bench serve MODEL` as a local process, check it, stop it "
                   "(a server that dies is reported with its exit code and log).")
@click.option("--option", "serve_options", multiple=True, metavar="KEY=VALUE",
              help="With --serve: an option for the model (repeatable), as `bench serve --option`.")
@click.option("--model", "model_name", help="With --image: the model name the image serves (default: the image's name).")
@click.option("--gpu", is_flag=True, help="With --image: request the GPUs for the container.")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False, writable=True, path_type=Path),
              help="The host folder the server mounts as its data root (e.g. what is mounted at /data). "
                   "Probe volumes are written under it to test by-reference volumes; without it that check is skipped.")
@click.option("--check", "only", multiple=True, metavar="NAME",
              help="Run only this check (repeatable): health, describe, input, reference, inline, questions, "
                   "reuse, bad-items, chunked, cancel, orientation.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, help="Bound on each stream, seconds.")
@click.option("--slow", "slow_s", default=5.0, show_default=True,
              help="Warn when one answer (or InspectInput) takes longer than this, seconds.")
@click.option("--health-timeout", "health_timeout_s", default=60.0, show_default=True,
              help="How long to wait for health to reach SERVING, seconds.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the report as JSON here.")
@library_errors
def conformance(address, image, serve_model, serve_options, model_name, gpu, data_root, only, timeout_s, slow_s,
                health_timeout_s, json_path) -> None:
    """Check the server at HOST:PORT (or the image given with --image, or `bench serve MODEL` with
    --serve): Describe, health, what the model is fed (InspectInput against the card's InputSpec),
    both volume transports, open questions and questions with options, volume reuse, typed errors
    for bad items, cancellation, chunked large volumes and the orientation probe. Prints each
    check's time and warns about slow answers. Exits 1 when any check fails.

    \b
    Examples:
      bench serve mymodel --port 50051 --data-root ./data &
      bench conformance 127.0.0.1:50051 --data-root ./data --json conformance.json
      bench conformance --serve mymodel --option variant=authors
      bench conformance --image ctbench/mymodel:latest --model mymodel
    """
    from ctbench.conformance import ConformanceOptions, run_conformance

    if sum(x is not None for x in (address, image, serve_model)) != 1:
        raise click.UsageError("give one of HOST:PORT, --image IMAGE or --serve MODEL")
    if serve_options and serve_model is None:
        raise click.UsageError("--option goes with --serve MODEL")
    for item in serve_options:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--option")
    if address is not None and ":" not in address:
        raise click.BadParameter(f"expected HOST:PORT, got {address!r}", param_hint="HOST:PORT")
    options = ConformanceOptions(data_root=data_root, timeout_s=timeout_s, slow_s=slow_s,
                                 health_timeout_s=health_timeout_s, only=tuple(only))
    progress = _live_progress() if sys.stderr.isatty() else None
    if image is not None:
        from ctbench.conformance.container import run_conformance_in_container

        model = model_name or image.rsplit("/", 1)[-1].split(":", 1)[0]
        report = run_conformance_in_container(image, model, options, gpu=gpu, progress=progress)
    elif serve_model is not None:
        from ctbench.conformance.started_server import run_conformance_serving

        args = tuple(a for item in serve_options for a in ("--option", item))
        report = run_conformance_serving(serve_model, args, options, progress=progress)
    else:
        report = run_conformance(address, options, progress)
    click.echo(report.to_text())
    if json_path is not None:
        json_path.write_text(report.to_json() + "\n")
    if not report.passed:
        raise SystemExit(1)


def _live_progress():
    """One line per check on stderr as it finishes (a terminal only; the report follows)."""

    def show(result) -> None:
        mark = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}[result.status]
        click.echo(f"  {mark}  {result.name}  [{result.seconds:.2f}s]" + (" (slow)" if result.warnings and
                   any(w.startswith("slow:") for w in result.warnings) else ""), err=True)

    return show
