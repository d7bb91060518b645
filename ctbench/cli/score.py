"""`bench score`: score a run folder (and/or loose prediction files)."""
from __future__ import annotations

from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Questions to score against (default: RUN/dataset.jsonl).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where summary.csv/summary.json go (default: the run folder).")
@library_errors
def score(paths: tuple[str, ...], dataset: str | None, out_dir: str | None) -> None:
    """Score predictions: exact match and option match, per server, category and question type.

    PATHS is a run folder (its predictions/*.jsonl are scored against its dataset.jsonl) and/or
    extra prediction files (server name = file name). Every question counts: missing and failed
    predictions are wrong and reported as counts. Writes summary.csv and summary.json.

    \b
    Example:
      bench score runs/phantom
      bench score runs/phantom other-model.jsonl
      bench score --dataset qa.jsonl --out scores/ m3d.jsonl radfm.jsonl
    """
    from rich.console import Console

    from ctbench.evaluation import score_run
    from ctbench.evaluation.tables import group_table, overall_table

    dirs = [Path(p) for p in paths if Path(p).is_dir()]
    files = [Path(p) for p in paths if not Path(p).is_dir()]
    if len(dirs) > 1:
        raise click.UsageError("give at most one run folder")
    run_dir = dirs[0] if dirs else None
    if run_dir is None and dataset is None:
        raise click.UsageError("loose prediction files need --dataset")
    result = score_run(run_dir, files, dataset=dataset)
    target = Path(out_dir) if out_dir else (run_dir or Path("."))
    written = result.write(target)
    console = Console()
    console.print(overall_table(result))
    for kind in ("category", "question_type"):
        table = group_table(result, kind)
        if table is not None:
            console.print(table)
    for server, issues in result.issues.items():
        info = issues.to_json()
        problems = {k: v for k, v in info.items() if isinstance(v, int) and v}
        if problems:
            console.print(f"[yellow]{server}: ledger issues {problems}[/yellow]")
    console.print("wrote " + ", ".join(str(p) for p in written))
