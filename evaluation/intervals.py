"""Confidence intervals for accuracies when several questions share one volume.

Questions about the same CT volume are not independent, so the usual binomial interval is too
narrow. `clustered_proportion_ci` uses the cluster-robust (sandwich) variance of the mean with
clusters = volumes, turns it into a design effect, and reports a Wilson score interval at the
effective sample size n / deff. With every cluster of size one it is the plain Wilson interval.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int
    n_clusters: int
    design_effect: float


def clustered_proportion_ci(values: Sequence[float], clusters: Sequence[str], z: float = Z95) -> Interval:
    """Mean of 0/1 `values` with a cluster-robust 95% interval (clusters: one id per value)."""
    n = len(values)
    if n != len(clusters):
        raise ValueError(f"values ({n}) and clusters ({len(clusters)}) differ in length")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, 0, math.nan)
    sums: dict[str, list[float]] = {}
    for v, c in zip(values, clusters):
        s = sums.setdefault(c, [0.0, 0])
        s[0] += v
        s[1] += 1
    g = len(sums)
    p = sum(values) / n
    if 0.0 < p < 1.0 and g > 1:
        var_cluster = g / (g - 1) * sum((y - p * m) ** 2 for y, m in sums.values()) / n**2
        var_srs = p * (1 - p) / n
        deff = max(var_cluster / var_srs, 1.0 / n)
    else:
        # no spread to estimate from: be conservative and count volumes, not questions
        deff = n / g
    n_eff = n / deff
    low, high = _wilson(p, n_eff, z)
    return Interval(p, low, high, n, g, deff)


def _wilson(p: float, n: float, z: float) -> tuple[float, float]:
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if p <= 0.0 else max(0.0, min(p, centre - half))
    high = 1.0 if p >= 1.0 else min(1.0, max(p, centre + half))
    return low, high


def clustered_mean_ci(values: Sequence[float], clusters: Sequence[str], z: float = Z95) -> Interval:
    """Mean of continuous `values` with a cluster-robust (by volume) normal 95% interval."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, 0, math.nan)
    mean = math.fsum(values) / n
    resid: dict[str, float] = {}
    for v, c in zip(values, clusters):
        resid[c] = resid.get(c, 0.0) + (v - mean)
    g = len(resid)
    if g < 2:
        return Interval(mean, math.nan, math.nan, n, g, math.nan)
    var = g / (g - 1) * math.fsum(r * r for r in resid.values()) / n**2
    var_srs = math.fsum((v - mean) ** 2 for v in values) / (n * max(n - 1, 1))
    half = z * math.sqrt(var)
    deff = var / var_srs if var_srs > 0 else math.nan
    return Interval(mean, mean - half, mean + half, n, g, deff)


def paired_difference_ci(differences: Sequence[float], clusters: Sequence[str], z: float = Z95) -> Interval:
    """Mean of paired 0/1 differences (each -1, 0 or 1) with a cluster-robust 95% interval.

    As `clustered_mean_ci`, except when every difference is the same (no discordant pairs, or all
    discordant one way): there the sandwich variance is 0 and would give a zero-width interval,
    so, as `clustered_proportion_ci` does for 0% and 100%, count volumes, not questions: the
    estimate plus or minus the Wilson upper bound of 0 of `n_volumes`, clipped to [-1, 1].
    """
    ci = clustered_mean_ci(differences, clusters, z)
    if ci.n == 0 or len(set(differences)) > 1:
        return ci
    width = _wilson(0.0, float(ci.n_clusters), z)[1]
    return Interval(ci.estimate, max(-1.0, ci.estimate - width), min(1.0, ci.estimate + width), ci.n, ci.n_clusters, math.nan)
