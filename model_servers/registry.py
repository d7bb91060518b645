"""Which model-server classes exist, by name: `MODEL_MODULES` is the one place a model's name is
bound to its class (`Model.name` reads it back from here).

Entries are lazy `"module:Class"` strings, imported only when their model is asked for, so
serving `chance` never imports torch.
"""
from __future__ import annotations

from ctbench.errors import UnknownName
from ctbench.model_servers.sdk.model import Model
from ctbench.registry import Registry, import_target

# name -> the class serving it
MODEL_MODULES = {
    "chance": "ctbench.model_servers.baselines.chance:Chance",
    "blind": "ctbench.model_servers.baselines.blind:Blind",
    "geometric": "ctbench.model_servers.baselines.geometric:GeometricExpert",
    "med3dvlm": "ctbench.model_servers.med3dvlm.server:Med3DVLM",
    "m3d-lamed": "ctbench.model_servers.m3d_lamed.server:M3DLaMed",
    "radfm": "ctbench.model_servers.radfm.server:RadFM",
    "ct-chat": "ctbench.model_servers.ct_chat.server:CTChat",
    "medgemma": "ctbench.model_servers.medgemma.server:MedGemma",
    "merlin": "ctbench.model_servers.merlin.server:Merlin",
    "vila-m3": "ctbench.model_servers.vila_m3.server:VilaM3",
    "lingshu": "ctbench.model_servers.lingshu.server:Lingshu",
    "openai-vlm": "ctbench.model_servers.openai_vlm.server:OpenAIVLM",
}

MODELS: Registry[type[Model]] = Registry("model server", MODEL_MODULES)


def get_model_class(name: str) -> type[Model]:
    """A registered name (`geometric`), or `package.module:ClassName` for out-of-tree servers."""
    cls = import_target(name) if ":" in name else MODELS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise UnknownName(f"{name!r} is not a ctbench Model subclass")
    return cls
