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


def require_complete_load(name: str, source: Path, info: dict) -> None:
    """Raise `ModelNotReady` when a load left parameters at their random init: `info` is what
    transformers' `from_pretrained(..., output_loading_info=True)` returns (missing,
    unexpected and mismatched keys). A prefixed or mis-named checkpoint loads nothing and,
    left alone, would only log a warning and serve a random model."""
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or ())
    if not missing and not mismatched:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} parameter(s) missing from the checkpoint ({_few(missing)})")
    if mismatched:
        parts.append(f"{len(mismatched)} with the wrong shape ({_few(mismatched)})")
    unexpected = sorted(info.get("unexpected_keys") or ())
    if unexpected:
        parts.append(f"checkpoint keys nothing uses: {_few(unexpected)} (a prefixed or mis-named checkpoint?)")
    raise ModelNotReady(f"{name}: loading {source} would leave parameters at random init: " + "; ".join(parts))


def _few(keys: list[str], shown: int = 3) -> str:
    more = f", ... {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
