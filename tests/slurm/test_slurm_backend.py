"""--backend slurm on a real cluster: servers are batch jobs, answers match the local backend,
a cancelled job is resubmitted with nothing lost or repeated, refused resources stop the run
before anything is queued, and the runner cancels its jobs at the end and on Ctrl-C."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import grpc
import pytest
from runner_helpers import assert_complete_once, bench, kill9, ledger_lines, wait_for, write_registry
from slurm_helpers import job_state, wait_until_ended

from ctbench.errors import ServerStartError
from ctbench.runners.run import RunConfig, run_benchmark
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def predictions(out: Path, server: str) -> dict[str, str]:
    return {line["question_id"]: line["prediction"] for line in ledger_lines(out, server) if line["status"] == "ok"}


@pytest.fixture
def slow_registry(tmp_path, support_env) -> Path:
    """One echo server on one fake GPU, taking 600 ms per batch of <= 4: a run of 6 volumes
    outlasts the 5 s a cancelled server gives its open stream to finish."""
    return write_registry(tmp_path / "registry.yaml", {
        "slow": {"model": "ctbench_test_models:EchoModel", "args": ["--option", "delay_ms=600"], "slurm": {"gpus": 1, "time": "10"}},
    })


def test_the_phantom_benchmark_through_slurm_jobs_gives_the_local_backends_predictions(tmp_path, slurm_cluster):
    answers = {}
    for backend in ("local", "slurm"):
        out = tmp_path / backend
        result = run_benchmark(RunConfig(out_dir=out, backend=backend, servers="geometric,chance", phantom_volumes=3))
        assert all(not server.failure for server in result.servers.values()), result.servers
        answers[backend] = {name: predictions(out, name) for name in ("geometric", "chance")}
        assert all(len(answers[backend][name]) == 30 for name in answers[backend])
    assert answers["slurm"] == answers["local"]
    job_id = (tmp_path / "slurm" / "logs" / "geometric.jobid").read_text()
    assert job_state(job_id) not in {"PENDING", "RUNNING", "COMPLETING"}, "the runner cancels its jobs at the end"
    assert "geometric: job " + job_id + " on n" in (tmp_path / "slurm" / "logs" / "geometric.log").read_text()


def test_a_server_job_cancelled_mid_run_is_resubmitted_and_the_run_loses_and_repeats_nothing(tmp_path, slow_registry, support_env, slurm_cluster):
    out = tmp_path / "run"
    proc = bench("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "slurm",
                 "--phantom-volumes", "6", "--restarts", "1", "--no-score", env=support_env)
    wait_for(lambda: len(ledger_lines(out, "slow")) >= 8, 120, "the first answers")
    first_job = (out / "logs" / "slow.jobid").read_text()
    subprocess.run(["scancel", first_job], check=True)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    assert "restarting (1/1)" in output
    assert_complete_once(out, "slow")
    second_job = (out / "logs" / "slow.jobid").read_text()
    assert second_job != first_job
    assert wait_until_ended(first_job) in {"CANCELLED", "GONE"}
    assert wait_until_ended(second_job) in {"CANCELLED", "GONE"}
    log = (out / "logs" / "slow.log").read_text()
    assert f"job {first_job} on" in log and f"job {second_job} on" in log
    assert "GPUs: 0" in log, "a job with gpus=1 sees one GPU"
    tokens = {path.stem for path in (out / "endpoints").glob("slow-*.port")}
    assert len(tokens) == 2, "each submission writes its endpoint under its own token"


def test_a_server_killed_with_sigkill_inside_its_job_is_resubmitted_and_the_run_loses_and_repeats_nothing(tmp_path, slow_registry, support_env, slurm_cluster):
    out = tmp_path / "run"
    proc = bench("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "slurm",
                 "--phantom-volumes", "6", "--restarts", "1", "--no-score", env=support_env)
    wait_for(lambda: len(ledger_lines(out, "slow")) >= 8, 120, "the first answers")
    first_job = (out / "logs" / "slow.jobid").read_text()
    (pid_file,) = (out / "endpoints").glob("slow-*.pid")  # the cluster's nodes are on this machine
    kill9(int(pid_file.read_text()))
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    assert "slow: server died; restarting (1/1)" in output
    assert_complete_once(out, "slow")
    assert wait_until_ended(first_job) in {"FAILED", "GONE"}
    assert (out / "logs" / "slow.jobid").read_text() != first_job


def test_a_runner_killed_with_sigkill_leaves_jobs_that_stop_their_servers_once_it_is_silent(tmp_path, slow_registry, support_env, slurm_cluster):
    out = tmp_path / "run"
    proc = bench("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "slurm",
                 "--phantom-volumes", "6", "--no-score", env={**support_env, "CTBENCH_SLURM_RUNNER_TIMEOUT": "4"})
    wait_for(lambda: len(ledger_lines(out, "slow")) >= 4, 120, "the first answers")
    job_id = (out / "logs" / "slow.jobid").read_text()
    kill9(proc.pid)
    proc.communicate(timeout=30)
    assert wait_until_ended(job_id, timeout=60) in {"COMPLETED", "GONE"}
    assert "the runner has been silent for 4 s: stopping the server" in (out / "logs" / "slow.log").read_text()


def test_a_job_asking_for_more_gpus_than_any_node_has_is_refused_before_anything_runs(tmp_path, support_env, slurm_cluster):
    registry = write_registry(tmp_path / "registry.yaml", {
        "fits": {"model": "ctbench_test_models:EchoModel"},
        "greedy": {"model": "ctbench_test_models:EchoModel", "slurm": {"gpus": 3}},
    })
    out = tmp_path / "run"
    with pytest.raises(ServerStartError) as refused:
        run_benchmark(RunConfig(out_dir=out, backend="slurm", servers="fits,greedy", registry=registry, phantom_volumes=1))
    message = str(refused.value)
    assert "'greedy'" in message and "gres=gpu:3" in message and "Requested node configuration is not available" in message
    assert "gpu:2" in message, "the message says what the nodes offer"
    assert not (out / "logs").exists() and not (out / "predictions").exists(), "nothing was queued or asked"


def test_a_gpu_option_on_the_command_line_overrides_the_registry(tmp_path, support_env, slurm_cluster):
    registry = write_registry(tmp_path / "registry.yaml", {"echo": {"model": "ctbench_test_models:EchoModel", "slurm": {"gpus": 1}}})
    proc = bench("run", "--servers", "echo", "--registry", str(registry), "--out", str(tmp_path / "run"), "--backend", "slurm",
                 "--slurm", "gpus=5", "--phantom-volumes", "1", "--no-score", env=support_env)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert "gres=gpu:5" in output and "Requested node configuration is not available" in output


def test_a_job_that_ends_before_listening_fails_with_its_log(tmp_path, support_env, slurm_cluster):
    registry = write_registry(tmp_path / "registry.yaml", {"broken": {"model": "no_such_module:Model"}})
    out = tmp_path / "run"
    result = run_benchmark(RunConfig(out_dir=out, backend="slurm", servers="broken", registry=registry, phantom_volumes=1))
    failure = result.servers["broken"].failure
    assert "SLURM job" in failure and "before it listened" in failure and "no_such_module" in failure


def test_ctrl_c_cancels_the_runs_jobs_and_keeps_what_was_answered(tmp_path, slow_registry, support_env, slurm_cluster):
    out = tmp_path / "run"
    proc = bench("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "slurm",
                 "--phantom-volumes", "6", "--no-score", env=support_env)
    wait_for(lambda: len(ledger_lines(out, "slow")) >= 4, 120, "the first answers")
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, output
    assert wait_until_ended((out / "logs" / "slow.jobid").read_text()) in {"CANCELLED", "GONE"}
    kept = [json.loads(line) for line in (out / "predictions" / "slow.jsonl").read_text().splitlines()]
    assert len(kept) >= 4


def node_address(node: str) -> str:
    done = subprocess.run(["scontrol", "show", "node", node, "-o"], capture_output=True, text=True, timeout=30)
    fields = dict(part.split("=", 1) for part in done.stdout.split() if "=" in part)
    return fields.get("NodeAddr", "")


def test_a_server_on_a_node_in_its_own_network_is_reached_at_the_nodes_address(tmp_path, slurm_cluster):
    address = node_address("n2")
    if address in ("", "127.0.0.1"):
        pytest.skip("node n2 shares this host's network (cluster.sh with CTBENCH_SLURM_NETNS=0, or another cluster)")
    with socket.socket() as probe, pytest.raises(OSError):
        probe.bind((address, 0))  # the node's address belongs to another network stack, not this host's
    out = tmp_path / "run"
    result = run_benchmark(RunConfig(out_dir=out, backend="slurm", servers="geometric", slurm={"nodelist": "n2"}, phantom_volumes=2))
    assert not result.servers["geometric"].failure
    assert len(predictions(out, "geometric")) == 20
    (host_file,) = (out / "endpoints").glob("geometric-*.host")
    assert host_file.read_text().strip() == address
    assert f"serving geometric on {address}:" in (out / "logs" / "geometric.log").read_text()


def test_a_server_job_refuses_calls_without_the_runs_token(tmp_path, slow_registry, support_env, slurm_cluster):
    out = tmp_path / "run"
    proc = bench("run", "--servers", "slow", "--registry", str(slow_registry), "--out", str(out), "--backend", "slurm",
                 "--phantom-volumes", "6", "--no-score", env=support_env)
    try:
        wait_for(lambda: len(ledger_lines(out, "slow")) >= 1, 120, "the first answer")
        (host_file,) = (out / "endpoints").glob("slow-*.host")
        address = f"{host_file.read_text().strip()}:{host_file.with_suffix('.port').read_text().strip()}"
        token_file = out / "secrets" / "server-token"
        assert token_file.stat().st_mode & 0o077 == 0 and (out / "secrets").stat().st_mode & 0o077 == 0
        for metadata in (None, [("authorization", "Bearer not-the-token")]):
            with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as refused:
                pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=10, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with grpc.insecure_channel(address) as channel:
            card = pb_grpc.AnswerVolumeQuestionStub(channel).Describe(
                pb.DescribeRequest(), timeout=10, metadata=[("authorization", f"Bearer {token_file.read_text()}")])
        assert card.name
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def test_two_replicas_split_the_volumes_across_both_nodes_into_one_ledger(tmp_path, support_env, slurm_cluster, caplog):
    # two GPUs per job: each node (gpu:2) holds one replica
    registry = write_registry(tmp_path / "registry.yaml", {
        "slow": {"model": "ctbench_test_models:EchoModel", "args": ["--option", "delay_ms=100"], "slurm": {"gpus": 2, "time": "10"}},
    })
    out = tmp_path / "run"
    caplog.set_level("INFO", logger="ctbench.runner.sharding")
    result = run_benchmark(RunConfig(out_dir=out, backend="slurm", servers="slow", registry=registry, phantom_volumes=6,
                                     replicas={"slow": 2}))
    assert not result.servers["slow"].failure
    assert_complete_once(out, "slow")
    shares = [record.getMessage() for record in caplog.records if "replica" in record.getMessage()]
    assert len(shares) == 2 and all("3 volumes, 30 questions" in share for share in shares), shares
    job_ids = (out / "logs" / "slow.jobid").read_text().split()
    assert len(job_ids) == 2
    nodes = set()
    for index, job_id in enumerate(job_ids, start=1):
        log = (out / "logs" / f"slow.r{index}.log").read_text()
        assert f"slow.r{index}: job {job_id} on" in log
        nodes.add(log.split(f"job {job_id} on ", 1)[1].split(",")[0])
    assert nodes == {"n1", "n2"}
    assert [path.name for path in (out / "predictions").iterdir()] == ["slow.jsonl"]

