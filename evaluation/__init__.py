"""Scoring: per-item matches and metrics, aggregation with clustered intervals, judges, reports."""
from __future__ import annotations

from ctbench.evaluation.scoring import ScoreResult, score_predictions, score_run

__all__ = ["ScoreResult", "score_predictions", "score_run"]
