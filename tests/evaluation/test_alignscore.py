"""AlignScore end to end: its own venv (made by `bench metrics setup alignscore`, cached under
~/.cache/ctbench), a tiny random-weight RoBERTa and AlignScore checkpoint built here, the real
worker subprocess, the score cache, a worker that dies mid-batch, and one that is not installed.
The scores mean nothing; the plumbing is real."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ctbench.cli import main
from ctbench.evaluation.alignscore import environment
from ctbench.evaluation.alignscore.client import (
    AlignScoreScorer,
    AlignScoreWorkerDied,
    AlignScoreWorkerError,
    ScoreCache,
    WorkerProcess,
)
from ctbench.evaluation.alignscore.worker import FAULT_ENV, PROTOCOL_VERSION
from ctbench.evaluation.text_metrics import AlignScoreMetric

REPO = Path(__file__).resolve().parents[2]
REFS = ["The nodule is in the right upper lobe. It measures 8 mm.", "Left kidney.", "No effusion.",
        "The liver is enlarged.", "Right.", "The lesion lies above the diaphragm."]
PREDS = ["Right upper lobe.", "left kidney", "There is a small effusion.", "Liver.", "Left.", "Above it."]


@pytest.fixture(scope="module")
def venv() -> Path:
    """The AlignScore venv, made once (minutes cold, from PyPI) and reused from ~/.cache/ctbench."""
    path = Path(os.environ.get("CTBENCH_ALIGNSCORE_TEST_VENV")
                or Path.home() / ".cache" / "ctbench" / "alignscore-venv")
    try:
        environment.setup(path, timeout_s=1800, say=lambda line: None)
    except environment.AlignScoreSetupFailed as exc:
        pytest.skip(f"AlignScore's environment is not installed ({exc}); bench metrics setup alignscore")
    return path


@pytest.fixture(scope="module")
def weights(venv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("alignscore-weights")
    subprocess.run([str(environment.venv_python(venv)), str(REPO / "tests" / "support" / "alignscore_tiny.py"),
                    str(out)], check=True, timeout=900, capture_output=True)
    return out


@pytest.fixture(scope="module")
def clean(venv, weights, tmp_path_factory) -> np.ndarray:
    """REFS/PREDS scored by a worker that never fails, from an empty cache, in batches of 2."""
    return scorer(venv, weights, tmp_path_factory.mktemp("clean") / "c.sqlite", batch_size=2).score(REFS, PREDS)


def scorer(venv, weights, cache_path, **kw) -> AlignScoreScorer:
    return AlignScoreScorer(weights=weights, venv=venv, cache=ScoreCache(cache_path), **kw)


def test_worker_says_hello_scores_and_types_its_errors(venv, weights):
    worker = WorkerProcess(environment.venv_python(venv), weights, "base", timeout_s=600)
    try:
        assert worker.hello["protocol"] == PROTOCOL_VERSION and worker.hello["model"] == "AlignScore-base"
        got = worker.score(1, [{"id": "a", "context": REFS[0], "claim": PREDS[0]},
                               {"id": "b", "context": REFS[1], "claim": "   "}])
        assert 0.0 <= got["a"] <= 1.0 and got["b"] is None  # a blank claim has no sentence to score
        with pytest.raises(AlignScoreWorkerError, match="BAD_REQUEST.*items\\[0\\].claim must be a string"):
            worker.score(2, [{"id": "c", "context": "x", "claim": 3}])
        assert worker.score(3, [{"id": "a", "context": REFS[0], "claim": PREDS[0]}]) == {"a": got["a"]}
    finally:
        worker.close()
    assert worker.proc.returncode == 0


def test_worker_refuses_incomplete_weights_with_a_typed_error(venv, tmp_path):
    with pytest.raises(AlignScoreWorkerError, match="WEIGHTS_MISSING.*AlignScore-base.ckpt"):
        WorkerProcess(environment.venv_python(venv), tmp_path, "base", timeout_s=600)


def test_scores_are_batched_deduplicated_and_cached(venv, weights, tmp_path):
    first = scorer(venv, weights, tmp_path / "c.sqlite", batch_size=4)
    values = first.score(REFS + REFS[:2], PREDS + PREDS[:2])  # two repeated pairs
    assert values.shape == (8,) and np.all((values >= 0) & (values <= 1))
    assert np.array_equal(values[6:], values[:2]) and (first.scored, first.starts) == (6, 1)
    again = scorer(venv, weights, tmp_path / "c.sqlite")
    assert np.array_equal(again.score(REFS, PREDS), values[:6]) and (again.scored, again.starts) == (0, 0)


def test_a_worker_that_dies_mid_batch_is_restarted_and_the_scores_are_identical(venv, weights, clean, tmp_path):
    env = dict(os.environ, **{FAULT_ENV: f"exit-in-batch:2:{tmp_path / 'died-once'}"})
    faulty = scorer(venv, weights, tmp_path / "f.sqlite", batch_size=2, env=env)
    assert np.array_equal(faulty.score(REFS, PREDS), clean)
    assert (tmp_path / "died-once").exists() and faulty.starts == 2 and faulty.scored == 6


def test_a_run_whose_worker_dies_resumes_from_the_cache(venv, weights, clean, tmp_path):
    env = dict(os.environ, **{FAULT_ENV: "exit-in-batch:2"})
    dying = scorer(venv, weights, tmp_path / "c.sqlite", batch_size=2, env=env, restarts=0)
    with pytest.raises(AlignScoreWorkerDied, match="exited 70 during batch 2"):
        dying.score(REFS, PREDS)
    assert dying.scored == 2  # batch 1 reached the cache before the worker died
    resumed = scorer(venv, weights, tmp_path / "c.sqlite", batch_size=2)
    values = resumed.score(REFS, PREDS)
    assert resumed.scored == 4
    assert np.array_equal(values, clean)


def test_bench_score_and_report_show_alignscore(venv, weights, small_run, tmp_path, monkeypatch):
    monkeypatch.setenv("CTBENCH_CACHE", str(tmp_path / "cache"))
    res = CliRunner().invoke(main, ["score", str(small_run), "--metrics", "rouge,alignscore",
                                    "--alignscore-weights", str(weights), "--alignscore-venv", str(venv)])
    assert res.exit_code == 0, res.output
    rows = json.loads((small_run / "summary.json").read_text(encoding="utf-8"))["rows"]
    overall = {r["server"]: r for r in rows if r["metric"] == "alignscore" and r["group_kind"] == "all"}
    assert set(overall) == {"good", "flaky"}
    for row in overall.values():
        assert 0.0 <= row["value"] <= 1.0 and row["scored"] > 0 and not row["note"]
    # the report reads the weights and venv from the environment; the scores come from the cache
    monkeypatch.setenv("CTBENCH_ALIGNSCORE_WEIGHTS", str(weights))
    monkeypatch.setenv("CTBENCH_ALIGNSCORE_VENV", str(venv))
    res = CliRunner().invoke(main, ["report", str(small_run), "--metrics", "alignscore"])
    assert res.exit_code == 0, res.output
    md = (small_run / "report" / "report.md").read_text(encoding="utf-8")
    assert "AlignScore ×100" in md and "alignscore: unavailable" not in md


def test_a_missing_environment_says_how_to_install_it(tmp_path, small_run, monkeypatch):
    metric = AlignScoreMetric(venv=str(tmp_path / "nowhere"), weights=str(tmp_path))
    reason = metric.unavailable()
    assert "install with `bench metrics setup alignscore --venv" in reason and str(tmp_path / "nowhere") in reason
    with pytest.raises(environment.AlignScoreNotInstalled, match="bench metrics setup alignscore"):
        metric.per_item(["a"], ["b"])
    res = CliRunner().invoke(main, ["score", str(small_run), "--metrics", "alignscore",
                                    "--alignscore-venv", str(tmp_path / "nowhere")])
    assert res.exit_code == 0, res.output
    assert "bench metrics setup alignscore" in (small_run / "summary.csv").read_text(encoding="utf-8")


def test_missing_weights_say_how_to_fetch_them(tmp_path, monkeypatch):
    monkeypatch.delenv("CTBENCH_ALIGNSCORE_WEIGHTS", raising=False)
    (tmp_path / "v" / "bin").mkdir(parents=True)
    (tmp_path / "v" / "bin" / "python").write_text("")
    (tmp_path / "v" / environment.MARKER).write_text(json.dumps({"requirements_id": environment.requirements_id()}))
    assert "--alignscore-weights DIR" in AlignScoreScorer(venv=tmp_path / "v", cache=False).unavailable()
    reason = AlignScoreScorer(venv=tmp_path / "v", weights=tmp_path, cache=False).unavailable()
    assert "AlignScore-base.ckpt" in reason and "bench metrics fetch alignscore" in reason


def test_fetch_dry_run_names_every_source(tmp_path):
    res = CliRunner().invoke(main, ["metrics", "fetch", "alignscore", "--weights", str(tmp_path), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "huggingface.co/yzha/AlignScore/resolve/main/AlignScore-base.ckpt" in res.output
    assert "FacebookAI/roberta-base" in res.output and "punkt_tab.zip" in res.output
    assert list(tmp_path.iterdir()) == []


def test_fetch_writes_the_weights_layout_and_keeps_what_is_there(tmp_path):
    import contextlib
    import io
    import zipfile

    from ctbench.evaluation.alignscore import weights

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("punkt_tab/english/sent_starters.txt", "")
    asked = []

    def opener(url, timeout):  # stands in for the network: a body per URL
        asked.append(url)
        return contextlib.closing(io.BytesIO(archive.getvalue() if url.endswith(".zip") else url.encode()))

    (tmp_path / "roberta-base").mkdir()
    (tmp_path / "roberta-base" / "vocab.json").write_text("{}")
    weights.fetch(tmp_path, "base", say=lambda line: None, opener=opener)
    assert weights.problem(tmp_path, "base") is None
    assert not any(u.endswith("vocab.json") for u in asked) and len(asked) == len(weights.download_plan()) - 1
    assert (tmp_path / "AlignScore-base.ckpt").read_text() == weights.CHECKPOINT_URL.format(name="AlignScore-base.ckpt")

    def offline(url, timeout):
        raise OSError("network unreachable")

    with pytest.raises(weights.AlignScoreDownloadFailed, match="AlignScore-large.ckpt: network unreachable"):
        weights.fetch(tmp_path, "large", say=lambda line: None, opener=offline)
