"""`bench run`: stream a benchmark to model servers, keep every answer, print the scores."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ctbench.cli.options import console as make_console
from ctbench.cli.options import data_root_option, library_errors, out_dir_option


def _parse_endpoints(values: tuple[str, ...]) -> dict[str, str]:
    endpoints = {}
    for value in values:
        for part in value.split(","):
            name, sep, address = part.partition("=")
            if not sep or not name or ":" not in address:
                raise click.BadParameter(f"expected NAME=HOST:PORT, got {part!r}", param_hint="--endpoints")
            endpoints[name.strip()] = address.strip()
    return endpoints


def _parse_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key.strip()] = setting.strip()
    return pairs


def _parse_replicas(values: tuple[str, ...]) -> dict[str, int]:
    counts = {}
    for name, count in _parse_pairs(values, "--replicas").items():
        if not count.isdigit() or int(count) < 1:
            raise click.BadParameter(f"expected NAME=K with K >= 1, got {name}={count}", param_hint="--replicas")
        counts[name] = int(count)
    return counts


@click.command()
@click.option("--servers", default="all", show_default=True, help="'all' (every server this host can run) or a comma list from the registry.")
@click.option("--dataset", default="synthetic", show_default=True, help="'synthetic' (the phantom benchmark) or a CT-SpatialVQA-style JSON/JSONL file.")
@out_dir_option
@data_root_option
@click.option("--backend", type=click.Choice(["auto", "local", "docker", "slurm"]), default="auto", show_default=True, help="auto: Docker when an engine is reachable, else local processes. slurm: one batch job per server (docs/slurm.md).")
@click.option("--slurm", "slurm", multiple=True, metavar="KEY=VALUE", help="sbatch resources for every server under --backend slurm: gpus, cpus, mem, time, partition, account, nodelist.")
@click.option("--replicas", multiple=True, metavar="NAME=K", help="With --backend slurm: K jobs serve NAME, each answering a share of the volumes.")
@click.option("--endpoints", multiple=True, metavar="NAME=HOST:PORT", help="Use servers already running elsewhere instead of starting any; NAME must be the name the server's card reports.")
@click.option("--endpoint-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="With --endpoints: speak TLS to those servers, trusting the PEM CA certificate(s) in this file (bench serve --tls-cert).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="With --endpoints: the token those servers require (the file their $CTBENCH_SERVER_TOKEN_FILE names).")
@click.option("--registry", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Server registry (default: compose/compose.yaml).")
@click.option("--transport", type=click.Choice(["auto", "inline", "reference"]), default="auto", show_default=True, help="How volumes travel: by reference when the server mounts the data, else inline.")
@click.option("--deadline", "deadline_s", default=600.0, show_default=True, help="Per-question deadline in seconds.")
@click.option("--health-timeout", "health_timeout_s", default=180.0, show_default=True, help="Seconds a server may take to turn healthy (model loading included).")
@click.option("--restarts", default=1, show_default=True, help="Restarts allowed per server that dies mid-run.")
@click.option("--retry-errors", is_flag=True, help="On resume, ask again questions that ended in any error (default: only server-side failures).")
@click.option("--phantom-volumes", default=12, show_default=True, help="Phantom volumes for --dataset synthetic (10 questions each).")
@click.option("--phantom-size", type=click.Choice(["small", "ct-rate"]), default="small", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Only the first N volumes' questions (dataset order): a quick trial run, labelled as a subset.")
@click.option("--skip-missing-volumes", is_flag=True, help="Run only the questions whose volumes exist and can be read (default: stop and list what is missing).")
@click.option("--inline-buffer-mib", type=click.IntRange(min=1), default=1024, show_default=True, help="Volume bytes the runner keeps in memory to share one read among inline uploads (MiB).")
@click.option("--control", "controls", multiple=True, metavar="NAME[,NAME]", help="Also ask every question under a volume control: mirror-lr, shuffle, blank, noise (repeatable or a comma list); answers go to RUN/controls/NAME/.")
@click.option("--control-seed", default=0, show_default=True, help="Seed of the shuffle control's assignment and the noise control.")
@click.option("--conflicted-headers", type=click.Choice(["warn", "refuse"]), default="warn", show_default=True, help="A NIfTI volume whose sform and qform disagree: warn once and record it (read with the sform, as the standard says), or refuse to run.")
@click.option("--score/--no-score", default=True, show_default=True, help="Score the run when it ends.")
@library_errors
def run(servers, dataset, out_dir, data_root, backend, slurm, replicas, endpoints, token_file, endpoint_ca, registry, transport, deadline_s, health_timeout_s, restarts, retry_errors, phantom_volumes, phantom_size, limit, skip_missing_volumes, inline_buffer_mib, controls, control_seed, conflicted_headers, score) -> None:
    """Stream every question of a dataset to model servers and record each answer.

    Re-running with the same --out resumes where it stopped.

    \b
    Examples:
      bench run --servers all --out runs/phantom
      bench run --servers geometric,blind --dataset qa_pairs.json --data-root /data/ct-rate --out runs/ct
      bench run --endpoints medgemma=gpu-host:50051 --dataset qa_pairs.json --out runs/remote
      bench run --servers all --dataset qa_pairs.json --data-root /data/ct-rate --limit 5 --out runs/trial
      bench run --servers all --control mirror-lr,shuffle,blank --out runs/phantom
      bench run --servers geometric --dataset qa_pairs.json --conflicted-headers refuse --out runs/strict
      bench run --backend slurm --slurm partition=gpu --slurm time=04:00:00 --out runs/cluster
      bench run --backend slurm --servers geometric --replicas geometric=4 --out runs/sharded
    """
    from ctbench.runners.controls import parse_controls
    from ctbench.runners.progress import RunProgress
    from ctbench.runners.run import RunConfig, run_benchmark

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = make_console(stderr=True)
    config = RunConfig(
        out_dir=Path(out_dir), servers=servers, dataset=dataset, data_root=Path(data_root) if data_root else None,
        backend=backend, slurm=_parse_pairs(slurm, "--slurm"), replicas=_parse_replicas(replicas), endpoints=_parse_endpoints(endpoints), registry=registry, transport=transport,
        deadline_s=deadline_s, health_timeout_s=health_timeout_s, restarts=restarts, retry_errors=retry_errors,
        phantom_volumes=phantom_volumes, phantom_size=phantom_size, limit=limit,
        skip_missing_volumes=skip_missing_volumes, command=["bench", *sys.argv[1:]],
        inline_buffer_bytes=inline_buffer_mib << 20, controls=parse_controls(controls), control_seed=control_seed,
        conflicted_headers=conflicted_headers,
    )
    if token_file is not None:
        from ctbench.runners.channels import register_token_file

        register_token_file(config.endpoints.values(), token_file)
    if endpoint_ca is not None:
        from ctbench.runners.channels import register_ca_file

        register_ca_file(config.endpoints.values(), endpoint_ca)
    with RunProgress(console) as bars:
        result = run_benchmark(config, progress=bars.update, announce=bars.announce)
    for name, server in result.servers.items():
        line = f"{name}: {server.ok} answered, {server.errors} errors"
        if config.controls:
            line += f" (real volumes and {len(config.controls)} control(s): {', '.join(config.controls)})"
        if server.already_done:
            line += f", {server.already_done} from earlier runs"
        if server.failure:
            line += f" — {server.failure}"
        console.print(line)
    console.print(f"predictions: {result.out_dir / 'predictions'}  (volume files read: {result.volume_reads})")
    if result.selection is not None and result.selection.is_subset:
        console.print(result.selection.label)
    if score:
        from ctbench.evaluation import score_run
        from ctbench.evaluation.tables import controls_tables, overall_table

        scores = score_run(result.out_dir)
        written = scores.write(result.out_dir)
        make_console().print(overall_table(scores))
        for table in controls_tables(scores):
            make_console().print(table)
        console.print("scores: " + ", ".join(str(p) for p in written))
    failed = [n for n, s in result.servers.items() if s.failure]
    if failed:
        sys.exit(2)
