"""Helpers for the slurm-marked tests: a job's state as squeue tells it."""
from __future__ import annotations

import subprocess


def job_state(job_id: str) -> str:
    done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or "GONE"


def wait_until_ended(job_id: str, timeout: float = 60) -> str:
    """The job's final state once it no longer holds its node."""
    from runner_helpers import wait_for

    live = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"}
    wait_for(lambda: job_state(job_id) not in live, timeout, f"SLURM job {job_id} to end")
    return job_state(job_id)
