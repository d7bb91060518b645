"""`bench serve MODEL`: run one model server (what every container's entrypoint calls)."""
from __future__ import annotations

import logging
from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.command()
@click.argument("model_name", metavar="MODEL")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 inside containers).")
@click.option("--port", default=50051, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Read-only folder by-reference volume paths are resolved under.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Model option, repeatable (e.g. seed=1, weights=/weights).")
@click.option("--cache-gb", default=4.0, show_default=True, help="Bound on prepared volumes kept in memory.")
@click.option("--max-inline-gb", default=4.0, show_default=True, help="Bound on inline volume bytes all streams hold at once.")
@click.option("--max-decoded-gb", default=4.0, show_default=True, help="Largest decoded volume, checked from its header before decoding.")
@click.option("--port-file", type=click.Path(dir_okay=False, path_type=Path), help="Write the bound port here once listening.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM certificate (chain) for the port: clients then connect with TLS (bench run --endpoint-ca).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM private key for --tls-cert.")
@click.option("--exit-with-parent", is_flag=True, help="Shut down when the process that started this server dies (the runner's local backend sets it).")
@click.option("--log-level", default="INFO", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@library_errors
def serve(model_name, host, port, data_root, options, cache_gb, max_inline_gb, max_decoded_gb, port_file, tls_cert, tls_key, exit_with_parent, log_level) -> None:
    """Serve MODEL over gRPC (AnswerVolumeQuestion, health, reflection).

    \b
    Example:
      bench serve geometric --port 50051 --data-root /data
    """
    if (tls_cert is None) != (tls_key is None):
        raise click.BadParameter("give both --tls-cert and --tls-key, or neither", param_hint="--tls-cert/--tls-key")
    watch = None
    if exit_with_parent:  # first, before the heavy imports: the parent may die while they run
        from ctbench.exit_with_parent import ParentWatch

        watch = ParentWatch.arm()
    from ctbench.model_servers.registry import get_model_class
    from ctbench.model_servers.sdk import ServerOptions
    from ctbench.model_servers.sdk import serve as run_server

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {option!r}", param_hint="--option")
        parsed[key] = value
    model = get_model_class(model_name)(**parsed)
    run_server(
        model,
        ServerOptions(
            host=host,
            port=port,
            data_root=data_root,
            cache_bytes=int(cache_gb * (1 << 30)),
            max_inline_bytes=int(max_inline_gb * (1 << 30)),
            max_decoded_bytes=int(max_decoded_gb * (1 << 30)),
            tls_cert=tls_cert,
            tls_key=tls_key,
        ),
        port_file=port_file,
        exit_with_parent=watch or False,
    )
