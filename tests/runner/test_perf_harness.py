"""`bench perf harness` runs end to end on small numbers (figures are for BENCHMARKS.md, not asserted)."""
from __future__ import annotations

import pytest

from ctbench.runners.perf import harness_benchmark


@pytest.mark.slow
def test_harness_benchmark_reports_its_figures(tmp_path):
    figures = harness_benchmark(questions=40, volumes=2, volume_mb=5, window=8, repeats=2, workdir=tmp_path, inline_volumes=3)
    assert figures["questions"] == 40
    assert figures["questions_per_s"] > 0 and figures["inline_mb_per_s"] > 0
    assert figures["inline_volume_mb"] == 5
    # the bare gRPC stream is measured next to the inline upload, in the same run
    assert figures["bare_grpc_mb_per_s"] > 0 and figures["repeats"] == 2
    assert figures["inline_to_bare"] == figures["bare_grpc_seconds"] / figures["inline_seconds"]
    assert figures["inline_sequence_volumes"] == 3 and figures["inline_sequence_mb_per_s"] > 0
    assert figures["inline_sequence_to_bare"] == figures["bare_grpc_sequence_seconds"] / figures["inline_sequence_seconds"]
    # the one-pass upload (the SDK declares it) and the hash-first one, side by side
    assert figures["inline_hash_follows"] is True
    assert figures["inline_hash_first_to_bare"] == figures["bare_grpc_seconds"] / figures["inline_hash_first_seconds"]
    assert figures["inline_sequence_hash_first_to_bare"] > 0


@pytest.mark.slow
def test_memory_benchmark_answers_every_volume_and_reads_the_server_peak(tmp_path):
    from ctbench.runners.perf_memory import memory_benchmark

    figures = memory_benchmark(volumes=3, volume_mb=1, cache_mb=1, workdir=tmp_path)
    assert (figures["answered"], figures["errors"], figures["missing"]) == (6, 0, 0)
    assert figures["server_peak_rss_mb"] > 0
