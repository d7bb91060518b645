"""SLURM through its own commands: what a server's job asks for, and sbatch/squeue/scancel.

No Python binding: `pyslurm` follows one Slurm release and `submitit` needs accounting, while
the commands work the same on every Slurm version, with or without slurmdbd. They find the
cluster the usual way ($SLURM_CONF, else the system's slurm.conf).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, fields, replace

from ctbench.errors import ServerStartError

COMMAND_TIMEOUT_S = 30
# squeue states in which a job still holds (or waits for) its allocation
LIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "RESIZING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"}


class SlurmUnavailable(ServerStartError):
    """The SLURM commands are missing, or no controller answers them."""


class JobRefused(ServerStartError):
    """sbatch refused a server's job (resources no node has, unknown partition or account)."""


@dataclass(frozen=True)
class JobResources:
    """What one server's batch job asks for. Each field maps to one sbatch option; None leaves
    it to the site's defaults."""

    gpus: int = 0  # per node: --gres=gpu:N
    cpus: int | None = None  # --cpus-per-task
    mem: str | None = None  # --mem, e.g. 16G
    time: str | None = None  # --time, e.g. 02:00:00
    partition: str | None = None
    account: str | None = None
    nodelist: str | None = None  # --nodelist, e.g. gpu-node[01-04]

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def merged(self, values: dict, where: str) -> JobResources:
        """These resources with `values` (the registry's `x-ctbench.slurm` block, or
        `--slurm KEY=VALUE` options) laid over them. `where` names the source in errors."""
        unknown = sorted(set(values) - set(self.keys()))
        if unknown:
            raise ServerStartError(f"{where}: unknown slurm option {unknown[0]!r}. Available: {', '.join(self.keys())}")
        changes = {}
        for key, value in values.items():
            if key in ("gpus", "cpus"):
                if not re.fullmatch(r"\d+", str(value).strip()):
                    raise ServerStartError(f"{where}: slurm option {key!r} must be a whole number, got {value!r}")
                changes[key] = int(str(value).strip())
            else:
                changes[key] = str(value)
        return replace(self, **changes)

    def sbatch_options(self) -> list[str]:
        options = []
        if self.gpus:
            options.append(f"--gres=gpu:{self.gpus}")
        for flag, value in (("--cpus-per-task", self.cpus), ("--mem", self.mem), ("--time", self.time),
                            ("--partition", self.partition), ("--account", self.account),
                            ("--nodelist", self.nodelist)):
            if value is not None:
                options.append(f"{flag}={value}")
        return options

    def describe(self) -> str:
        return ", ".join(o.lstrip("-") for o in self.sbatch_options()) or "the partition's defaults"


def _run(command: list[str], input_text: str | None = None) -> subprocess.CompletedProcess:
    if shutil.which(command[0]) is None:
        raise SlurmUnavailable(f"{command[0]!r} not found on PATH: install the SLURM client commands or use another --backend")
    try:
        return subprocess.run(command, input=input_text, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(f"{' '.join(command[:2])} did not answer within {COMMAND_TIMEOUT_S}s: is slurmctld up?") from None


def cluster_available() -> tuple[bool, str]:
    """Whether a SLURM controller answers, and a sentence saying which cluster (or why not)."""
    try:
        done = _run(["sinfo", "-h", "-o", "%P %D %G"])
    except SlurmUnavailable as exc:
        return False, str(exc)
    if done.returncode != 0:
        return False, f"sinfo failed: {_first_line(done.stderr)}"
    return True, "; ".join(" ".join(line.split()) for line in done.stdout.splitlines()) or "no partitions"


def node_gres() -> str:
    """What the nodes offer, as sinfo says it (e.g. 'gpu:2'); '' if it cannot tell."""
    try:
        done = _run(["sinfo", "-h", "-o", "%G"])
    except SlurmUnavailable:
        return ""
    return ", ".join(sorted(set(done.stdout.split()))) if done.returncode == 0 else ""


def check_submittable(resources: JobResources) -> str | None:
    """None if the controller would accept a job asking for `resources` (sbatch --test-only:
    nothing is queued), else its reason in one line."""
    done = _run(["sbatch", "--test-only", *resources.sbatch_options(), "--wrap", "true"])
    if done.returncode == 0:
        return None
    return _refusal(done.stderr)


def submit(script: str) -> str:
    """Queue a batch script (its #SBATCH lines carry the options); return the job id."""
    done = _run(["sbatch", "--parsable"], input_text=script)
    if done.returncode != 0:
        raise JobRefused(f"sbatch refused the job: {_refusal(done.stderr)}")
    return done.stdout.strip().split(";")[0]


def job_state(job_id: str) -> tuple[str, str]:
    """(state, reason) as squeue reports them; ('GONE', '') once the controller forgot the job."""
    done = _run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"])
    line = done.stdout.strip().splitlines()
    if done.returncode != 0 or not line:
        return "GONE", ""
    state, _, reason = line[0].partition("|")
    return state, reason


def cancel(job_id: str) -> None:
    _run(["scancel", job_id])


def _refusal(stderr: str) -> str:
    """sbatch's reason without its 'sbatch: error: Batch job submission failed:' prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "allocation failure:" in line:
            return line.split("allocation failure:", 1)[1].strip()
    last = lines[-1] if lines else "no reason given"
    return re.sub(r"^sbatch: error: (Batch job submission failed: )?", "", last)


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].strip() if lines else "no output"
