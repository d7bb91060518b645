"""The SLURM backend: each model server is one batch job running `bench serve` in this venv.

A job asks for what the server's `x-ctbench.slurm` block in the registry says (gpus, cpus, mem,
time, partition, account), with `bench run --slurm KEY=VALUE` laid over it. Inside the job the
server binds to its node's address (the NodeAddr SLURM knows it by) on a free port and writes
the address and port to RUN/endpoints/, named by a token drawn per submission: job ids restart
at 1 when a cluster's state is reset, tokens do not repeat. The run folder, the venv and the data
must sit on a filesystem the nodes share.

A job that ends mid-run (scancel, node failure, time limit) breaks its stream; the runner then
calls `restart`, which submits a new job, and the ledger rules make the resume lose and repeat
nothing. The job's id is in RUN/logs/<name>.jobid, its output in RUN/logs/<name>.log.

Anyone on the cluster network can reach a node's ports, so each run draws a secret, written
owner-only to RUN/secrets/server-token; the servers refuse calls without it (health excepted,
model_servers/sdk/auth.py) and the runner's channels send it (runners/channels.py).
"""
from __future__ import annotations

import os
import secrets
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import ServerStartError
from ctbench.model_servers.sdk.auth import TOKEN_FILE_ENV
from ctbench.runners import channels
from ctbench.runners.backends import slurm_jobs
from ctbench.runners.backends.base import Backend, Endpoint, ServerSpec
from ctbench.runners.backends.slurm_jobs import JobResources

STATE_POLL_S = 0.5  # squeue at most this often per job: a shared controller serves many users
STOP_WAIT_S = 30.0


@dataclass
class _Job:
    spec: ServerSpec
    resources: JobResources
    job_id: str
    token: str
    data_root: Path
    log_dir: Path
    state: str = "PENDING"
    checked_at: float = 0.0
    address: str = ""

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.spec.name}.log"


class SlurmBackend(Backend):
    name = "slurm"

    def __init__(self, overrides: dict | None = None, start_timeout_s: float = 600.0, python: str = sys.executable):
        """`overrides`: sbatch resources for every server (`--slurm KEY=VALUE`);
        `start_timeout_s`: how long a job may wait in the queue and start before it listens."""
        self.overrides = dict(overrides or {})
        JobResources().merged(self.overrides, "--slurm")  # bad options fail before anything runs
        self.start_timeout_s = start_timeout_s
        self.python = python
        self._jobs: dict[str, _Job] = {}
        self._refusals: dict[JobResources, str | None] = {}
        self._token = secrets.token_urlsafe(32)

    def resources(self, spec: ServerSpec) -> JobResources:
        base = JobResources(gpus=1 if spec.gpu else 0)
        return base.merged(spec.slurm, f"registry entry {spec.name!r}").merged(self.overrides, "--slurm")

    def runnable(self, spec: ServerSpec) -> bool | str:
        if not spec.local:
            return "has no venv form; it runs in its container image (not yet under --backend slurm)"
        resources = self.resources(spec)
        if resources not in self._refusals:
            self._refusals[resources] = slurm_jobs.check_submittable(resources)
        refusal = self._refusals[resources]
        if refusal is None:
            return True
        offered = slurm_jobs.node_gres()
        return f"asks SLURM for {resources.describe()}, which the cluster refuses: {refusal}" + (
            f" (its nodes offer {offered})" if offered else "")

    def start(self, spec: ServerSpec, data_root: Path, log_dir: Path) -> Endpoint:
        log_dir = log_dir.resolve()  # the job's paths must not depend on where it starts
        data_root = data_root.resolve()
        log_dir.mkdir(parents=True, exist_ok=True)
        endpoints = log_dir.parent / "endpoints"
        endpoints.mkdir(exist_ok=True)
        token = secrets.token_hex(8)
        host_file = endpoints / f"{spec.name}-{token}.host"
        port_file = endpoints / f"{spec.name}-{token}.port"
        resources = self.resources(spec)
        token_file = self._write_token(log_dir.parent / "secrets")
        job_id = slurm_jobs.submit(self._script(spec, resources, data_root, log_dir, host_file, port_file, token_file))
        (log_dir / f"{spec.name}.jobid").write_text(job_id)
        job = self._jobs[spec.name] = _Job(spec, resources, job_id, token, data_root, log_dir)
        deadline = time.monotonic() + self.start_timeout_s
        while not (port_file.is_file() and host_file.is_file()):
            if not self.is_alive(spec.name):
                raise ServerStartError(
                    f"server {spec.name!r}: SLURM job {job_id} ended ({job.state}) before it listened:\n{self.logs(spec.name)}")
            if time.monotonic() > deadline:
                state, reason = slurm_jobs.job_state(job_id)
                self.stop(spec.name)
                raise ServerStartError(
                    f"server {spec.name!r}: SLURM job {job_id} was not listening within {self.start_timeout_s:.0f}s "
                    f"(state {state}{', ' + reason if reason and reason != 'None' else ''}):\n{self.logs(spec.name)}")
            time.sleep(0.1)
        host = host_file.read_text().strip()
        job.address = f"[{host}]:{port_file.read_text().strip()}" if ":" in host else f"{host}:{port_file.read_text().strip()}"
        channels.register_token(job.address, self._token)
        return Endpoint(spec.name, job.address, data_root=str(data_root))

    def _write_token(self, folder: Path) -> Path:
        """The run's secret, readable by its owner only (the jobs run as the same user)."""
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        path = folder / "server-token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self._token)
        os.chmod(path, 0o600)
        return path

    def _script(self, spec: ServerSpec, resources: JobResources, data_root: Path, log_dir: Path, host_file: Path,
                port_file: Path, token_file: Path) -> str:
        q = shlex.quote
        serve = [self.python, "-m", "ctbench", "serve", spec.model, "--port", "0", "--port-file", str(port_file),
                 "--data-root", str(data_root), *spec.args]
        lines = [
            "#!/bin/bash",
            f"#SBATCH --job-name=ctbench-{spec.name}",
            f"#SBATCH --output={log_dir / (spec.name + '.log')}",
            "#SBATCH --open-mode=append",
            "#SBATCH --no-requeue",  # the runner resubmits, so it always knows the job it talks to
            *(f"#SBATCH {option}" for option in resources.sbatch_options()),
            "set -euo pipefail",
            f'echo "=== $(date +%Y-%m-%dT%H:%M:%S) job $SLURM_JOB_ID on $SLURMD_NODENAME, {resources.describe()}, GPUs: ${{CUDA_VISIBLE_DEVICES:-none}}"',
            # the address the cluster reaches this node at; a server on 127.0.0.1 would be
            # unreachable from the runner's host
            'host=$(scontrol show node "$SLURMD_NODENAME" -o | grep -o "NodeAddr=[^ ]*" | cut -d= -f2)',
            'host=${host:-$(hostname)}',
            *(f"export {key}={q(str(value))}" for key, value in spec.environment.items()),
            f"export {TOKEN_FILE_ENV}={q(str(token_file))}",
            f'echo "$host" > {q(str(host_file))}.tmp && mv {q(str(host_file))}.tmp {q(str(host_file))}',
            "exec " + " ".join(q(part) for part in serve[:5]) + ' --host "$host" ' + " ".join(q(part) for part in serve[5:]),
        ]
        return "\n".join(lines) + "\n"

    def job_id(self, name: str) -> str | None:
        job = self._jobs.get(name)
        return job.job_id if job else None

    def is_alive(self, name: str) -> bool:
        job = self._jobs.get(name)
        if job is None:
            return False
        now = time.monotonic()
        if now - job.checked_at >= STATE_POLL_S:
            job.state, _ = slurm_jobs.job_state(job.job_id)
            job.checked_at = now
        return job.state in slurm_jobs.LIVE_STATES

    def restart(self, name: str) -> Endpoint:
        job = self._jobs[name]
        self.stop(name)
        return self.start(job.spec, job.data_root, job.log_dir)

    def logs(self, name: str, tail: int = 40) -> str:
        job = self._jobs.get(name)
        if job is None or not job.log_path.is_file():
            return ""
        return "\n".join(job.log_path.read_text(errors="replace").splitlines()[-tail:])

    def stop(self, name: str) -> None:
        """Cancel the job and wait (bounded) until SLURM says it has ended."""
        job = self._jobs.get(name)
        if job is None:
            return
        slurm_jobs.cancel(job.job_id)  # a no-op for a job that already ended
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            job.state, _ = slurm_jobs.job_state(job.job_id)
            if job.state not in slurm_jobs.LIVE_STATES and job.state != "COMPLETING":
                break
            time.sleep(STATE_POLL_S)
        channels.forget_token(job.address)
        self._jobs.pop(name, None)

    def running(self) -> list[str]:
        return list(self._jobs)


def slurm_backend(overrides: dict | None = None) -> tuple[SlurmBackend, str]:
    """The backend and a sentence naming the cluster; `SlurmUnavailable` when none answers."""
    available, why = slurm_jobs.cluster_available()
    if not available:
        raise slurm_jobs.SlurmUnavailable(f"no SLURM cluster answers: {why}")
    return SlurmBackend(overrides), f"SLURM batch jobs (--backend slurm; partitions: {why})"
