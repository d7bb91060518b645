"""`bench perf ...`: measurements of the harness and the preprocessing library."""
from __future__ import annotations

import json

import click


@click.group()
def perf() -> None:
    """Performance measurements (results go into BENCHMARKS.md with the command).

    \b
    Example:
      bench perf harness
      bench perf memory --volumes 80
      bench perf ingest --repeats 5
      bench perf rehearsal --volumes 10,50,200
    """


@perf.command()
@click.option("--questions", default=5000, show_default=True)
@click.option("--volumes", default=20, show_default=True, help="Volumes the questions are spread over (sent by reference).")
@click.option("--volume-mb", default=150, show_default=True, help="Size of the inline volume (a CT-RATE volume is ~150 MB raw).")
@click.option("--window", default=128, show_default=True, help="Questions in flight.")
@click.option("--repeats", default=3, show_default=True, help="Inline uploads and bare streams, alternating (medians reported).")
@click.option("--inline-volumes", default=4, show_default=True, help="Distinct volumes sent inline over one stream for the sequence figure.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def harness(questions, volumes, volume_mb, window, repeats, inline_volumes, as_json) -> None:
    """Harness throughput with a server that answers instantly, and inline volume MB/s next to
    a bare gRPC stream of 1 MiB messages measured in the same run.

    \b
    Example:
      bench perf harness --questions 5000 --volume-mb 150
    """
    from ctbench.runners.perf import harness_benchmark

    figures = harness_benchmark(questions=questions, volumes=volumes, volume_mb=volume_mb, window=window, repeats=repeats,
                                inline_volumes=inline_volumes)
    if as_json:
        click.echo(json.dumps(figures, indent=1))
        return
    click.echo(f"questions/s (instant server, window {figures['window']}): {figures['questions_per_s']:.0f}  "
               f"({figures['questions']} questions in {figures['question_seconds']:.2f}s)")
    how = "hash after the bytes, one pass" if figures["inline_hash_follows"] else "hash first: the server does not declare inline_hash_follows"
    click.echo(f"inline volume over loopback: {figures['inline_mb_per_s']:.0f} MB/s  "
               f"({figures['inline_volume_mb']:.0f} MB in {figures['inline_seconds']:.2f}s, read + SHA-256 on both sides; {how})")
    click.echo(f"bare gRPC stream, 1 MiB messages: {figures['bare_grpc_mb_per_s']:.0f} MB/s  "
               f"(inline reaches {figures['inline_to_bare']:.0%} of it; medians of {figures['repeats']})")
    click.echo(f"inline with the hash first: {figures['inline_hash_first_mb_per_s']:.0f} MB/s  "
               f"({figures['inline_hash_first_seconds']:.2f}s, {figures['inline_hash_first_to_bare']:.0%} of the bare stream)")
    click.echo(f"  the runner's read + SHA-256 of the file on its own: {figures['runner_read_hash_seconds']:.2f}s")
    click.echo(f"inline, {figures['inline_sequence_volumes']} volumes over one stream: {figures['inline_sequence_mb_per_s']:.0f} MB/s  "
               f"(inline reaches {figures['inline_sequence_to_bare']:.0%} of a bare stream of the same bytes, the next volume read ahead; "
               f"hash first: {figures['inline_sequence_hash_first_to_bare']:.0%})")
    click.echo(f"machine: {figures['machine']}")


@perf.command()
@click.option("--volumes", default=40, show_default=True, help="Distinct volumes sent inline over one stream.")
@click.option("--volume-mb", default=16, show_default=True, help="Decoded size of each volume (int16 .nii).")
@click.option("--cache-mb", default=128, show_default=True, help="The server's cache limit.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def memory(volumes, volume_mb, cache_mb, as_json) -> None:
    """Peak RSS of a volume-reading server after N volumes on one stream (flat in N when bounded).

    \b
    Example:
      bench perf memory --volumes 10 && bench perf memory --volumes 80
    """
    from ctbench.runners.perf_memory import memory_benchmark

    figures = memory_benchmark(volumes=volumes, volume_mb=volume_mb, cache_mb=cache_mb)
    if as_json:
        click.echo(json.dumps(figures, indent=1))
        return
    click.echo(f"{figures['volumes']} volumes of {figures['volume_mb']:.0f} MiB, cache {figures['cache_mb']} MiB: "
               f"server peak RSS {figures['server_peak_rss_mb']:.0f} MiB; answered {figures['answered']}, "
               f"errors {figures['errors']}, missing {figures['missing']} in {figures['seconds']:.1f}s")
    click.echo(f"machine: {figures['machine']}")


from ctbench.cli.perf_ingest import ingest  # noqa: E402  (its own module; owned by preprocess)

perf.add_command(ingest)

from ctbench.cli.perf_geometric import geometric  # noqa: E402  (its own module; owned by the baselines)

perf.add_command(geometric)

from ctbench.cli.perf_measure import measure  # noqa: E402  (its own module; owned by datasets/measure)

perf.add_command(measure)
from ctbench.cli.perf_rehearsal import rehearsal  # noqa: E402  (its own module)

perf.add_command(rehearsal)


@perf.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def vlm(args) -> None:
    """Questions/s of MedGemma / Lingshu with and without per-volume reuse (GPU host).

    Random full-size weights are built from the configs, so no download is needed. Arguments go
    to the benchmark unchanged; `bench perf vlm --help` lists them.

    \b
    Example:
      bench perf vlm --model medgemma --size full --batch-sizes 1,4,16,32 --out medgemma.json
    """
    from ctbench.model_servers.vlm_common.bench_vlm import main as bench_vlm

    bench_vlm(list(args))
