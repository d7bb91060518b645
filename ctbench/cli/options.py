"""Option decorators shared by several commands, and the library-error -> click bridge."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ctbench.errors import CtbenchError

# Optional packages -> the pyproject extra that installs them (scripts/setup.sh installs none).
OPTIONAL_PACKAGES = {
    "huggingface_hub": "hub", "matplotlib": "report", "openai": "judges", "google": "judges",
    "sacrebleu": "metrics", "nltk": "metrics", "rouge_score": "metrics", "sentence_transformers": "metrics",
    "torch": "vlm", "transformers": "vlm", "PIL": "vlm", "safetensors": "vlm",
}


def library_errors(func: Callable) -> Callable:
    """Turn ctbench's typed errors into `Error: ...` and exit code 1; a missing optional
    package says which extra installs it."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CtbenchError as exc:
            raise click.ClickException(str(exc)) from exc
        except ModuleNotFoundError as exc:
            extra = OPTIONAL_PACKAGES.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            raise click.ClickException(
                f"this needs the optional package {exc.name.split('.')[0]!r}: "
                f".venv/bin/pip install -e '.[{extra}]' (or pip install 'ctbench[{extra}]'); "
                "scripts/setup.sh --tests installs every extra") from exc

    return wrapper


# A command whose arguments another parser reads (ctbench.server_cli's argparse): click passes
# them all through, `--help` included.
passed_through: dict[str, Any] = dict(context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
                                      add_help_option=False)


def out_dir_option(func: Callable) -> Callable:
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, writable=True),
        required=True,
        help="Run folder: predictions ledgers, logs and the run record go here.",
    )(func)


def data_root_option(func: Callable) -> Callable:
    return click.option(
        "--data-root",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="Folder the dataset's image paths are relative to (default: the dataset file's folder).",
    )(func)


def console(stderr: bool = False):
    """A rich console; when output is not a terminal (CI logs, pipes) tables get 120 columns
    instead of rich's 80, so they do not wrap mid-cell."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=120)
