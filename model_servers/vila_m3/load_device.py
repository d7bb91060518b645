"""Load VILA on the server's device when that device is not CUDA, without editing the authors' checkout.

At VILA @ 355fda9114c966cf46af3057e9b977064af08751 (the framework's ``thirdparty/VILA``),
`load_pretrained_model` (``llava/model/builder.py``) first maps a non-CUDA ``device`` to
``device_map={"": device}``, then calls `prepare_config_for_eval`, which for a SigLIP vision
tower (VILA-M3's) overwrites it with ``device_map="cuda"`` ("siglip does not support
device_map = auto"). The LLM is then loaded with that map, so on a machine without CUDA the load
fails in transformers before anything runs. On CUDA nothing changes. For another device,
`device_map_kept(builder, device)` wraps `prepare_config_for_eval` for the duration of the load so
that, after VILA's own function has run, the map is again ``{"": device}``; everything else that
function does (the vision tower's config, ``model_dtype``) is kept.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def is_cuda(device: str) -> bool:
    return str(device).split(":", 1)[0] == "cuda"


@contextmanager
def device_map_kept(builder: Any, device: str) -> Iterator[bool]:
    """While the block runs, VILA's `load_pretrained_model` (`builder` is ``llava.model.builder``)
    keeps ``device_map={"": device}`` for a non-CUDA `device`. Yields whether it wrapped anything."""
    if is_cuda(device):
        yield False
        return
    original = builder.prepare_config_for_eval

    def prepare_config_for_eval(config, kwargs: dict):
        result = original(config, kwargs)
        kwargs["device_map"] = {"": device}
        return result

    builder.prepare_config_for_eval = prepare_config_for_eval
    try:
        yield True
    finally:
        builder.prepare_config_for_eval = original
