"""Stand-ins for two training-only packages that VILA's model code imports at load time.

`llava.model.builder` (NVlabs/VILA @ 355fda9114c966cf46af3057e9b977064af08751, the framework's
`thirdparty/VILA`) imports, on its way to the VILA-M3 classes:

* ``deepspeed.comm`` — ``llava/train/sequence_parallel/globals.py`` (via ``llava_arch.py``'s
  ``get_pg_manager``, which returns None outside sequence-parallel training);
* ``flash_attn.flash_attn_interface`` and ``flash_attn.bert_padding`` —
  ``llava/model/multimodal_encoder/intern/flash_attention.py`` (the InternViT tower; VILA-M3
  uses SigLIP).

Neither is used for inference, deepspeed is a training extra of VILA's own pyproject, and
flash-attn needs a CUDA toolkit to build (the image is a CUDA *runtime*). So when a package is
not installed, `install()` registers an empty module for it: importing names from it works,
calling one raises `ShimCalled` naming the package. An installed package is never shadowed,
and the authors' checkout is never edited. ``s2wrapper`` and ``datasets``, also imported at
load time, are real packages in ``requirements.txt``.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

TRAINING_ONLY: dict[str, tuple[str, ...]] = {
    "deepspeed": ("deepspeed.comm",),
    "flash_attn": ("flash_attn.flash_attn_interface", "flash_attn.bert_padding"),
}


class ShimCalled(RuntimeError):
    """Code called into a package that ctbench replaced with a stand-in."""


class _Placeholder:
    def __init__(self, qualname: str):
        self.qualname = qualname

    def __call__(self, *args, **kwargs):
        package = self.qualname.split(".")[0]
        raise ShimCalled(
            f"{self.qualname} was called, but {package} is not installed: ctbench's vila-m3 server replaces it "
            "with a stand-in because VILA imports it only for training. Install it to use this code path."
        )

    def __getattr__(self, name: str) -> "_Placeholder":
        return _Placeholder(f"{self.qualname}.{name}")


class _ShimModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(f"{self.__name__}.{name}")


def _module(name: str, is_package: bool) -> types.ModuleType:
    module = _ShimModule(name)
    # A spec without a loader: importlib.util.find_spec works on it, and importlib.metadata finds no
    # distribution, so transformers' is_flash_attn_2_available() stays False.
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=is_package)
    if is_package:
        module.__path__ = []
    module.__ctbench_shim__ = True
    return module


def is_shim(module: types.ModuleType) -> bool:
    return bool(getattr(module, "__ctbench_shim__", False))


def install() -> list[str]:
    """Register stand-ins for the training-only packages that are not installed; returns their names."""
    installed = []
    for package, submodules in TRAINING_ONLY.items():
        if package in sys.modules or importlib.util.find_spec(package) is not None:
            continue
        parent = _module(package, is_package=True)
        sys.modules[package] = parent
        for qualname in submodules:
            child = _module(qualname, is_package=False)
            sys.modules[qualname] = child
            setattr(parent, qualname.rsplit(".", 1)[1], child)
        installed.append(package)
    return installed
