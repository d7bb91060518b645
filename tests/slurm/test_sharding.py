"""Splitting a server's volumes across replicas: whole volumes, balanced by question count."""
from __future__ import annotations

from pathlib import Path

import pytest

from ctbench.datasets.qa_items import QAItem
from ctbench.errors import ServerStartError
from ctbench.runners.client import VolumeGroup
from ctbench.runners.run import RunConfig, run_benchmark
from ctbench.runners.sharding import split_groups


def groups(*sizes: int) -> list[VolumeGroup]:
    return [VolumeGroup(Path(f"v{i}.nii.gz"), f"v{i}.nii.gz",
                        [QAItem(question_id=f"v{i}::{j}", case_id=f"v{i}", image_path=f"v{i}.nii.gz", question="q", answer="a")
                         for j in range(size)])
            for i, size in enumerate(sizes)]


CASES = [
    ((10, 10, 10, 10), 2, [[0, 2], [1, 3]]),
    ((10, 10, 10), 2, [[0, 2], [1]]),
    ((30, 5, 5, 5), 2, [[0], [1, 2, 3]]),
    ((10, 10), 1, [[0, 1]]),
    ((10,), 3, [[0], [], []]),
    ((), 2, [[], []]),
]


@pytest.mark.parametrize("sizes, k, expected", CASES)
def test_volumes_go_whole_to_the_lightest_shard(sizes, k, expected):
    shards = split_groups(groups(*sizes), k)
    assert [[int(group.relative[1:].split(".")[0]) for group in shard] for shard in shards] == expected


def test_every_question_lands_in_exactly_one_shard():
    all_groups = groups(10, 7, 3, 10, 1)
    ids = [item.question_id for shard in split_groups(all_groups, 3) for group in shard for item in group.items]
    assert sorted(ids) == sorted(item.question_id for group in all_groups for item in group.items)


@pytest.mark.parametrize("k", [0, -1])
def test_a_shard_count_below_one_is_refused(k):
    with pytest.raises(ValueError, match=f"k must be >= 1, got {k}"):
        split_groups(groups(10), k)


def test_replicas_without_the_slurm_backend_are_refused(tmp_path):
    with pytest.raises(ServerStartError, match="--replicas needs --backend slurm"):
        run_benchmark(RunConfig(out_dir=tmp_path / "run", backend="local", servers="chance", replicas={"chance": 2}, phantom_volumes=1))
