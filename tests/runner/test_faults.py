"""Faults: killed servers, a killed runner, crashes at start, servers that never turn healthy,
deadlines. Each ends with every question accounted for exactly once."""
from __future__ import annotations

import time

import pytest
from runner_helpers import (
    assert_complete_once,
    bench,
    dataset_ids,
    kill9,
    ledger_lines,
    pid_alive,
    wait_for,
    write_registry,
)

from ctbench.runners.run import RunConfig, run_benchmark

pytestmark = pytest.mark.slow


def test_kill_9_of_a_server_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path, slow_registry, support_env):
    out = tmp_path / "run"
    args = ("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "local", "--phantom-volumes", "6", "--restarts", "0", "--no-score")
    proc = bench(*args, env=support_env)
    wait_for(lambda: len(ledger_lines(out, "slow")) >= 8, 60, "the first answers")
    kill9(int((out / "logs" / "slow.pid").read_text()))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, output
    assert "slow: server died" in output
    lines = ledger_lines(out, "slow")
    errors = [l for l in lines if l["status"] == "error"]
    assert errors and all(e["error"]["code"] == "UNAVAILABLE" for e in errors)
    assert {l["question_id"] for l in lines} == set(dataset_ids(out)), "every question is accounted for, as answer or error"

    resumed = bench(*args, env=support_env)
    output, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, output
    assert_complete_once(out, "slow")


def test_a_server_that_dies_is_restarted_and_the_run_completes(tmp_path, slow_registry, support_env):
    out = tmp_path / "run"
    proc = bench("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "local", "--phantom-volumes", "6", "--restarts", "1", "--no-score", env=support_env)
    wait_for(lambda: len(ledger_lines(out, "slow")) >= 8, 60, "the first answers")
    kill9(int((out / "logs" / "slow.pid").read_text()))
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "restarting (1/1)" in output
    assert_complete_once(out, "slow")


def test_kill_9_of_the_runner_then_resume_loses_and_duplicates_nothing(tmp_path, slow_registry, support_env):
    out = tmp_path / "run"
    args = ("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "local", "--phantom-volumes", "6", "--no-score")
    proc = bench(*args, env=support_env)
    wait_for(lambda: len(ledger_lines(out, "slow")) >= 8, 60, "the first answers")
    server_pid = int((out / "logs" / "slow.pid").read_text())
    kill9(proc.pid)
    proc.communicate(timeout=30)
    wait_for(lambda: not pid_alive(server_pid), 20, "the orphaned server to exit with its parent")
    resumed = bench(*args, env=support_env)
    output, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, output
    assert_complete_once(out, "slow")


def test_a_torn_last_ledger_line_is_cut_and_its_question_asked_again(tmp_path, slow_registry, support_env):
    out = tmp_path / "run"
    config = RunConfig(out_dir=out, backend="local", servers="slow", registry=slow_registry, phantom_volumes=2)
    run_benchmark(config)
    path = out / "predictions" / "slow.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # as if killed mid-write
    result = run_benchmark(config)
    assert result.servers["slow"].ok == 1
    assert_complete_once(out, "slow")


def test_a_server_crashing_at_start_is_reported_and_the_others_carry_on(tmp_path, support_env):
    registry = write_registry(tmp_path / "registry.yaml", {
        "crashy": {"model": "ctbench_test_models:CrashAtStartModel"},
        "geometric": {"model": "geometric"},
    })
    messages = []
    result = run_benchmark(RunConfig(out_dir=tmp_path / "run", backend="local", registry=registry, phantom_volumes=2), announce=messages.append)
    assert result.servers["geometric"].ok == 20
    assert "exited at start with code 3" in result.servers["crashy"].failure
    errors = ledger_lines(tmp_path / "run", "crashy")
    assert len(errors) == 20 and all(e["error"]["type"] == "ServerStartError" for e in errors)
    assert any("crashy" in m for m in messages)


def test_a_server_that_never_turns_healthy_fails_within_the_bound_and_says_why(tmp_path, support_env):
    registry = write_registry(tmp_path / "registry.yaml", {"stuck": {"model": "ctbench_test_models:NeverReadyModel"}})
    started = time.monotonic()
    result = run_benchmark(RunConfig(out_dir=tmp_path / "run", backend="local", registry=registry, phantom_volumes=1, health_timeout_s=3))
    assert time.monotonic() - started < 60
    failure = result.servers["stuck"].failure
    assert "did not turn healthy within 3s" in failure
    assert "weights missing" in failure  # the server's own log explains it


def test_a_question_past_its_deadline_is_recorded_as_such(tmp_path, support_env):
    registry = write_registry(tmp_path / "registry.yaml", {
        "sleepy": {"model": "ctbench_test_models:EchoModel", "args": ["--option", "delay_ms=3000"]},
    })
    result = run_benchmark(RunConfig(out_dir=tmp_path / "run", backend="local", registry=registry, phantom_volumes=1, deadline_s=0.5))
    lines = ledger_lines(tmp_path / "run", "sleepy")
    assert len(lines) == 10
    assert {l["error"]["code"] for l in lines if l["status"] == "error"} == {"DEADLINE_EXCEEDED"}
    assert result.servers["sleepy"].errors >= 4
