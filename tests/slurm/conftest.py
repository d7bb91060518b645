"""The slurm-marked tests run against a real cluster: the one scripts/slurm/cluster.sh starts
(found through $SLURM_CONF, else its default folder), or any other `sinfo` reaches."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEFAULT_CONF = Path(os.environ.get("CTBENCH_SLURM_DIR", "/tmp/ctbench-slurm")) / "etc" / "slurm.conf"


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """What `sinfo` says of the cluster; skips (with the reason) when none answers."""
    if "SLURM_CONF" not in os.environ and DEFAULT_CONF.is_file():
        os.environ["SLURM_CONF"] = str(DEFAULT_CONF)
    if shutil.which("sinfo") is None:
        pytest.skip("SLURM is not installed (scripts/slurm/cluster.sh start installs and starts a cluster)")
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if not conf.is_file():
        pytest.skip(f"no SLURM cluster configured ({conf} does not exist); start one with scripts/slurm/cluster.sh start")
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P %D %G"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.skip(f"no SLURM cluster reachable (sinfo got no answer in 15 s with {conf})")
    if done.returncode != 0:
        pytest.skip(f"no SLURM cluster reachable (sinfo: {done.stderr.strip() or done.returncode}); "
                    "start one with scripts/slurm/cluster.sh start")
    return done.stdout.strip()

