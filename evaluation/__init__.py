"""Scoring: per-item matches and metrics, aggregation with clustered intervals, judges, reports."""
from __future__ import annotations

from ctbench.project import require_import_name

require_import_name(__name__, __file__)

from ctbench.evaluation.scoring import ScoreResult, score_predictions, score_run  # noqa: E402

__all__ = ["ScoreResult", "score_predictions", "score_run"]
