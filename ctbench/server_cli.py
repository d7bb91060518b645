"""The `bench` console script, and the two commands a model server's environment needs:
`bench serve` and `bench conformance`.

ctbench-sdk installs the `bench` script (`main` below); the full ctbench adds no script of its
own, so no file belongs to both distributions. With the full ctbench installed, `main` is its
whole click CLI (`ctbench.cli`), whose `serve` and `conformance` commands hand their arguments to
`run` here; with ctbench-sdk alone, `main` offers these two commands only. Either way the two
commands' options are declared once, in the argparse parsers below (the SDK carries no click).
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ctbench import __version__

FULL_CLI = "ctbench.cli"  # the full distribution's click CLI, when installed
FULL_ONLY_HINT = "pip install ctbench (ctbench-sdk alone has `bench serve` and `bench conformance HOST:PORT`)"


def _existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not an existing folder")
    return path


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not an existing file")
    return path


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not in 0..65535")
    return port


def _key_values(parser: argparse.ArgumentParser, items: Sequence[str], flag: str) -> dict[str, str]:
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"{flag}: expected KEY=VALUE, got {item!r}")
        parsed[key] = value
    return parsed


def serve_parser(prog: str = "bench serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve MODEL over gRPC (AnswerVolumeQuestion, health, reflection). MODEL is a "
                    "registered name (geometric, chance, ...; those need the full ctbench) or "
                    "package.module:Class for a server kept outside the tree.",
        epilog="Example:\n  bench serve geometric --port 50051 --data-root /data\n"
               "  bench serve my_server.model:MyModel --port 50051 --data-root /data")
    parser.add_argument("model_name", metavar="MODEL")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 inside containers). Default: %(default)s.")
    parser.add_argument("--port", default=50051, type=_port, help="0 picks a free port. Default: %(default)s.")
    parser.add_argument("--data-root", type=_existing_dir, help="Read-only folder by-reference volume paths are resolved under.")
    parser.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="Model option, repeatable (e.g. seed=1, weights=/weights).")
    parser.add_argument("--cache-gb", default=4.0, type=float, help="Bound on prepared volumes kept in memory. Default: %(default)s.")
    parser.add_argument("--max-inline-gb", default=4.0, type=float, help="Bound on inline volume bytes all streams hold at once. Default: %(default)s.")
    parser.add_argument("--max-decoded-gb", default=4.0, type=float, help="Largest decoded volume, checked from its header before decoding. Default: %(default)s.")
    parser.add_argument("--port-file", type=Path, help="Write the bound port here once listening.")
    parser.add_argument("--tls-cert", type=_existing_file, help="PEM certificate (chain) for the port: clients then connect with TLS (bench run --endpoint-ca).")
    parser.add_argument("--tls-key", type=_existing_file, help="PEM private key for --tls-cert.")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="Shut down when the process that started this server dies (the runner's local backend sets it).")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def serve(argv: Sequence[str], prog: str = "bench serve") -> None:
    """`bench serve`: parse `argv` and serve until stopped."""
    parser = serve_parser(prog)
    args = parser.parse_args(list(argv))
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("give both --tls-cert and --tls-key, or neither")
    options = _key_values(parser, args.options, "--option")
    watch = None
    if args.exit_with_parent:  # first, before the heavy imports: the parent may die while they run
        from ctbench.exit_with_parent import ParentWatch

        watch = ParentWatch.arm()
    from ctbench.model_servers.registry import get_model_class
    from ctbench.model_servers.sdk import ServerOptions
    from ctbench.model_servers.sdk import serve as run_server

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = get_model_class(args.model_name)(**options)
    run_server(
        model,
        ServerOptions(
            host=args.host,
            port=args.port,
            data_root=args.data_root,
            cache_bytes=int(args.cache_gb * (1 << 30)),
            max_inline_bytes=int(args.max_inline_gb * (1 << 30)),
            max_decoded_bytes=int(args.max_decoded_gb * (1 << 30)),
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        ),
        port_file=args.port_file,
        exit_with_parent=watch or False,
    )


def conformance_parser(prog: str = "bench conformance") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check the server at HOST:PORT (or the image given with --image, or `bench serve MODEL` with "
                    "--serve): Describe, health, what the model is fed (InspectInput against the card's InputSpec), "
                    "both volume transports, open questions and questions with options, volume reuse, typed errors "
                    "for bad items, cancellation, chunked large volumes and the orientation probe. Prints each "
                    "check's time and warns about slow answers. Exits 1 when any check fails. --image and --serve "
                    "need the full ctbench; HOST:PORT works with ctbench-sdk alone.",
        epilog="Examples:\n"
               "  bench serve mymodel --port 50051 --data-root ./data &\n"
               "  bench conformance 127.0.0.1:50051 --data-root ./data --json conformance.json\n"
               "  bench conformance --serve mymodel --option variant=authors\n"
               "  bench conformance --image ctbench/mymodel:latest --model mymodel")
    parser.add_argument("address", metavar="HOST:PORT", nargs="?")
    parser.add_argument("--image", help="Instead of HOST:PORT: start this image in Docker (as `bench run` would), check it, stop it.")
    parser.add_argument("--serve", dest="serve_model", metavar="MODEL",
                        help="Instead of HOST:PORT: start `bench serve MODEL` as a local process, check it, stop it "
                             "(a server that dies is reported with its exit code and log).")
    parser.add_argument("--option", dest="serve_options", action="append", default=[], metavar="KEY=VALUE",
                        help="With --serve: an option for the model (repeatable), as `bench serve --option`.")
    parser.add_argument("--model", dest="model_name", help="With --image: the model name the image serves (default: the image's name).")
    parser.add_argument("--gpu", action="store_true", help="With --image: request the GPUs for the container.")
    parser.add_argument("--data-root", type=_existing_dir,
                        help="The host folder the server mounts as its data root (e.g. what is mounted at /data). "
                             "Probe volumes are written under it to test by-reference volumes; without it that check is skipped.")
    parser.add_argument("--check", dest="only", action="append", default=[], metavar="NAME",
                        help="Run only this check (repeatable): health, describe, input, reference, inline, questions, "
                             "reuse, bad-items, chunked, cancel, orientation.")
    parser.add_argument("--timeout", dest="timeout_s", default=60.0, type=float, help="Bound on each stream, seconds. Default: %(default)s.")
    parser.add_argument("--slow", dest="slow_s", default=5.0, type=float,
                        help="Warn when one answer (or InspectInput) takes longer than this, seconds. Default: %(default)s.")
    parser.add_argument("--health-timeout", dest="health_timeout_s", default=60.0, type=float,
                        help="How long to wait for health to reach SERVING, seconds. Default: %(default)s.")
    parser.add_argument("--json", dest="json_path", type=Path, help="Also write the report as JSON here.")
    return parser


def conformance(argv: Sequence[str], prog: str = "bench conformance") -> None:
    """`bench conformance`: parse `argv`, check the server, print the report; exit 1 when it does
    not conform."""
    parser = conformance_parser(prog)
    args = parser.parse_args(list(argv))
    if sum(x is not None for x in (args.address, args.image, args.serve_model)) != 1:
        parser.error("give one of HOST:PORT, --image IMAGE or --serve MODEL")
    if args.serve_options and args.serve_model is None:
        parser.error("--option goes with --serve MODEL")
    _key_values(parser, args.serve_options, "--option")
    if args.address is not None and ":" not in args.address:
        parser.error(f"expected HOST:PORT, got {args.address!r}")
    from ctbench.conformance import ConformanceOptions, run_conformance

    options = ConformanceOptions(data_root=args.data_root, timeout_s=args.timeout_s, slow_s=args.slow_s,
                                 health_timeout_s=args.health_timeout_s, only=tuple(args.only))
    progress = _live_progress if sys.stderr.isatty() else None
    if args.image is not None:
        from ctbench.conformance.container import run_conformance_in_container

        model = args.model_name or args.image.rsplit("/", 1)[-1].split(":", 1)[0]
        report = run_conformance_in_container(args.image, model, options, gpu=args.gpu, progress=progress)
    elif args.serve_model is not None:
        from ctbench.conformance.started_server import run_conformance_serving

        serve_args = tuple(a for item in args.serve_options for a in ("--option", item))
        report = run_conformance_serving(args.serve_model, serve_args, options, progress=progress)
    else:
        assert args.address is not None  # exactly one of the three, checked above
        report = run_conformance(args.address, options, progress)
    print(report.to_text())
    if args.json_path is not None:
        args.json_path.write_text(report.to_json() + "\n")
    if not report.passed:
        raise SystemExit(1)


def _live_progress(result) -> None:
    """One line per check on stderr as it finishes (a terminal only; the report follows)."""
    mark = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}[result.status]
    slow = result.warnings and any(w.startswith("slow:") for w in result.warnings)
    print(f"  {mark}  {result.name}  [{result.seconds:.2f}s]" + (" (slow)" if slow else ""), file=sys.stderr)


COMMANDS: dict[str, Callable[[Sequence[str]], None]] = {"serve": serve, "conformance": conformance}


def main(argv: Sequence[str] | None = None) -> None:
    """The `bench` executable: the full CLI where ctbench is installed, else `serve` and
    `conformance` alone."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if importlib.util.find_spec(FULL_CLI) is not None:
        from ctbench.cli import main as full_cli

        full_cli(args=argv, prog_name="bench")
        return
    usage = ("usage: bench {serve,conformance} ...\n\nctbench-sdk " + __version__ + ": serve a model and check it.\n"
             "  serve        serve one model over gRPC (bench serve --help)\n"
             "  conformance  check a running server against the protocol (bench conformance --help)\n\n"
             "The runner, scoring and the rest of `bench`: " + FULL_ONLY_HINT.split(" (")[0] + "\n")
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(usage)
        raise SystemExit(0 if argv else 2)
    if argv[0] == "--version":
        print(f"ctbench-sdk, version {__version__}")
        return
    command = COMMANDS.get(argv[0])
    if command is None:
        sys.stderr.write(f"bench: {argv[0]!r} is not a command of ctbench-sdk; for it, {FULL_ONLY_HINT}\n")
        raise SystemExit(2)
    from ctbench.errors import CtbenchError

    try:
        command(argv[1:])
    except CtbenchError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        raise SystemExit(1) from exc
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("ctbench."):
            raise
        sys.stderr.write(f"Error: this needs {exc.name}, which only the full ctbench carries: {FULL_ONLY_HINT}\n")
        raise SystemExit(1) from exc
