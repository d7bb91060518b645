"""Stand-in modules for what an authors' model code imports at load time but never runs for
inference (training-only packages, a module its authors never committed).

A stand-in is an empty module registered in `sys.modules`: importing names from it works,
calling one raises `ShimCalled` with the stand-in's reason. Each server says which modules get
one and why (`vila_m3/import_shims.py`, `ct_chat/import_shims.py`); the authors' checkout is
never edited, and a module that really exists is never shadowed (the servers check first).
"""
from __future__ import annotations

import importlib.machinery
import sys
import types


class ShimCalled(RuntimeError):
    """Code called into a module that ctbench replaced with a stand-in."""


class _Placeholder:
    def __init__(self, qualname: str, reason: str):
        self.qualname, self.reason = qualname, reason

    def __call__(self, *args, **kwargs):
        raise ShimCalled(f"{self.qualname} was called, but {self.reason}")

    def __getattr__(self, name: str) -> _Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(f"{self.qualname}.{name}", self.reason)


class _ShimModule(types.ModuleType):
    __ctbench_shim__ = False
    __ctbench_shim_reason__ = ""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(f"{self.__name__}.{name}", self.__ctbench_shim_reason__)


def stand_in(name: str, reason: str, is_package: bool = False) -> types.ModuleType:
    """An empty module `name` whose attributes refuse to run, saying `reason`."""
    module = _ShimModule(name)
    # A spec without a loader: importlib.util.find_spec works on it, and importlib.metadata finds no
    # distribution, so transformers' is_flash_attn_2_available() stays False.
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=is_package)
    if is_package:
        module.__path__ = []
    module.__ctbench_shim__ = True
    module.__ctbench_shim_reason__ = reason
    return module


def register(name: str, reason: str, is_package: bool = False) -> types.ModuleType:
    """Put a stand-in for `name` into `sys.modules` (and onto its parent, when that is one)."""
    module = stand_in(name, reason, is_package)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules and is_shim(sys.modules[parent]):
        setattr(sys.modules[parent], child, module)
    return module


def is_shim(module: types.ModuleType) -> bool:
    return bool(getattr(module, "__ctbench_shim__", False))
