"""The runner's memory on the inline path is bounded by its inline buffer, whatever the number of
volumes: three streams (three servers' shares, as `bench run` sends them) upload N distinct 20 MiB
files inline, read, hashed and sent in one pass, to a real `chance` server process, from a runner
process of their own whose peak RSS (`ru_maxrss`) is its own. Before the volume bytes had memory
maps of their own, the freed volumes stayed pinned in malloc's per-thread arenas and the peak
grew with N. The server's peak, from the same runs, is bounded the same way: its upload buffers
are memory maps of their own, its malloc arenas are capped and their free pages given back once
each upload is in (`malloc_arenas.py`), so the 1 MiB chunk copies its threads free do not pile up
in the arenas of its many threads, and its HTTP/2 receive windows do not grow (no BDP probing), so
gRPC buffers few chunks for a stream whose reader lags."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

MIB = 1 << 20
VOLUME_MIB = 20
BUFFER_MIB = 100
STREAMS = 3
SMALL_N, LARGE_N = 15, 75

RUNNER = r"""
import json, resource, subprocess, sys, threading
from pathlib import Path
from ctbench.datasets.qa_items import QAItem
from ctbench.runners.client import ServerStream, VolumeGroup
from ctbench.runners.volume_source import VolumeSource

folder, n, buffer_bytes, streams = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
server_options = sys.argv[5] if len(sys.argv) > 5 else "{}"
server = subprocess.Popen([sys.executable, "-c", '''
import json, resource, sys, time
from ctbench.model_servers.baselines.chance import Chance
from ctbench.model_servers.sdk import ModelServer, ServerOptions
options = ServerOptions(port=0, **json.loads(sys.argv[1]))
server = ModelServer(Chance(), options)
port = server.start()
assert server.loaded.wait(30)
print(port, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
sys.stdin.read()  # until the runner closes it
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
''', server_options], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
try:
    port, server_baseline = map(int, server.stdout.readline().split())
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    paths = sorted(folder.glob("v*.bin"))[:n]
    groups = [VolumeGroup(p, None, [QAItem(f"q{i}", f"c{i}", str(p), "Which side?", "A", ("A) left", "B) right"), "mcq")])
              for i, p in enumerate(paths)]
    source = VolumeSource(buffer_bytes)
    outcomes, left = [], []
    def one_stream():
        left.extend(ServerStream(f"127.0.0.1:{port}", source, outcomes.append, use_reference=False,
                                 hash_follows=True).stream(groups))
    threads = [threading.Thread(target=one_stream) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
finally:
    server.stdin.close()
    server_peak = int(server.stdout.readline() or 0)
    server.wait(30)
print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "outcomes": len(outcomes), "left": len(left),
                  "errors": [o.error.to_json() for o in outcomes if o.error][:3], "cached": source.cached_bytes,
                  "server_baseline_kib": server_baseline, "server_peak_kib": server_peak}))
"""


def _peak(folder, n: int, server_options: dict | None = None) -> dict:
    """One runner process's figures; `server_options`: `ServerOptions` fields other than the SDK's defaults."""
    done = subprocess.run([sys.executable, "-c", RUNNER, str(folder), str(n), str(BUFFER_MIB * MIB), str(STREAMS),
                           json.dumps(server_options or {})],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["outcomes"] == STREAMS * n and figures["left"] == 0 and not figures["errors"], figures
    assert figures["cached"] <= BUFFER_MIB * MIB
    return figures


@pytest.fixture(scope="module")
def peaks(tmp_path_factory) -> tuple[dict, dict]:
    """The figures of runs over SMALL_N and LARGE_N volumes."""
    folder = tmp_path_factory.mktemp("inline-memory") / "volumes"
    folder.mkdir()
    try:
        for i in range(LARGE_N):  # distinct files, each its own hash
            (folder / f"v{i:03d}.bin").write_bytes(os.urandom(MIB) * (VOLUME_MIB - 1) + os.urandom(MIB))
        return _peak(folder, SMALL_N), _peak(folder, LARGE_N)
    finally:
        shutil.rmtree(folder)  # 1.5 GB: never left behind in pytest's kept folders


@pytest.mark.slow
def test_the_runners_peak_memory_inline_is_its_buffer_plus_a_constant_flat_in_the_number_of_volumes(peaks):
    small, large = peaks
    # The buffer, plus per stream the volume being sent and the one read ahead, plus a constant.
    bound_mib = BUFFER_MIB + 2 * STREAMS * VOLUME_MIB + 64
    for figures in (small, large):
        assert (figures["peak_kib"] - figures["baseline_kib"]) / 1024 <= bound_mib, (small, large)
    grown_mib = (large["peak_kib"] - small["peak_kib"]) / 1024
    assert grown_mib <= BUFFER_MIB / 4, f"peak RSS grew {grown_mib:.0f} MiB from {SMALL_N} to {LARGE_N} volumes: {small} {large}"


@pytest.mark.slow
def test_the_servers_peak_memory_inline_is_its_uploads_in_flight_plus_a_constant_at_any_number_of_volumes(peaks):
    # Per stream the upload being received (its buffer), plus a constant: the chunk messages in
    # flight stay few because the receive windows do not grow. With gRPC's BDP probing on they
    # did, and this bound was exceeded in five of six runs (BENCHMARKS.md).
    bound_mib = STREAMS * VOLUME_MIB + 64
    for figures in peaks:
        assert figures["server_peak_kib"] > 0, figures
        grown_mib = (figures["server_peak_kib"] - figures["server_baseline_kib"]) / 1024
        assert grown_mib <= bound_mib, f"the server's peak is {grown_mib:.0f} MiB over its baseline: {peaks}"


def test_volume_bytes_are_a_read_only_view_equal_to_the_file(tmp_path):
    from ctbench.runners.volume_source import VolumeSource

    path = tmp_path / "v.bin"
    path.write_bytes(b"abc" * 1000)
    data = VolumeSource().get(path).data
    assert data == path.read_bytes() and data.readonly and bytes(data[3:6]) == b"abc"
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert VolumeSource().get(empty).data == b""


def test_a_file_whose_size_changed_after_it_was_stamped_is_a_typed_error_naming_it(tmp_path):
    from ctbench.errors import InvalidVolume
    from ctbench.runners.volume_source import read_file

    path = tmp_path / "v.bin"
    path.write_bytes(b"x" * 100)
    with pytest.raises(InvalidVolume, match=r"v\.bin: the file changed size while it was read \(120 bytes"):
        read_file(path, 120)  # shorter than stamped
    with pytest.raises(InvalidVolume, match=r"v\.bin: the file changed size"):
        read_file(path, 80)  # longer than stamped
