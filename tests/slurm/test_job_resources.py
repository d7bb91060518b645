"""What a server's batch job asks for: registry block and --slurm options, checked before any
sbatch runs (no cluster needed)."""
from __future__ import annotations

from pathlib import Path

import pytest
from runner_helpers import write_registry

from ctbench.errors import ServerStartError
from ctbench.runners.backends.base import ServerSpec
from ctbench.runners.backends.slurm import SlurmBackend
from ctbench.runners.backends.slurm_jobs import JobResources
from ctbench.runners.compose_file import load_compose_file

GOOD = [
    ({}, {}, []),
    ({"gpus": 1}, {}, ["--gres=gpu:1"]),
    ({"gpus": 1, "mem": "16G"}, {"gpus": "2", "time": "01:00:00"}, ["--gres=gpu:2", "--mem=16G", "--time=01:00:00"]),
    ({"partition": "gpu", "account": "lab", "cpus": 4}, {}, ["--cpus-per-task=4", "--partition=gpu", "--account=lab"]),
]


@pytest.mark.parametrize("registry_block, command_line, expected", GOOD)
def test_the_command_line_lays_over_the_registry(registry_block, command_line, expected):
    backend = SlurmBackend(command_line)
    assert backend.resources(ServerSpec("s", "m", slurm=registry_block)).sbatch_options() == expected


def test_a_gpu_server_asks_for_one_gpu_unless_told_otherwise():
    assert SlurmBackend().resources(ServerSpec("s", "m", gpu=True)).gpus == 1


BAD = [
    ({"gpu": 1}, "unknown slurm option 'gpu'. Available: gpus, cpus, mem, time, partition, account, nodelist"),
    ({"gpus": "two"}, "slurm option 'gpus' must be a whole number, got 'two'"),
    ({"cpus": -1}, "slurm option 'cpus' must be a whole number, got -1"),
]


@pytest.mark.parametrize("values, message", BAD)
def test_bad_options_name_the_option_and_where_it_came_from(values, message):
    with pytest.raises(ServerStartError, match="^registry entry 's': " + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        JobResources().merged(values, "registry entry 's'")
    with pytest.raises(ServerStartError, match="^--slurm: "):
        SlurmBackend({key: str(value) for key, value in values.items()})


def test_the_registry_carries_the_slurm_block(tmp_path):
    registry = load_compose_file(write_registry(tmp_path / "r.yaml", {"s": {"model": "m", "slurm": {"gpus": 2, "time": "30"}}}))
    assert registry["s"].slurm == {"gpus": 2, "time": "30"}


def test_the_batch_script_binds_the_server_to_its_nodes_address(tmp_path):
    spec = ServerSpec("geo", "geometric", args=("--option", "seed=1 2"), slurm={"gpus": 1}, environment={"A": "x y"})
    backend = SlurmBackend(python="/venv/bin/python")
    script = backend._script(spec, "geo", backend.resources(spec), Path("/data"), tmp_path / "geo.log", tmp_path / "e.host", tmp_path / "e.port", tmp_path / "token", tmp_path / "runner.alive")
    lines = script.splitlines()
    assert "#SBATCH --gres=gpu:1" in lines and "#SBATCH --no-requeue" in lines
    assert "export A='x y'" in lines
    assert f"echo $server > {tmp_path}/e.pid" in lines
    assert f"export CTBENCH_SERVER_TOKEN_FILE={tmp_path}/token" in lines
    assert ("/venv/bin/python -m ctbench serve geometric --host \"$host\" --port 0 "
            f"--port-file {tmp_path}/e.port --data-root /data --option 'seed=1 2' &") in lines
    assert f"  if (( $(date +%s) - $(stat -c %Y {tmp_path}/runner.alive 2>/dev/null || echo 0) > 120 )); then" in lines
    assert any(line.startswith('host=$(scontrol show node "$SLURMD_NODENAME"') for line in lines)
