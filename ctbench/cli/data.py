"""`bench data ...`: build, fetch and check datasets."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import click

from ctbench.cli.data_synth import synth
from ctbench.cli.options import library_errors


@click.group()
def data() -> None:
    """Datasets: the phantom benchmark, CT-SpatialVQA, CT-RATE volumes, QA pipelines.

    \b
    Example:
      bench data synth --out data/phantom
      bench data ct-spatialvqa ../shared/data/ct-spatialvqa/qa_pairs_with_categories.json --out data/ctsv
    """


data.add_command(synth)


def _echo_json(obj: dict) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


class _Bar:
    def __init__(self, bar, task):
        self._bar, self._task = bar, task

    def __call__(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def set_total(self, total: int | None) -> None:
        self._bar.update(self._task, total=total)


@contextmanager
def _progress(description: str, total: int | None, unit_bytes: bool = False):
    """A rich progress bar on a terminal, silent otherwise. Yields a callable advance(n=1)
    that also has set_total(total)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    columns = [TextColumn("{task.description}"), BarColumn()]
    columns += [DownloadColumn(), TransferSpeedColumn()] if unit_bytes else [MofNCompleteColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        yield _Bar(bar, bar.add_task(description, total=total))


# --- ct-spatialvqa ----------------------------------------------------------------------------
@data.command("ct-spatialvqa")
@click.argument("source", required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder for dataset.jsonl and manifest.json.")
@click.option("--sha256", default=None, help="Expected sha256 of SOURCE when it is a URL (default: the pin of a published file).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Folder the image paths are relative to.")
@click.option("--duplicates", type=click.Choice(["error", "warn"]), default="error", show_default=True,
              help="Duplicate questions within a volume: fail, or keep with a warning.")
@click.option("--check-volumes", is_flag=True, help="Also require every referenced volume to exist under --data-root.")
@library_errors
def ct_spatialvqa(source, out_dir, sha256, data_root, duplicates, check_volumes) -> None:
    """Load CT-SpatialVQA (JSON or JSONL, a path or a URL), validate it, write its manifest.

    SOURCE defaults to the published qa_pairs_with_categories.json, fetched and checked against
    its pinned sha256.

    \b
    Example:
      bench data ct-spatialvqa ../shared/data/ct-spatialvqa/qa_pairs_with_categories.json --out data/ctsv
    """
    from ctbench.datasets.ct_spatialvqa import PUBLISHED_BASE_URL, prepare_ct_spatialvqa

    source = source or PUBLISHED_BASE_URL + "qa_pairs_with_categories.json"
    manifest = prepare_ct_spatialvqa(
        source, out_dir, sha256=sha256, data_root=data_root, duplicates=duplicates, check_volumes=check_volumes
    )
    validation = manifest["validation"]
    click.echo(f"{manifest['n_questions']} questions over {manifest['n_volumes']} volumes; sha256 {manifest['sha256']}")
    for category, count in manifest["per_category"].items():
        click.echo(f"  {count:6d}  {category}")
    for warning in validation["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {Path(out_dir) / 'dataset.jsonl'} and {Path(out_dir) / 'manifest.json'}")


# --- ct-rate ----------------------------------------------------------------------------------
@data.group("ct-rate")
def ct_rate() -> None:
    """CT-RATE volumes (gated on Hugging Face: needs your token).

    \b
    Example:
      HF_TOKEN=hf_... bench data ct-rate download data/ctsv/dataset.jsonl --out data/ct-rate
    """


@ct_rate.command("download")
@click.argument("qa_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Where the volumes go (use it as --data-root).")
@click.option("--token", default=None, envvar="HF_TOKEN", help="Hugging Face token of an account that accepted CT-RATE's terms [env HF_TOKEN].")
@click.option("--workers", type=click.IntRange(1, 32), default=4, show_default=True, help="Parallel downloads.")
@click.option("--metadata", "metadata_csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CT-RATE metadata CSV (default: fetched from the dataset).")
@click.option("--no-metadata", is_flag=True, help="Do not fetch or apply CT-RATE metadata.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N volumes (a trial run).")
@click.option("--repo-id", default="ibrahimhamamci/CT-RATE", show_default=True)
@click.option("--revision", default="main", show_default=True)
@library_errors
def ct_rate_download(qa_file, out_dir, token, workers, metadata_csv, no_metadata, limit, repo_id, revision) -> None:
    """Fetch exactly the CT-RATE volumes QA_FILE refers to: parallel, resumable, checksummed.

    Re-running the same command resumes an interrupted download and skips finished volumes.
    HF_ENDPOINT points it at another hub (a mirror, or a test server).

    \b
    Example:
      HF_TOKEN=hf_... bench data ct-rate download data/ctsv/dataset.jsonl --out data/ct-rate
    """
    from ctbench.datasets.ct_rate import download_ct_rate

    def on_plan(plan) -> None:
        unresolved = f"; {len(plan.unresolved)} not resolvable on the hub" if plan.unresolved else ""
        click.echo(
            f"{len(plan.files)} volume(s); {len(plan.to_fetch)} to fetch ({plan.bytes_needed / 1e6:.1f} MB){unresolved}", err=True
        )
        advance.set_total(plan.bytes_needed)

    with _progress("downloading", None, unit_bytes=True) as advance:
        summary = download_ct_rate(
            qa_file, out_dir, token=token, repo_id=repo_id, revision=revision, workers=workers,
            metadata_csv=metadata_csv, fetch_metadata=not no_metadata, limit=limit,
            on_plan=on_plan, on_bytes=advance,
        )
    click.echo(f"{summary['ok']} of {summary['volumes']} volume(s) ready ({summary['fetched_now']} fetched now); record {summary['record']}")


# --- qa pipeline ------------------------------------------------------------------------------
@data.group("qa")
def qa() -> None:
    """Build spatial QA sets from reports: generate, filter, categorize, validate.

    \b
    Example:
      bench data qa filter qa/qa_pairs_unfiltered.json --out qa/
      bench data qa filter --evaluate --split heldout
    """


from ctbench.cli.data_qa_measure import measure as _measure  # noqa: E402  (its own module)

qa.add_command(_measure)


def _llm_options(func):
    func = click.option("--prompt", "prompt_file", type=click.Path(exists=True, dir_okay=False), default=None,
                        help="A prompt file instead of the default versioned one.")(func)
    func = click.option("--base-url", default=None, envvar="OPENAI_BASE_URL",
                        help="OpenAI-compatible server, e.g. a local vLLM [env OPENAI_BASE_URL].")(func)
    func = click.option("--allow-external", is_flag=True,
                        help="Allow report text to go to a non-loopback LLM API (off by default).")(func)
    func = click.option("--workers", type=click.IntRange(1, 32), default=1, show_default=True, help="Parallel LLM calls.")(func)
    func = click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N volumes.")(func)
    return func


def _make_llm(spec, base_url, out_dir, workers, allow_external):
    if spec is None:
        return None
    from ctbench.datasets.qa.llm import make_chat_model

    return make_chat_model(
        spec, base_url=base_url, allow_external=allow_external, concurrency=workers,
        cache_path=Path(out_dir) / "llm_cache.sqlite",
    )


def _print_summary(summary) -> None:
    d = summary.to_dict()
    click.echo(
        f"{d['step']}: {d['done_now']} done now, {d['done_before']} done before, {len(d['errors'])} error(s) "
        f"of {d['units']} [model {d['model']}, prompt {d['prompt'] or '-'} {(d['prompt_sha256'] or '')[:12]}]"
    )
    for warning in d["warnings"][:20]:
        click.echo(f"warning: {warning}", err=True)
    for error in d["errors"][:20]:
        click.echo(f"error: {error}", err=True)
    click.echo(f"wrote {d['output']} (ledger {d['ledger']})")
    if d["errors"]:
        raise click.ClickException(
            f"{len(d['errors'])} unit(s) failed and are recorded in the ledger; the rest is kept. "
            "Run the same command again to retry only those."
        )


@qa.command("generate")
@click.option("--reports", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Reports JSON: {volume: {Findings_EN, Impressions_EN}}.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--llm", "llm_spec", required=True, help="BACKEND:MODEL, e.g. openai:gpt-4o-mini or gemini:gemini-2.5-flash.")
@click.option("--volume", "volumes", multiple=True, help="Only these volumes (repeatable).")
@_llm_options
@library_errors
def qa_generate(reports, out_dir, llm_spec, volumes, prompt_file, base_url, allow_external, workers, limit) -> None:
    """Generate 7-10 spatial QA pairs per report (the published pipeline's prompt by default).

    \b
    Example:
      bench data qa generate --reports reports.json --out qa/ --llm openai:gpt-4o-mini --allow-external
    """
    from ctbench.datasets.qa.pipeline import generate_qa
    from ctbench.datasets.qa.prompting import load_prompt

    llm = _make_llm(llm_spec, base_url, out_dir, workers, allow_external)
    with _progress("generate", None) as advance:
        summary = generate_qa(
            reports, out_dir, llm, prompt=load_prompt("generate", prompt_file), volumes=list(volumes) or None,
            limit=limit, workers=workers, on_unit=lambda key: advance(), on_start=advance.set_total,
        )
    _print_summary(summary)


def _published_dir(path):
    """--published-dir, else $CTBENCH_SHARED (shared folder or the data folder), else ../shared."""
    bases = [Path(path)] if path else []
    if os.environ.get("CTBENCH_SHARED"):
        bases.append(Path(os.environ["CTBENCH_SHARED"]))
    bases.append(Path.cwd().parent / "shared")
    for base in bases:
        for candidate in (base, base / "data" / "ct-spatialvqa", base / "ct-spatialvqa"):
            if (candidate / "qa_pairs_unfiltered.json").is_file():
                return candidate
    raise click.UsageError(
        "--evaluate needs the published qa_pairs*.json: give --published-dir, set CTBENCH_SHARED, "
        "or keep them in ../shared/data/ct-spatialvqa"
    )


def _evaluate_options(func):
    func = click.option("--split", type=click.Choice(["heldout", "dev", "all"]), default="heldout", show_default=True,
                        help="Volumes to score on; the rules were written on 'dev', so 'heldout' is the honest figure.")(func)
    func = click.option("--published-dir", type=click.Path(file_okay=False), default=None,
                        help="Folder with the published qa_pairs*.json [default: $CTBENCH_SHARED, else ../shared/data/ct-spatialvqa].")(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")(func)
    func = click.option("--evaluate", is_flag=True,
                        help="Measure the rule-based backend against the published LLM decisions instead of running.")(func)
    return func


def _print_rows(title: str, rows: list[dict], extra: str) -> None:
    click.echo(title)
    click.echo(f"  {'':<14}{'precision':>10}{'recall':>10}{'F1':>8}{'support':>9}")
    for row in rows:
        click.echo(f"  {row['name']:<14}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>8.3f}{row['support']:>9d}")
    click.echo(extra)


@qa.command("filter")
@click.argument("qa_file", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Output folder (needed unless --evaluate).")
@click.option("--llm", "llm_spec", default=None, help="LLM backend (default: the offline rule-based filter).")
@_evaluate_options
@_llm_options
@library_errors
def qa_filter(qa_file, out_dir, llm_spec, evaluate, as_json, published_dir, split, prompt_file, base_url, allow_external,
              workers, limit) -> None:
    """Keep the spatial QA pairs (rule-based offline by default, or an LLM with --llm).

    \b
    Examples:
      bench data qa filter qa/qa_pairs_unfiltered.json --out qa/
      bench data qa filter --evaluate --published-dir ../shared/data/ct-spatialvqa
    """
    if evaluate:
        from ctbench.datasets.qa.agreement import evaluate_filter, filter_labels
        from ctbench.datasets.qa.rules import RULES_VERSION, spatial_filter

        folder = _published_dir(published_dir)
        labels = filter_labels(folder / "qa_pairs_unfiltered.json", folder / "qa_pairs.json")
        result = evaluate_filter(labels, lambda q, a: spatial_filter(q, a).value, split)
        result["backend"] = f"rules:{RULES_VERSION}"
        if as_json:
            return _echo_json(result)
        return _print_rows(
            f"rule-based spatial filter ({result['backend']}) vs published LLM filter, split {split}: "
            f"{result['n_pairs']} pairs, {result['n_volumes']} volumes",
            result["decisions"], f"  accuracy {result['accuracy']:.3f}",
        )
    if not qa_file or not out_dir:
        raise click.UsageError("give QA_FILE and --out (or --evaluate)")
    from ctbench.datasets.qa.pipeline import filter_qa
    from ctbench.datasets.qa.prompting import load_prompt

    llm = _make_llm(llm_spec, base_url, out_dir, workers, allow_external)
    with _progress("filter", None) as advance:
        summary = filter_qa(
            qa_file, out_dir, llm, prompt=load_prompt("filter", prompt_file) if llm else None,
            workers=workers, limit=limit, on_unit=lambda key: advance(), on_start=advance.set_total,
        )
    _print_summary(summary)


@qa.command("categorize")
@click.argument("qa_file", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Output folder (needed unless --evaluate).")
@click.option("--llm", "llm_spec", default=None, help="LLM backend (default: the offline rule-based tagger).")
@_evaluate_options
@_llm_options
@library_errors
def qa_categorize(qa_file, out_dir, llm_spec, evaluate, as_json, published_dir, split, prompt_file, base_url,
                  allow_external, workers, limit) -> None:
    """Tag QA pairs with the six spatial categories (rule-based offline by default).

    \b
    Examples:
      bench data qa categorize qa/qa_pairs.json --out qa/
      bench data qa categorize --evaluate --published-dir ../shared/data/ct-spatialvqa
    """
    if evaluate:
        from ctbench.datasets.qa.agreement import category_labels, evaluate_categories
        from ctbench.datasets.qa.rules import RULES_VERSION, tag_categories

        folder = _published_dir(published_dir)
        labels = category_labels(folder / "qa_pairs_with_categories.json")
        result = evaluate_categories(labels, lambda q, a: tag_categories(q, a).value, split)
        result["backend"] = f"rules:{RULES_VERSION}"
        if as_json:
            return _echo_json(result)
        micro = result["micro"]
        return _print_rows(
            f"rule-based category tagger ({result['backend']}) vs published LLM categories, split {split}: "
            f"{result['n_pairs']} pairs, {result['n_volumes']} volumes",
            result["categories"],
            f"  micro P {micro['precision']:.3f} R {micro['recall']:.3f} F1 {micro['f1']:.3f}; "
            f"macro F1 {result['macro_f1']:.3f}; exact set match {result['exact_set_match']:.3f}",
        )
    if not qa_file or not out_dir:
        raise click.UsageError("give QA_FILE and --out (or --evaluate)")
    from ctbench.datasets.qa.pipeline import categorize_qa
    from ctbench.datasets.qa.prompting import load_prompt

    llm = _make_llm(llm_spec, base_url, out_dir, workers, allow_external)
    with _progress("categorize", None) as advance:
        summary = categorize_qa(
            qa_file, out_dir, llm, prompt=load_prompt("categorize", prompt_file) if llm else None,
            workers=workers, limit=limit, on_unit=lambda key: advance(), on_start=advance.set_total,
        )
    _print_summary(summary)


@qa.group("validate")
def qa_validate() -> None:
    """Human review: export a CSV sheet, import filled sheets, agreement summary.

    \b
    Example:
      bench data qa validate export qa/qa_pairs.json --out review/dr_a.csv --sample 200 --reviewer dr_a
      bench data qa validate import qa/qa_pairs.json review/*.csv --out qa/reviewed.jsonl
    """


@qa_validate.command("export")
@click.argument("qa_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_csv", type=click.Path(dir_okay=False), required=True, help="CSV sheet to write.")
@click.option("--sample", type=click.IntRange(min=1), default=None, help="Review a random sample of N pairs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--reviewer", default="", help="Pre-fill the reviewer column.")
@library_errors
def qa_validate_export(qa_file, out_csv, sample, seed, reviewer) -> None:
    """Write a review sheet: reviewers fill verdict = accept | reject | edit.

    \b
    Example:
      bench data qa validate export qa/qa_pairs.json --out review/dr_a.csv --sample 200 --reviewer dr_a
    """
    from ctbench.datasets.qa.review import export_review

    n = export_review(qa_file, out_csv, sample=sample, seed=seed, reviewer=reviewer)
    click.echo(f"wrote {n} row(s) to {out_csv}")


@qa_validate.command("import")
@click.argument("qa_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("sheets", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Write the reviewed QA set (JSONL): rejected pairs dropped, edits applied.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@library_errors
def qa_validate_import(qa_file, sheets, out_path, as_json) -> None:
    """Read filled sheets; print reviewer agreement; optionally write the reviewed set.

    \b
    Example:
      bench data qa validate import qa/qa_pairs.json review/*.csv --out qa/reviewed.jsonl
    """
    from ctbench.datasets.qa.review import agreement_summary, apply_reviews, import_reviews
    from ctbench.datasets.qa_items import load_dataset

    reviews = import_reviews(list(sheets))
    if out_path:
        summary = apply_reviews(qa_file, reviews, out_path)
    else:
        summary = agreement_summary(reviews, {i.question_id for i in load_dataset(qa_file).items})
    if as_json:
        return _echo_json(summary)
    click.echo(f"{summary['items_reviewed']} pair(s) reviewed by {len(summary['reviewers'])} reviewer(s)")
    for name, row in summary["reviewers"].items():
        click.echo(f"  {name}: {row['reviewed']} reviewed, accept {row['accept']}, edit {row['edit']}, reject {row['reject']}")
    if summary["consensus_keep_rate"] is not None:
        click.echo(f"consensus (majority keeps the pair): {summary['consensus_keep_rate']:.1%}")
    if summary["all_reviewers_agree"] is not None:
        click.echo(f"all reviewers agree on {summary['all_reviewers_agree']:.1%} of {summary['items_with_2plus_reviews']} multiply-reviewed pair(s)")
    for name, row in summary["pairwise"].items():
        if row["n"]:
            kappa = "n/a" if row["cohen_kappa"] is None else f"{row['cohen_kappa']:.3f}"
            click.echo(f"  {name}: agreement {row['agreement']:.1%} over {row['n']}, Cohen's kappa {kappa}")
    if out_path:
        click.echo(f"wrote {summary['written']} pair(s) to {summary['output']} ({summary['dropped']} dropped, {summary['edited']} edited)")
