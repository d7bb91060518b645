"""Checks a weights directory before loading, so a server without its weights says exactly what
is missing and how to get it (and stays NOT_SERVING)."""
from __future__ import annotations

import os
from pathlib import Path

from ctbench.errors import ModelNotReady
from ctbench.model_servers.vlm_common.catalog import ModelWeights

DEFAULT_WEIGHTS_DIR = "/weights"


def weights_dir(option: str | None) -> Path:
    """The `weights` option, else $CTBENCH_WEIGHTS, else /weights (where containers mount it)."""
    return Path(option or os.environ.get("CTBENCH_WEIGHTS") or DEFAULT_WEIGHTS_DIR)


def _present(root: Path, pattern: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return any(root.glob(pattern))
    return (root / pattern).exists()


def missing_files(root: Path, required) -> list[str]:
    """The entries of `required` not found under `root` ("a or b" for alternatives)."""
    missing = []
    for entry in required:
        options = (entry,) if isinstance(entry, str) else tuple(entry)
        if not any(_present(root, p) for p in options):
            missing.append(" or ".join(options))
    return missing


def require_weights(root: Path, spec: ModelWeights) -> None:
    """Raise `ModelNotReady` naming every missing file and the command that fetches them."""
    if not root.is_dir():
        raise ModelNotReady(
            f"{spec.name}: weights directory {root} does not exist. {_how_to_get(spec, root)}"
        )
    missing = missing_files(root, spec.required)
    if missing:
        raise ModelNotReady(
            f"{spec.name}: weights directory {root} is missing {', '.join(missing)}. {_how_to_get(spec, root)}"
        )


def _how_to_get(spec: ModelWeights, root: Path) -> str:
    text = f"Get them with `bench models fetch {spec.name} --weights-dir DIR` and mount DIR at {root} (read-only)"
    if spec.gated:
        text += f"; access is gated: {spec.gated}"
    if spec.extra:
        text += "; also needed: " + "; ".join(spec.extra)
    return text + f". Licence: {spec.license}."
