"""Replicas of one server: the run's volumes split across K streams, one per replica.

A volume's questions stay on one replica, so its prepared volume is reused there as with a
single server. Volumes go to the replica with the fewest questions so far, in dataset order:
K shards of nearly equal size. All replicas settle into the server's one ledger (the caller's
`on_outcome`), so a resume sees one server whatever K was.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ctbench.datasets.qa_items import QAItem
from ctbench.runners.client import ServerStream, VolumeGroup

log = logging.getLogger("ctbench.runner.sharding")


def split_groups(groups: list[VolumeGroup], k: int) -> list[list[VolumeGroup]]:
    """K shards of whole volumes, balanced by question count (ties: the lower shard)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    shards: list[list[VolumeGroup]] = [[] for _ in range(k)]
    sizes = [0] * k
    for group in groups:
        lightest = sizes.index(min(sizes))
        shards[lightest].append(group)
        sizes[lightest] += len(group.items)
    return shards


def stream_replicas(addresses: tuple[str, ...], groups: list[VolumeGroup], make_stream: Callable[[str], ServerStream],
                    name: str = "") -> list[QAItem]:
    """Stream each shard to its replica at once; return the questions left without an outcome
    (those of every replica whose stream broke)."""
    if len(addresses) == 1:
        return make_stream(addresses[0]).stream(groups)
    shards = split_groups(groups, len(addresses))
    left: list[list[QAItem]] = [[] for _ in addresses]

    def run(index: int) -> None:
        left[index] = make_stream(addresses[index]).stream(shards[index])

    threads = []
    for index, (address, shard) in enumerate(zip(addresses, shards)):
        log.info("%s replica %d at %s: %d volumes, %d questions", name, index + 1, address, len(shard),
                 sum(len(group.items) for group in shard))
        thread = threading.Thread(target=run, args=(index,), name=f"ctbench-{name}-r{index + 1}", daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return [item for items in left for item in items]
