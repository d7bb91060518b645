"""The SLURM backend: each model server is one batch job running `bench serve` in this venv, or
in a Charliecloud image (`image=DIR`, runners/backends/charliecloud.py).

A job asks for what the server's `x-ctbench.slurm` block in the registry says (gpus, cpus, mem,
time, partition, account), with `bench run --slurm KEY=VALUE` laid over it. Inside the job the
server binds to its node's address (the NodeAddr SLURM knows it by) on a free port and writes
the address and port to RUN/endpoints/, named by a token drawn per submission: job ids restart
at 1 when a cluster's state is reset, tokens do not repeat. The run folder, the venv and the data
must sit on a filesystem the nodes share.

A job that ends mid-run (scancel, node failure, time limit) breaks its stream; the runner then
calls `restart`, which submits a new job, and the ledger rules make the resume lose and repeat
nothing. A runner that dies without cancelling its jobs (SIGKILL, SIGTERM) leaves them nothing
to do: the backend touches RUN/endpoints/runner-<token>.alive while it runs, and a job stops its
server once that file is older than $CTBENCH_SLURM_RUNNER_TIMEOUT seconds (default 120).
The job's id is in RUN/logs/<name>.jobid, its output in RUN/logs/<name>.log, the server's pid
(on its node) next to its endpoint.

Anyone on the cluster network can reach a node's ports, so each run draws a secret, written
owner-only to RUN/secrets/server-token; the servers refuse calls without it (health excepted,
model_servers/sdk/auth.py) and the runner's channels send it (runners/channels.py).
"""
from __future__ import annotations

import os
import secrets
import shlex
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import ServerStartError
from ctbench.model_servers.sdk.auth import TOKEN_FILE_ENV, write_token_file
from ctbench.runners import channels
from ctbench.runners.backends import slurm_jobs
from ctbench.runners.backends.base import Backend, Endpoint, ServerSpec
from ctbench.runners.backends.charliecloud import DATA_MOUNT, ChImage
from ctbench.runners.backends.charliecloud import KEYS as IMAGE_KEYS
from ctbench.runners.backends.slurm_jobs import JobResources

STATE_POLL_S = 0.5  # squeue at most this often per job: a shared controller serves many users
STOP_WAIT_S = 30.0
RUNNER_TIMEOUT_ENV = "CTBENCH_SLURM_RUNNER_TIMEOUT"
RUNNER_TIMEOUT_S = 120.0  # a job whose runner has been silent this long stops its server


@dataclass
class _Job:
    """One submission: a replica of one server."""

    spec: ServerSpec
    job_id: str
    label: str  # the server's name, or <name>.r<i> for replica i of several
    host_file: Path
    port_file: Path
    log_path: Path
    state: str = "PENDING"
    checked_at: float = 0.0
    address: str = ""


@dataclass
class _Server:
    spec: ServerSpec
    data_root: Path
    log_dir: Path
    jobs: list[_Job]


class SlurmBackend(Backend):
    name = "slurm"

    def __init__(self, overrides: dict | None = None, start_timeout_s: float = 600.0, python: str = sys.executable,
                 replicas: dict[str, int] | None = None):
        """`overrides`: sbatch resources for every server (`--slurm KEY=VALUE`);
        `start_timeout_s`: how long a job may wait in the queue and start before it listens;
        `replicas`: server name -> how many jobs serve it (`--replicas NAME=K`)."""
        self.overrides = dict(overrides or {})
        JobResources().merged(_job_keys(self.overrides), "--slurm")  # bad options fail before anything runs
        ChImage.from_options(self.overrides, "--slurm")
        self.replicas = dict(replicas or {})
        bad = {name: k for name, k in self.replicas.items() if not isinstance(k, int) or k < 1}
        if bad:
            raise ServerStartError(f"--replicas: each count must be a whole number >= 1, got {bad}")
        self.start_timeout_s = start_timeout_s
        self.python = python
        self._servers: dict[str, _Server] = {}
        self._refusals: dict[JobResources, str | None] = {}
        self._token = secrets.token_urlsafe(32)
        self.runner_timeout_s = float(os.environ.get(RUNNER_TIMEOUT_ENV, RUNNER_TIMEOUT_S))
        self._heartbeat: Path | None = None
        self._beating = threading.Event()

    def resources(self, spec: ServerSpec) -> JobResources:
        base = JobResources(gpus=1 if spec.gpu else 0)
        return base.merged(_job_keys(spec.slurm), f"registry entry {spec.name!r}").merged(_job_keys(self.overrides), "--slurm")

    def image(self, spec: ServerSpec) -> ChImage | None:
        """The Charliecloud image the server's job runs `bench serve` in (`image=DIR` in the
        registry's slurm block or `--slurm`); None: the venv the runner runs from."""
        values = {key: value for key, value in spec.slurm.items() if key in IMAGE_KEYS}
        values.update({key: value for key, value in self.overrides.items() if key in IMAGE_KEYS})
        where = "--slurm" if any(key in self.overrides for key in IMAGE_KEYS) else f"registry entry {spec.name!r}"
        return ChImage.from_options(values, where)

    def runnable(self, spec: ServerSpec) -> bool | str:
        if not spec.local and self.image(spec) is None:
            return "has no venv form; give it a Charliecloud image (--slurm image=DIR, docs/slurm.md)"
        resources = self.resources(spec)
        if resources not in self._refusals:
            self._refusals[resources] = slurm_jobs.check_submittable(resources)
        refusal = self._refusals[resources]
        if refusal is None:
            return True
        offered = slurm_jobs.node_gres()
        return f"asks SLURM for {resources.describe()}, which the cluster refuses: {refusal}" + (
            f" (its nodes offer {offered})" if offered else "")

    def start(self, spec: ServerSpec, data_root: Path, log_dir: Path, volumes: list[str] | None = None) -> Endpoint:
        """Submit the server's job (one per replica) and wait until each one listens."""
        log_dir = log_dir.resolve()  # the job's paths must not depend on where it starts
        data_root = data_root.resolve()
        log_dir.mkdir(parents=True, exist_ok=True)
        endpoints = log_dir.parent / "endpoints"
        endpoints.mkdir(exist_ok=True)
        resources = self.resources(spec)
        token_file = self._write_token(log_dir.parent / "secrets")
        self._start_heartbeat(endpoints)
        count = self.replicas.get(spec.name, 1)
        server = self._servers[spec.name] = _Server(spec, data_root, log_dir, [])
        for index in range(1, count + 1):
            label = spec.name if count == 1 else f"{spec.name}.r{index}"
            token = secrets.token_hex(8)
            host_file, port_file = endpoints / f"{label}-{token}.host", endpoints / f"{label}-{token}.port"
            log_path = log_dir / f"{label}.log"
            script = self._script(spec, label, resources, data_root, log_path, host_file, port_file, token_file, self._heartbeat)
            server.jobs.append(_Job(spec, slurm_jobs.submit(script), label, host_file, port_file, log_path))
        (log_dir / f"{spec.name}.jobid").write_text("\n".join(job.job_id for job in server.jobs))
        deadline = time.monotonic() + self.start_timeout_s
        for job in server.jobs:
            self._wait_listening(job, deadline)
        addresses = tuple(job.address for job in server.jobs)
        served_root = DATA_MOUNT if self.image(spec) is not None else str(data_root)  # as the server sees it
        return Endpoint(spec.name, addresses[0], data_root=served_root, replicas=addresses if count > 1 else ())

    def _wait_listening(self, job: _Job, deadline: float) -> None:
        while not (job.port_file.is_file() and job.host_file.is_file()):
            if not self._job_alive(job):
                raise ServerStartError(
                    f"server {job.label!r}: SLURM job {job.job_id} ended ({job.state}) before it listened:\n{self._tail(job)}")
            if time.monotonic() > deadline:
                state, reason = slurm_jobs.job_state(job.job_id)
                self.stop(job.spec.name)
                raise ServerStartError(
                    f"server {job.label!r}: SLURM job {job.job_id} was not listening within {self.start_timeout_s:.0f}s "
                    f"(state {state}{', ' + reason if reason and reason != 'None' else ''}):\n{self._tail(job)}")
            time.sleep(0.1)
        host, port = job.host_file.read_text().strip(), job.port_file.read_text().strip()
        job.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        channels.register_token(job.address, self._token)

    def _start_heartbeat(self, folder: Path) -> None:
        """Touch RUN/endpoints/runner-<token>.alive from now until this process ends."""
        if self._heartbeat is not None:
            return
        self._heartbeat = folder / f"runner-{secrets.token_hex(8)}.alive"
        self._heartbeat.touch()
        interval = min(10.0, self.runner_timeout_s / 4)

        def beat() -> None:
            while not self._beating.wait(interval):
                self._heartbeat.touch()

        threading.Thread(target=beat, name="ctbench-slurm-heartbeat", daemon=True).start()

    def _write_token(self, folder: Path) -> Path:
        """The run's secret, readable by its owner only (the jobs run as the same user)."""
        return write_token_file(folder, self._token)

    def _script(self, spec: ServerSpec, label: str, resources: JobResources, data_root: Path, log_path: Path,
                host_file: Path, port_file: Path, token_file: Path, heartbeat: Path) -> str:
        q = shlex.quote
        serve = [self.python, "-m", "ctbench", "serve", spec.model, "--port", "0", "--port-file", str(port_file),
                 "--data-root", str(data_root), *spec.args]
        image = self.image(spec)
        run_dir = log_path.parent.parent
        if image is None:
            launch = " ".join(q(part) for part in serve[:5]) + ' --host "$host" ' + " ".join(q(part) for part in serve[5:])
        else:
            inside = [spec.model, "--port", "0", "--port-file", image.inside(port_file, data_root, run_dir),
                      "--data-root", DATA_MOUNT, *spec.args]
            launch = image.command(inside, data_root, run_dir, token_file)
        lines = [
            "#!/bin/bash",
            f"#SBATCH --job-name=ctbench-{spec.name}",
            f"#SBATCH --output={log_path}",
            "#SBATCH --open-mode=append",
            "#SBATCH --no-requeue",  # the runner resubmits, so it always knows the job it talks to
            *(f"#SBATCH {option}" for option in resources.sbatch_options()),
            "set -euo pipefail",
            f'echo "=== $(date +%Y-%m-%dT%H:%M:%S) {label}: job $SLURM_JOB_ID on $SLURMD_NODENAME, {resources.describe()}, GPUs: ${{CUDA_VISIBLE_DEVICES:-none}}'
            + (f', {image.describe()}' if image else '') + '"',
            # the address the cluster reaches this node at; a server on 127.0.0.1 would be
            # unreachable from the runner's host
            'host=$(scontrol show node "$SLURMD_NODENAME" -o | grep -o "NodeAddr=[^ ]*" | cut -d= -f2)',
            'host=${host:-$(hostname)}',
            *(f"export {key}={q(str(value))}" for key, value in spec.environment.items()),
            f"export {TOKEN_FILE_ENV}={q(str(token_file))}",
            *(['export USER="${USER:-$(id -un)}"'] if image else []),  # ch-run refuses to start without $USER
            f'echo "$host" > {q(str(host_file))}.tmp && mv {q(str(host_file))}.tmp {q(str(host_file))}',
            launch + " &",
            "server=$!",
            f"echo $server > {q(str(host_file.with_suffix('.pid')))}",
            "trap 'kill -TERM $server 2>/dev/null || true' TERM INT",
            # the runner touches its heartbeat file while it runs; one gone quiet stops the server
            "while kill -0 $server 2>/dev/null; do",
            f"  if (( $(date +%s) - $(stat -c %Y {q(str(heartbeat))} 2>/dev/null || echo 0) > {int(self.runner_timeout_s)} )); then",
            f'    echo "=== the runner has been silent for {int(self.runner_timeout_s)} s: stopping the server"',
            "    kill -TERM $server; break",
            "  fi",
            "  sleep 2 & wait $! || true",
            "done",
            "wait $server",
        ]
        return "\n".join(lines) + "\n"

    def job_ids(self, name: str) -> list[str]:
        server = self._servers.get(name)
        return [job.job_id for job in server.jobs] if server else []

    def _job_alive(self, job: _Job) -> bool:
        now = time.monotonic()
        if now - job.checked_at >= STATE_POLL_S:
            job.state, _ = slurm_jobs.job_state(job.job_id)
            job.checked_at = now
        return job.state in slurm_jobs.LIVE_STATES

    def is_alive(self, name: str) -> bool:
        """Whether every replica's job still holds (or waits for) its allocation."""
        server = self._servers.get(name)
        return server is not None and all(self._job_alive(job) for job in server.jobs)

    def restart(self, name: str) -> Endpoint:
        server = self._servers[name]
        self.stop(name)
        return self.start(server.spec, server.data_root, server.log_dir)

    def _tail(self, job: _Job, tail: int = 40) -> str:
        if not job.log_path.is_file():
            return ""
        return "\n".join(job.log_path.read_text(errors="replace").splitlines()[-tail:])

    def logs(self, name: str, tail: int = 40) -> str:
        server = self._servers.get(name)
        if server is None:
            return ""
        if len(server.jobs) == 1:
            return self._tail(server.jobs[0], tail)
        return "\n".join(f"--- {job.label} (job {job.job_id})\n{self._tail(job, tail)}" for job in server.jobs)

    def stop(self, name: str) -> None:
        """Cancel the server's jobs and wait (bounded) until SLURM says they have ended."""
        server = self._servers.get(name)
        if server is None:
            return
        for job in server.jobs:
            slurm_jobs.cancel(job.job_id)  # a no-op for a job that already ended
        deadline = time.monotonic() + STOP_WAIT_S
        for job in server.jobs:
            while time.monotonic() < deadline:
                job.state, _ = slurm_jobs.job_state(job.job_id)
                if job.state not in slurm_jobs.LIVE_STATES and job.state != "COMPLETING":
                    break
                time.sleep(STATE_POLL_S)
            channels.forget_token(job.address)
        self._servers.pop(name, None)

    def running(self) -> list[str]:
        return list(self._servers)


def _job_keys(values: dict) -> dict:
    """The sbatch resources among a slurm block's keys (the rest name the image)."""
    return {key: value for key, value in values.items() if key not in IMAGE_KEYS}


def slurm_backend(overrides: dict | None = None, replicas: dict[str, int] | None = None) -> tuple[SlurmBackend, str]:
    """The backend and a sentence naming the cluster; `SlurmUnavailable` when none answers."""
    available, why = slurm_jobs.cluster_available()
    if not available:
        raise slurm_jobs.SlurmUnavailable(f"no SLURM cluster answers: {why}")
    return SlurmBackend(overrides, replicas=replicas), f"SLURM batch jobs (--backend slurm; partitions: {why})"
