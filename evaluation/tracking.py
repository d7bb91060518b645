"""Recording a scored run in an experiment tracker: MLflow or Weights & Biases (`bench score --log`).

Both get the same `TrackingRecord`, built once from the scores and the run folder:

* params: the run's configuration (`run.json` essentials: ctbench version, backend, dataset name,
  source, hash and counts, each server's card: version, weights, input preset, decoding settings);
* metrics: every summary row (`SERVER/METRIC` overall with `_ci_low` / `_ci_high` and counts,
  `SERVER/category/NAME/METRIC` and `SERVER/question_type/NAME/METRIC` per group);
* the per-question table (server, question, reference, prediction, status, correct, ...), as
  `per_question.csv` beside the summary files as artifacts (W&B also gets it as a `wandb.Table`).

The trackers are optional extras (`ctbench[mlflow]`, `ctbench[wandb]`) and use their own
settings: `MLFLOW_TRACKING_URI` (e.g. `file:/path/mlruns`) and `MLFLOW_EXPERIMENT_NAME`;
`WANDB_PROJECT`, `WANDB_MODE=offline`, `WANDB_DIR`. The experiment / project defaults to `ctbench`.
"""
from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctbench.datasets.qa_items import QAItem
from ctbench.errors import CtbenchError
from ctbench.evaluation.scoring import ScoreResult
from ctbench.evaluation.summary_row import SummaryRow

TRACKERS = ("mlflow", "wandb")
DEFAULT_PROJECT = "ctbench"
TABLE_COLUMNS = ("server", "question_id", "case_id", "question_type", "categories", "question", "answer",
                 "prediction", "status", "error_type", "correct", "exact", "option_index")
_MAX_PARAM_CHARS = 500  # MLflow's historical limit; longer values are cut


class TrackerUnavailable(CtbenchError):
    """The tracker's package is not installed."""

    code = "FAILED_PRECONDITION"


class TrackingFailed(CtbenchError):
    """The tracker refused or failed to record the run (the scores are written regardless)."""

    code = "UNAVAILABLE"


@dataclass(frozen=True)
class TrackingRecord:
    """What every tracker receives for one scored run."""

    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    table: list[dict[str, Any]]  # one row per (server, question), TABLE_COLUMNS
    artifacts: list[Path] = field(default_factory=list)


def tracking_record(result: ScoreResult, run_dir: str | Path | None, questions: Iterable[QAItem],
                    artifacts: Iterable[str | Path] = (), name: str | None = None) -> TrackingRecord:
    run_path = Path(run_dir) if run_dir is not None else None
    params = {"scored.dataset": result.dataset_name, "scored.n_questions": str(result.n_questions),
              "scored.servers": ",".join(result.servers)}
    if run_path is not None and (run_path / "run.json").is_file():
        params.update(run_params(json.loads((run_path / "run.json").read_text(encoding="utf-8"))))
    files = [Path(p) for p in artifacts]
    if run_path is not None and (run_path / "run.json").is_file():
        files.insert(0, run_path / "run.json")
    return TrackingRecord(
        name=name or (run_path.resolve().name if run_path is not None else result.dataset_name or "scores"),
        params={_name(k): v[:_MAX_PARAM_CHARS] for k, v in params.items()},
        metrics=summary_metrics(result.rows),
        table=question_table(result, questions),
        artifacts=files,
    )


def run_params(record: dict[str, Any]) -> dict[str, str]:
    """`run.json` essentials as flat string params. A run folder that keeps a list of attempts
    (`attempts`) is read from its latest attempt, with the dataset from wherever it is kept."""
    attempts = record.get("attempts")
    latest = attempts[-1] if isinstance(attempts, list) and attempts and isinstance(attempts[-1], dict) else record
    params: dict[str, str] = {}
    if isinstance(attempts, list):
        params["run.attempts"] = str(len(attempts))
    for key in ("ctbench_version", "git_commit", "backend", "started_at", "finished_at", "host"):
        value = latest.get(key, record.get(key))
        if isinstance(value, (str, int, float, bool)):
            params[f"run.{key}"] = str(value)
    dataset = record.get("dataset") or latest.get("dataset") or {}
    for key, value in _flat(dataset, "dataset"):
        params[key] = value
    servers = latest.get("servers") or record.get("servers") or {}
    for server, info in servers.items():
        card = (info or {}).get("card") or {}
        for key in ("name", "version", "weights", "license"):
            if card.get(key):
                params[f"server.{server}.{key}"] = str(card[key])
        spec = card.get("input") or {}
        if spec.get("name"):
            params[f"server.{server}.input"] = spec["name"] + (f"/{spec['variant']}" if spec.get("variant") else "")
        for key, value in sorted((card.get("generation") or {}).items()):
            params[f"server.{server}.generation.{key}"] = str(value)
    return params


def summary_metrics(rows: Iterable[SummaryRow]) -> dict[str, float]:
    """`SERVER/METRIC` (+ `_ci_low`, `_ci_high`, counts) overall; `SERVER/KIND/GROUP/METRIC` per group."""
    metrics: dict[str, float] = {}
    for row in rows:
        value = row.get("value")
        if not isinstance(value, (int, float)):
            continue  # a metric marked unavailable
        if row["group_kind"] == "all":
            base = metric_key(row["server"], row["metric"])
            metrics[base] = float(value)
            for bound in ("ci_low", "ci_high"):
                if isinstance(row.get(bound), (int, float)):
                    metrics[f"{base}_{bound}"] = float(row[bound])
            if row["metric"] == "accuracy":
                for count in ("n", "answered", "errors", "missing"):
                    metrics[metric_key(row["server"], count)] = float(row[count])
        else:
            metrics[metric_key(row["server"], row["group_kind"], row["group"], row["metric"])] = float(value)
    return metrics


def metric_key(*parts: str) -> str:
    """Parts joined by '/', each cut to the characters both trackers accept in a name."""
    return "/".join(_name(str(part)).replace("/", "_") for part in parts)


def _name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/]+", "_", key).strip("_") or "_"


def question_table(result: ScoreResult, questions: Iterable[QAItem]) -> list[dict[str, Any]]:
    by_id = {item.question_id: item for item in questions}
    rows = []
    for score in result.items:
        item = by_id.get(score.question_id)
        rows.append({
            "server": score.server, "question_id": score.question_id, "case_id": score.case_id,
            "question_type": score.question_type, "categories": "; ".join(score.categories),
            "question": item.question if item else "", "answer": item.answer if item else "",
            "prediction": score.prediction or "", "status": score.status, "error_type": score.error_type,
            "correct": bool(score.correct), "exact": bool(score.exact),
            "option_index": score.option_index,
        })
    return rows


def write_question_table(record: TrackingRecord, path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(record.table)
    return path


def check_tracker(tracker: str) -> None:
    """Fail now, before scoring, if the tracker's package is missing."""
    if tracker not in TRACKERS:
        raise ValueError(f"unknown tracker {tracker!r}: one of {', '.join(TRACKERS)}")
    _require(tracker, tracker)


def log_scores(trackers: Iterable[str], result: ScoreResult, run_dir: str | Path | None,
               dataset: str | Path | None, written: Iterable[str | Path], out_dir: str | Path) -> list[str]:
    """Write OUT/per_question.csv and send the run's record to each tracker; one line per tracker."""
    from ctbench.datasets.qa_items import load_dataset
    from ctbench.evaluation.ledger import load_run_dataset

    if dataset is not None:
        questions = load_dataset(dataset)
    elif run_dir is not None:
        questions = load_run_dataset(run_dir)
    else:
        raise CtbenchError("the per-question table needs the run's questions: pass the run folder or --dataset")
    record = tracking_record(result, run_dir, questions.items, written)
    table = write_question_table(record, Path(out_dir) / "per_question.csv")
    return [log_record(tracker, record, table) for tracker in trackers]


def log_record(tracker: str, record: TrackingRecord, table_path: str | Path) -> str:
    """Send `record` to `tracker`; returns a one-line description of where it went."""
    loggers = {"mlflow": log_to_mlflow, "wandb": log_to_wandb}
    if tracker not in loggers:
        raise ValueError(f"unknown tracker {tracker!r}: one of {', '.join(TRACKERS)}")
    try:
        return loggers[tracker](record, Path(table_path))
    except CtbenchError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrackingFailed(f"the scores are written, but {tracker} did not record them: {first}") from exc


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise TrackerUnavailable(f"--log {extra} needs the {extra} package: install ctbench[{extra}] "
                                 f"(pip install 'ctbench[{extra}]')") from None


def log_to_mlflow(record: TrackingRecord, table_path: Path) -> str:
    _require("mlflow", "mlflow")
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient()  # MLFLOW_TRACKING_URI, or MLflow's default
    experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_PROJECT
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    run_id = client.create_run(experiment_id, run_name=record.name).info.run_id
    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in record.params.items()]
    metrics = [Metric(k, v, now, 0) for k, v in record.metrics.items()]
    try:
        client.log_batch(run_id, tags=[RunTag("ctbench.kind", "score")])
        for start in range(0, len(params), 100):  # MLflow's batch limits: 100 params, 1000 metrics
            client.log_batch(run_id, params=params[start:start + 100])
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start:start + 1000])
        for path in [*record.artifacts, table_path]:
            client.log_artifact(run_id, str(path))
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    return f"mlflow run {run_id} in experiment {experiment_name!r} at {client.tracking_uri}"


def log_to_wandb(record: TrackingRecord, table_path: Path) -> str:
    wandb = _require("wandb", "wandb")
    run = wandb.init(project=os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT, name=record.name,
                     job_type="score", config=record.params)
    try:
        run.summary.update(record.metrics)
        run.log({"per_question": wandb.Table(columns=list(TABLE_COLUMNS),
                                             data=[[row[c] for c in TABLE_COLUMNS] for row in record.table])})
        artifact = wandb.Artifact(metric_key(record.name) + "-scores", type="ctbench-scores")
        for path in [*record.artifacts, table_path]:
            artifact.add_file(str(path))
        run.log_artifact(artifact)
        where = f"wandb run {run.id} ({'offline, ' + run.dir if run.settings.mode == 'offline' else run.url})"
    finally:
        run.finish()
    return where


def _flat(value: Any, prefix: str):
    """(dotted key, str value) pairs of a JSON value's scalar leaves; lists as compact JSON."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "per_volume":
                continue  # one entry per volume: far too many for params
            yield from _flat(inner, f"{prefix}.{key}")
    elif isinstance(value, list):
        yield prefix, json.dumps(value, separators=(",", ":"))
    elif value is not None:
        yield prefix, str(value)
