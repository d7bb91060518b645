"""`bench conformance`: what a model team runs against its own server before shipping it.

`run_conformance(address)` drives a running server through the checks in `checks.py` and
returns a `ConformanceReport` (report.py) that says what passed, what failed and why.
"""
from ctbench.conformance.checks import CHECKS, run_conformance
from ctbench.conformance.report import CheckResult, ConformanceReport
from ctbench.conformance.session import ConformanceOptions

__all__ = ["CHECKS", "CheckResult", "ConformanceOptions", "ConformanceReport", "run_conformance"]
