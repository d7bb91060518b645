"""LLM judges: versioned prompts, pluggable backends (Gemini, OpenAI-compatible), batched calls,
tolerant parsing, a persistent per-item verdict cache, and resumable judge ledgers."""
from __future__ import annotations

from ctbench.evaluation.judges.judge import JudgeItem, JudgeSpec, JudgeVerdict, LLMJudge, judges, parse_verdicts
from ctbench.evaluation.judges.prompts import JudgePrompt, load_prompt
from ctbench.evaluation.judges.run import judge_run

__all__ = ["JudgeItem", "JudgePrompt", "JudgeSpec", "JudgeVerdict", "LLMJudge", "judge_run", "judges",
           "load_prompt", "parse_verdicts"]
