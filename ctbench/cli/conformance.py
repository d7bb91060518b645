"""`bench conformance HOST:PORT`: check a model server against the protocol before shipping it."""
from __future__ import annotations

from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.command()
@click.argument("address", metavar="[HOST:PORT]", required=False)
@click.option("--image", help="Instead of HOST:PORT: start this image in Docker (as `bench run` would), check it, stop it.")
@click.option("--model", "model_name", help="With --image: the model name the image serves (default: the image's name).")
@click.option("--gpu", is_flag=True, help="With --image: request the GPUs for the container.")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False, writable=True, path_type=Path),
              help="The host folder the server mounts as its data root (e.g. what is mounted at /data). "
                   "Probe volumes are written under it to test by-reference volumes; without it that check is skipped.")
@click.option("--check", "only", multiple=True, metavar="NAME",
              help="Run only this check (repeatable): health, describe, reference, inline, reuse, bad-items, "
                   "chunked, cancel, orientation.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, help="Bound on each stream, seconds.")
@click.option("--health-timeout", "health_timeout_s", default=60.0, show_default=True,
              help="How long to wait for health to reach SERVING, seconds.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the report as JSON here.")
@library_errors
def conformance(address, image, model_name, gpu, data_root, only, timeout_s, health_timeout_s, json_path) -> None:
    """Check the server at HOST:PORT (or the image given with --image): Describe, health, both
    volume transports, volume reuse, typed errors for bad items, cancellation, chunked large
    volumes and the orientation probe. Exits 1 when any check fails.

    \b
    Examples:
      bench serve mymodel --port 50051 --data-root ./data &
      bench conformance 127.0.0.1:50051 --data-root ./data --json conformance.json
      bench conformance --image ctbench/mymodel:latest --model mymodel
    """
    from ctbench.runners.conformance import ConformanceOptions, run_conformance

    if (address is None) == (image is None):
        raise click.UsageError("give either HOST:PORT or --image IMAGE")
    if address is not None and ":" not in address:
        raise click.BadParameter(f"expected HOST:PORT, got {address!r}", param_hint="HOST:PORT")
    options = ConformanceOptions(data_root=data_root, timeout_s=timeout_s,
                                 health_timeout_s=health_timeout_s, only=tuple(only))
    if image is not None:
        from ctbench.runners.conformance.container import run_conformance_in_container

        model = model_name or image.rsplit("/", 1)[-1].split(":", 1)[0]
        report = run_conformance_in_container(image, model, options, gpu=gpu)
    else:
        report = run_conformance(address, options)
    click.echo(report.to_text())
    if json_path is not None:
        json_path.write_text(report.to_json() + "\n")
    if not report.passed:
        raise SystemExit(1)
