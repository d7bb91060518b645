"""Correctness matrix (question x server) and paired comparisons between servers.

Paired comparisons use the same questions for both servers: McNemar's exact test on the
discordant pairs, and the accuracy difference with a cluster-robust (by volume) 95% interval.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ctbench.evaluation.intervals import clustered_mean_ci


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b = only A right, c = only B right."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # P(X <= k) for X ~ Binomial(n, 1/2), computed in log space for large n
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(x - top) for x in logs)
    return min(1.0, 2 * tail)


def paired_comparisons(matrix: dict[str, dict[str, bool]], clusters: dict[str, str],
                       servers: Sequence[str]) -> list[dict[str, Any]]:
    """All server pairs over the questions both have a verdict for."""
    out = []
    for i, a in enumerate(servers):
        for b in servers[i + 1:]:
            qids = [q for q, row in matrix.items() if a in row and b in row]
            if not qids:
                continue
            only_a = sum(matrix[q][a] and not matrix[q][b] for q in qids)
            only_b = sum(matrix[q][b] and not matrix[q][a] for q in qids)
            diffs = [float(matrix[q][a]) - float(matrix[q][b]) for q in qids]
            ci = clustered_mean_ci(diffs, [clusters[q] for q in qids])
            out.append({"a": a, "b": b, "n": len(qids), "only_a_correct": only_a, "only_b_correct": only_b,
                        "difference": ci.estimate, "ci_low": ci.low, "ci_high": ci.high,
                        "mcnemar_p": mcnemar_exact(only_a, only_b)})
    return out


def correctness_matrix(per_item: dict[str, dict[str, bool]]) -> dict[str, dict[str, bool]]:
    """server -> qid -> correct, turned into qid -> server -> correct."""
    out: dict[str, dict[str, bool]] = {}
    for server, items in per_item.items():
        for qid, ok in items.items():
            out.setdefault(qid, {})[server] = bool(ok)
    return out
