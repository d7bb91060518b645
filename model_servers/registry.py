"""Which model-server classes exist, by name.

Modules are imported only when their model is asked for, so serving `chance` never imports
torch. A module registers its class with `@MODELS.register(name)`.
"""
from __future__ import annotations

import importlib

from ctbench.errors import UnknownName
from ctbench.model_servers.sdk.model import Model
from ctbench.registry import Registry

MODELS: Registry[type[Model]] = Registry("model server")

# name -> module that registers it
MODEL_MODULES = {
    "chance": "ctbench.model_servers.baselines.chance",
    "blind": "ctbench.model_servers.baselines.blind",
    "geometric": "ctbench.model_servers.baselines.geometric",
    "med3dvlm": "ctbench.model_servers.med3dvlm.server",
    "m3d-lamed": "ctbench.model_servers.m3d_lamed.server",
    "radfm": "ctbench.model_servers.radfm.server",
    "ct-chat": "ctbench.model_servers.ct_chat.server",
    "medgemma": "ctbench.model_servers.medgemma.server",
    "merlin": "ctbench.model_servers.merlin.server",
    "vila-m3": "ctbench.model_servers.vila_m3.server",
    "lingshu": "ctbench.model_servers.lingshu.server",
    "openai-vlm": "ctbench.model_servers.openai_vlm.server",
}


def get_model_class(name: str) -> type[Model]:
    """A registered name (`geometric`), or `package.module:ClassName` for out-of-tree servers."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        cls = getattr(importlib.import_module(module_name), attr, None)
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise UnknownName(f"{name!r} is not a ctbench Model subclass")
        return cls
    module = MODEL_MODULES.get(name)
    if module is None:
        raise UnknownName(f"Unknown model server {name!r}. Available: {', '.join(sorted(MODEL_MODULES))}")
    importlib.import_module(module)
    return MODELS.get(name)
