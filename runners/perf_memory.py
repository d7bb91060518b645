"""`bench perf memory`: a volume-reading server's peak memory against the number of volumes.

N distinct volumes go inline over one stream (as `bench run` sends a server's share) to a
server process whose model decodes every volume; the server's peak RSS (VmHWM) is read when the
stream ends. Bounded memory means the peak stays flat in N: the cache limit plus what is in
flight, however long the stream. Linux only (reads /proc).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ctbench.model_servers.sdk import Model, QuestionItem
from ctbench.preprocess.volume import Volume, save_volume
from ctbench.runners.client import ServerStream, VolumeGroup
from ctbench.runners.perf import _items
from ctbench.runners.process_usage import peak_rss_kb
from ctbench.runners.volume_source import VolumeSource


class VoxelSumModel(Model):
    """Decodes every volume (what a VLM server does first) and answers with its voxel sum."""

    name = "voxel-sum"
    version = "perf"

    def answer(self, batch: list[QuestionItem]) -> list[str]:
        return [str(int(np.asarray(item.prepared.array, dtype=np.int64).sum())) for item in batch]


def memory_benchmark(volumes: int = 40, volume_mb: int = 16, cache_mb: int = 128, workdir: Path | None = None) -> dict:
    shape = (max(1, (volume_mb << 20) // (2 * 256 * 256)), 256, 256)  # int16, volume_mb decoded
    with tempfile.TemporaryDirectory(prefix="ctbench-perf-memory-", dir=workdir) as tmp:
        root = Path(tmp)
        base = np.random.default_rng(0).integers(-1000, 1000, size=shape, dtype=np.int16)
        paths = []
        for i in range(volumes):
            base.flat[0] = i  # distinct bytes, so distinct volume ids
            paths.append(root / f"v{i:04d}.nii")
            save_volume(Volume(base), paths[-1])
        port_file = root / "port"
        server = subprocess.Popen([sys.executable, "-m", "ctbench.runners.perf_memory", str(port_file), str(cache_mb)], stdin=subprocess.DEVNULL)
        try:
            while not port_file.is_file():
                if server.poll() is not None:
                    raise RuntimeError(f"the memory benchmark's server exited with code {server.returncode}")
                time.sleep(0.05)
            address = f"127.0.0.1:{int(port_file.read_text())}"
            outcomes = []
            start = time.perf_counter()
            groups = [VolumeGroup(p, None, _items(p.name, 2)) for p in paths]
            left = ServerStream(address, VolumeSource(max_bytes=4 * (volume_mb << 20)), outcomes.append, use_reference=False, window=4).stream(groups)
            seconds = time.perf_counter() - start
            peak_kb = peak_rss_kb(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    return {
        "volumes": volumes,
        "volume_mb": shape[0] * 256 * 256 * 2 / (1 << 20),
        "cache_mb": cache_mb,
        "answered": sum(1 for o in outcomes if o.error is None),
        "errors": sum(1 for o in outcomes if o.error is not None),
        "missing": len(left),
        "seconds": seconds,
        "server_peak_rss_mb": peak_kb / 1024,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


if __name__ == "__main__":  # the server side: python -m ctbench.runners.perf_memory PORT_FILE CACHE_MB
    from ctbench.model_servers.sdk import ServerOptions, serve

    serve(VoxelSumModel(), ServerOptions(port=0, cache_bytes=int(sys.argv[2]) << 20), port_file=Path(sys.argv[1]))
