"""`bench score`: score a run folder (and/or loose prediction files), or the reference runs."""
from __future__ import annotations

from pathlib import Path

import click

from ctbench.cli.options import console as make_console
from ctbench.cli.options import library_errors


def _metric_names(values: tuple[str, ...]) -> list[str]:
    from ctbench.evaluation.text_metrics import ALL_TEXT_METRICS, OFFLINE_TEXT_METRICS

    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            expanded = {"offline": OFFLINE_TEXT_METRICS, "all": ALL_TEXT_METRICS}.get(name, (name,))
            names += [n for n in expanded if n and n not in names]
    return names


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Questions to score against (default: RUN/dataset.jsonl).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where summary.csv/summary.json go (default: the run folder).")
@click.option("--metrics", "metric_opts", multiple=True, metavar="NAMES",
              help="Text metrics, comma-separated: bleu, meteor, rouge, sbert, alignscore; "
                   "'offline' = all but alignscore, 'all' = every one. Default: exact/option match only.")
@click.option("--alignscore-weights", type=click.Path(file_okay=False), default=None,
              help="AlignScore's weights folder (default: $CTBENCH_ALIGNSCORE_WEIGHTS; `bench metrics fetch alignscore`).")
@click.option("--alignscore-model", type=click.Choice(["base", "large"]), default=None,
              help="Which checkpoint (default: base if the folder has it, else large).")
@click.option("--alignscore-venv", type=click.Path(file_okay=False), default=None,
              help="AlignScore's venv (default: where `bench metrics setup alignscore` puts it).")
@click.option("--judge", "judge_specs", multiple=True, metavar="SPEC",
              help="Run an LLM judge first (repeatable): PRESET[:MODEL][@URL], presets gemini-2.5-flash, "
                   "gpt-4o, qwen-plus, gemini, openai, vllm. Verdicts go to RUN/judges/.")
@click.option("--allow-external", is_flag=True,
              help="Allow judges to send questions/answers to a non-loopback API (off by default).")
@click.option("--judge-batch", type=click.IntRange(min=1), default=None,
              help="Items per judge call (default: the prompt's; 5 for --prompt published, else 8).")
@click.option("--judge-concurrency", default=4, show_default=True, help="Judge calls in flight.")
@click.option("--prompt", "prompt_name", default=None,
              help="Judge prompt: ct-spatialvqa-judge-v1 (default, ctbench's own), 'published' (the published "
                   "harness's exact protocol, read from ct-spatialvqa/protocol/published-judging.json in the "
                   "shared folder), or a prompt .txt / protocol .json file.")
@click.option("--reference", "reference", is_flag=False, flag_value="", default=None, metavar="[DIR]",
              help="Score the published CT-SpatialVQA reference runs and compare with the published table "
                   "(DIR: the ct-spatialvqa folder; default: ../shared/data/ct-spatialvqa or $CTBENCH_SHARED).")
@click.option("--log", "trackers", multiple=True, type=click.Choice(["mlflow", "wandb"]),
              help="Also record the run's config, summary metrics and per-question table in MLflow or "
                   "W&B (repeatable; needs ctbench[mlflow] / ctbench[wandb]; their own env settings apply).")
@library_errors
def score(paths, dataset, out_dir, metric_opts, alignscore_weights, alignscore_model, alignscore_venv, judge_specs, allow_external, judge_batch, judge_concurrency,
          prompt_name, reference, trackers) -> None:
    """Score predictions: exact/option match, text metrics, LLM jury, per server/category/question type.

    PATHS is a run folder (its predictions/*.jsonl are scored against its dataset.jsonl, and its
    judges/*.jsonl verdicts give the jury) and/or extra prediction files (server name = file name).
    Every question counts: missing and failed predictions are wrong and reported as counts.
    Writes summary.csv and summary.json.

    \b
    Example:
      bench score runs/phantom
      bench score runs/phantom --metrics offline
      bench score runs/phantom --metrics alignscore --alignscore-weights ~/weights/alignscore
      bench score runs/phantom --judge vllm:qwen2.5-7b-instruct@http://127.0.0.1:8000/v1
      bench score runs/ctsv --judge gpt-4o --judge qwen-plus --prompt published --allow-external
      bench score --reference --metrics offline --out reference-scores/
      MLFLOW_TRACKING_URI=file:$PWD/mlruns bench score runs/phantom --log mlflow
    """
    from ctbench.evaluation.tables import comparison_table, controls_tables, group_table, overall_table, text_table

    console = make_console()
    metric_names = _metric_names(metric_opts)
    if reference is not None and trackers:
        raise click.UsageError("--log records a run folder's scores; it does not apply to --reference")
    if reference is not None:
        from ctbench.evaluation.reference import (
            compare_with_published,
            load_reference_runs,
            reproduction_verdict,
            score_reference,
        )
        from ctbench.evaluation.text_metrics import OFFLINE_TEXT_METRICS

        ref = load_reference_runs(reference or None)
        with _progress_bars(console):
            result = score_reference(ref, metric_names or OFFLINE_TEXT_METRICS)
        target = Path(out_dir or "reference-scores")
        written = result.write(target)
        checks = compare_with_published(result, ref)
        _write_checks(target / "reproduction.csv", checks)
        console.print(text_table(result))
        console.print(comparison_table(checks))
        for section in result.extra.get("jury", {}).get("servers", {}).values():
            for a in section["alignment"]:
                if not a["positional_ok"]:
                    console.print(f"[yellow]misaligned verdict file[/yellow] {a['summary']}")
        console.print("wrote " + ", ".join(str(p) for p in [*written, target / "reproduction.csv"]))
        verdict = reproduction_verdict(checks)
        console.print(("[green]" if verdict.ok else "[red]") + verdict.line() + ("[/green]" if verdict.ok else "[/red]"))
        if not verdict.ok:
            raise SystemExit(1)
        return

    if not paths:
        raise click.UsageError("give a run folder, prediction files, or --reference")
    dirs = [Path(p) for p in paths if Path(p).is_dir()]
    files = [Path(p) for p in paths if not Path(p).is_dir()]
    if len(dirs) > 1:
        raise click.UsageError("give at most one run folder")
    run_dir = dirs[0] if dirs else None
    if run_dir is None and dataset is None:
        raise click.UsageError("loose prediction files need --dataset")
    if trackers:
        from ctbench.evaluation.tracking import check_tracker

        for tracker in trackers:
            check_tracker(tracker)
    if judge_specs:
        if run_dir is None:
            raise click.UsageError("--judge needs a run folder (verdicts are written to RUN/judges/)")
        from ctbench.evaluation.judges import LLMJudge, judge_run, load_prompt
        from ctbench.evaluation.judges.judge import parse_judge_spec

        prompt = load_prompt(prompt_name) if prompt_name else load_prompt()
        source = getattr(prompt, "source", None)
        console.print(f"judge prompt: {prompt.name}" + (f" from {source}" if source else "")
                      + f" (sha256 {prompt.sha256[:12]})")
        try:
            specs = [parse_judge_spec(s) for s in judge_specs]
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        judges = [LLMJudge.create(spec, prompt, allow_external=allow_external, batch_size=judge_batch,
                                  concurrency=judge_concurrency) for spec in specs]
        with _progress_bars(console):
            report = judge_run(run_dir, judges)
        for tag, n in report.judged.items():
            console.print(f"judged {tag}: {n} new, {report.skipped[tag]} already judged, "
                          f"{report.failures[tag]} judge failures")
    from ctbench.evaluation import score_run
    from ctbench.evaluation.text_metrics import AlignScoreMetric, TextMetric

    text_metrics: list[str | TextMetric] = list(metric_names)
    if "alignscore" in text_metrics:
        text_metrics[text_metrics.index("alignscore")] = AlignScoreMetric(
            weights=alignscore_weights, model=alignscore_model, venv=alignscore_venv)
    with _progress_bars(console):
        result = score_run(run_dir, files, dataset=dataset, text_metrics=text_metrics)
    target = Path(out_dir) if out_dir else (run_dir or Path("."))
    written = result.write(target)
    console.print(overall_table(result))
    if metric_names or "jury" in result.extra:
        console.print(text_table(result))
    for kind in ("category", "question_type"):
        table = group_table(result, kind)
        if table is not None:
            console.print(table)
    for table in controls_tables(result):
        console.print(table)
    from ctbench.evaluation.numeric_report import numeric_terminal_table

    if (numeric := numeric_terminal_table(result)) is not None:
        console.print(numeric)
    for server, issues in result.issues.items():
        info = issues.to_json()
        problems = {k: v for k, v in info.items() if isinstance(v, int) and v}
        if problems:
            console.print(f"[yellow]{server}: ledger issues {problems}[/yellow]")
    console.print("wrote " + ", ".join(str(p) for p in written))
    if trackers:
        from ctbench.evaluation.tracking import log_scores

        for line in log_scores(trackers, result, run_dir, dataset, written, target):
            console.print(f"logged to {line}")


def _progress_bars(console):
    """Bars for the long steps (encoding, each judge, each server's metrics), like `bench run`'s."""
    import contextlib

    from ctbench.evaluation.progress import reporting_to
    from ctbench.runners.progress import RunProgress

    stack = contextlib.ExitStack()
    bars = stack.enter_context(RunProgress(console))
    stack.enter_context(reporting_to(bars.update))
    return stack


def _write_checks(path: Path, checks: list[dict]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(checks[0]) if checks else ["model"])
        writer.writeheader()
        writer.writerows(checks)
