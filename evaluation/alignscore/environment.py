"""AlignScore's own venv: created and checked by ctbench, never mixed with ctbench's stack.

`alignscore-speedofmagic` 0.1.4 requires numpy<2, protobuf<=3.20.3 and transformers<5, which
conflict with ctbench (protobuf 7, transformers 5). The venv holds only what AlignScore's
inference imports, under its pins: the package itself (installed --no-deps), CPU torch 2.13.0,
numpy<2, transformers<5, pytorch-lightning (the checkpoint loader), scikit-learn (imported by
its model module), scipy, nltk (sentence splitting) and tqdm. Left out, because inference never
uses them: spaCy and its `en_core_web_sm` (not on PyPI; used only by the SMART modes, the worker
stands in for it), `datasets`, `jsonlines`, `tensorboard` and its protobuf<=3.20.3 (training).

    bench metrics setup alignscore [--venv DIR]   # default $CTBENCH_HOME/alignscore-venv
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ctbench.errors import CtbenchError

PACKAGE = "alignscore-speedofmagic==0.1.4"
REQUIREMENTS = (
    "torch==2.13.0",  # resolves to the CPU build; a bare torch pulls CUDA
    "numpy>=1.23.1,<2",
    "transformers>=4.20.1,<5",
    "pytorch-lightning>=1.7.7",
    "scikit-learn>=1.1.2,<2",
    "scipy>=1.8.1,<2",
    "nltk>=3.7,<4",
    "tqdm>=4.64,<5",
)
LEFT_OUT = {
    "spacy": "en_core_web_sm is not on PyPI; spaCy serves only the SMART modes (the worker uses nli_sp)",
    "datasets": "training data loading only",
    "jsonlines": "training data loading only",
    "tensorboard": "training logs only (and the reason for protobuf<=3.20.3)",
    "protobuf<=3.20.3": "needed by tensorboard alone",
}
MARKER = "ctbench-alignscore.json"  # written last by a complete set-up
VENV_ENV = "CTBENCH_ALIGNSCORE_VENV"


class AlignScoreNotInstalled(CtbenchError):
    code = "FAILED_PRECONDITION"


class AlignScoreSetupFailed(CtbenchError):
    code = "UNAVAILABLE"


def requirements_id() -> str:
    return hashlib.sha256("\n".join((PACKAGE, *REQUIREMENTS)).encode()).hexdigest()[:16]


def default_venv() -> Path:
    if os.environ.get(VENV_ENV):
        return Path(os.environ[VENV_ENV])
    home = os.environ.get("CTBENCH_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "ctbench")
    return Path(home) / "alignscore-venv"


def venv_python(venv: Path) -> Path:
    return Path(venv) / "bin" / "python"


def installed_problem(venv: str | Path | None = None) -> str | None:
    """Why the venv cannot run the worker, or None. Says how to install it."""
    venv = Path(venv) if venv else default_venv()
    fix = f"install with `bench metrics setup alignscore --venv {venv}`"
    marker = venv / MARKER
    if not venv_python(venv).is_file() or not marker.is_file():
        return f"AlignScore's environment is not installed at {venv}: {fix}"
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8")).get("requirements_id")
    except (OSError, ValueError) as exc:
        return f"{marker}: unreadable ({exc}): {fix}"
    if recorded != requirements_id():
        return f"AlignScore's environment at {venv} was made for other requirements: {fix}"
    return None


def ensure_installed(venv: str | Path | None = None) -> Path:
    """The venv's python, or AlignScoreNotInstalled saying how to install it."""
    venv = Path(venv) if venv else default_venv()
    problem = installed_problem(venv)
    if problem:
        raise AlignScoreNotInstalled(problem)
    return venv_python(venv)


def setup(venv: str | Path | None = None, python: str | None = None, say=print, timeout_s: float = 3600) -> dict:
    """Create (or complete) the venv; idempotent: a venv whose marker matches returns at once."""
    venv = Path(venv) if venv else default_venv()
    marker = venv / MARKER
    if installed_problem(venv) is None:
        return json.loads(marker.read_text(encoding="utf-8"))
    start = time.monotonic()
    marker.unlink(missing_ok=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    if not venv_python(venv).is_file():
        say(f"creating {venv}")
        _run([python or sys.executable, "-m", "venv", str(venv)], timeout_s)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "-q"]
    say(f"installing {PACKAGE} (its inference requirements only) into {venv}")
    _run([*pip, "--no-deps", PACKAGE], timeout_s)
    _run([*pip, *REQUIREMENTS], timeout_s)
    _run([str(venv_python(venv)), "-c", "import torch, transformers, pytorch_lightning, sklearn, nltk"], timeout_s)
    freeze = subprocess.run([str(venv_python(venv)), "-m", "pip", "freeze"], capture_output=True, text=True,
                            timeout=timeout_s).stdout.split()
    info = {"requirements_id": requirements_id(), "package": PACKAGE, "requirements": list(REQUIREMENTS),
            "left_out": LEFT_OUT, "installed": freeze, "seconds": round(time.monotonic() - start, 1)}
    marker.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    say(f"AlignScore environment ready at {venv} ({info['seconds']} s)")
    return info


def _run(cmd: list[str], timeout_s: float) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise AlignScoreSetupFailed(f"{' '.join(cmd)}: no result after {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise AlignScoreSetupFailed(f"{' '.join(cmd)} exited {done.returncode}:\n{tail}")
