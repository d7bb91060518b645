"""Does a server image's `pip install` resolve as its Dockerfile writes it?

Reads the Dockerfile's `RUN pip install ...` lines, maps the paths they name back to the
repository (`COPY model_servers/X/requirements.txt /tmp/model-requirements.txt`, `/src` is the
repository root, `/src/sdk` its ctbench-sdk folder, copied as `COPY sdk/ /src/sdk/`) and asks pip's resolver about all of them at once:
`pip install --dry-run --report - --ignore-installed --target ...` for the image's Python
(`--python-version`, manylinux platform tags, `--only-binary :all:`). pip reads each wheel's
metadata from the index (PEP 658), so nothing multi-GB is downloaded, CUDA torch included.

A line with `--no-deps` installs one package by itself (the Dockerfile says so on purpose: its
own pins cannot resolve beside the stack); a line that installs from an authors' checkout
cloned at build time cannot be resolved here at all. Both are reported, not resolved.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: Python of the images' default base (nvidia/cuda ...-ubuntu22.04: python3 is 3.10), unless
#: the Dockerfile makes its venv with another (`python3.11 -m venv`)
IMAGE_PYTHON = "3.10"
#: glibc of Ubuntu 22.04 is 2.35: every manylinux tag up to it, newest first
PLATFORMS = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(35, 4, -1)) + (
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64")


@dataclass(frozen=True)
class PipInstall:
    """One `pip install` command of a Dockerfile, its arguments as written."""

    args: tuple[str, ...]

    @property
    def no_deps(self) -> bool:
        return "--no-deps" in self.args

    def __str__(self) -> str:
        return "pip install " + " ".join(self.args)


@dataclass
class ResolveResult:
    dockerfile: str
    ok: bool
    command: list[str]
    packages: dict[str, str] = field(default_factory=dict)  # name -> version pip chose
    not_resolved: list[str] = field(default_factory=list)  # pip lines left out, with why
    error: str = ""


def _run_lines(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pip_installs(dockerfile: Path) -> list[PipInstall]:
    """Every `pip install` inside the Dockerfile's RUN instructions, in order."""
    installs = []
    for line in _run_lines(dockerfile.read_text()):
        if not line.startswith("RUN "):
            continue
        for command in re.split(r"&&|;", line[4:]):
            words = shlex.split(command)
            if words[:2] == ["pip", "install"]:
                installs.append(PipInstall(tuple(words[2:])))
    return installs


def image_python(dockerfile: Path) -> str:
    """The Python version the image's venv is made with."""
    found = re.search(r"\bpython(3\.\d+) -m venv\b", dockerfile.read_text())
    return found.group(1) if found else IMAGE_PYTHON


def copied_files(dockerfile: Path) -> dict[str, str]:
    """Image path -> repository path for each single-file `COPY SRC DEST` (not `--from=`)."""
    mapping = {}
    for line in _run_lines(dockerfile.read_text()):
        words = line.split()
        if words[0] == "COPY" and len(words) == 3 and not words[1].startswith("--"):
            mapping[words[2]] = words[1]
    return mapping


def _local_path(arg: str, copies: dict[str, str], repo_root: Path) -> Path | None:
    """Where an image path of a pip argument lies in the repository (None: not from here)."""
    if arg in copies:
        return repo_root / copies[arg]
    folders = {image.rstrip("/"): source for image, source in copies.items() if image.endswith("/")}
    if arg.rstrip("/") in folders:  # COPY sdk/ /src/sdk/
        return repo_root / folders[arg.rstrip("/")].rstrip("/")
    if arg.rstrip("/") == "/src":  # COPY pyproject.toml setup.py ... /src/ and the packages
        return repo_root
    return None


def resolve_arguments(dockerfile: Path, repo_root: Path) -> tuple[list[str], list[str]]:
    """(pip arguments that reproduce the Dockerfile's resolving installs together, the lines
    left out and why)."""
    copies = copied_files(dockerfile)
    args: list[str] = []
    left_out: list[str] = []
    for install in pip_installs(dockerfile):
        if install.no_deps:
            left_out.append(f"`{install}`: --no-deps, installs that package alone (nothing to resolve)")
            continue
        mapped: list[str] = []
        for word in install.args:
            if word.startswith("/"):
                local = _local_path(word, copies, repo_root)
                if local is None:
                    raise ValueError(f"{dockerfile.name}: `{install}` installs {word}, which is not in the repository")
                mapped.append(str(local))
            else:
                mapped.append(word)
        args += mapped
    return args, left_out


def dry_run_command(args: list[str], target: Path, python_version: str = IMAGE_PYTHON) -> list[str]:
    platform = [a for p in PLATFORMS for a in ("--platform", p)]
    return [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-", "--ignore-installed",
            "--only-binary", ":all:", "--python-version", python_version, "--implementation", "cp",
            *platform, "--target", str(target), *args]


def check_dockerfile(dockerfile: Path, repo_root: Path, timeout_s: float = 600.0) -> ResolveResult:
    """Resolve the Dockerfile's pip lines for its image's Python. Ignores this machine's pip
    configuration (`PIP_CONFIG_FILE=/dev/null`: its constraints and local indexes would
    change the answer); the index is PyPI, as in the image build."""
    args, left_out = resolve_arguments(dockerfile, repo_root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    for key in ("PIP_INDEX_URL", "PIP_CERT"):  # a proxy index and its CA stay as the host set them
        if key in os.environ:
            env[key] = os.environ[key]
    with tempfile.TemporaryDirectory(prefix="ctbench-resolve-") as target:
        command = dry_run_command(args, Path(target) / "site", image_python(dockerfile))
        shown = [dockerfile.name, *command[1:]]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env,
                                  cwd=target)
        except subprocess.TimeoutExpired:
            return ResolveResult(dockerfile.name, False, shown, not_resolved=left_out,
                                 error=f"pip's resolver did not finish within {timeout_s:.0f} s")
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if "Ignored the following versions" not in line]
        return ResolveResult(dockerfile.name, False, shown, not_resolved=left_out, error="\n".join(lines[-15:]))
    report = json.loads(done.stdout)
    packages = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}
    return ResolveResult(dockerfile.name, True, shown, packages=packages, not_resolved=left_out)
