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
and the authors' checkout is never edited. ``datasets`` and ``s2wrapper``, also imported at
load time, are real packages (``requirements.txt``; s2wrapper from git in the Dockerfile).
"""
from __future__ import annotations

import importlib.util
import sys

from ctbench.model_servers.vlm_common.import_shims import ShimCalled, is_shim, register

__all__ = ["TRAINING_ONLY", "ShimCalled", "install", "is_shim"]

TRAINING_ONLY: dict[str, tuple[str, ...]] = {
    "deepspeed": ("deepspeed.comm",),
    "flash_attn": ("flash_attn.flash_attn_interface", "flash_attn.bert_padding"),
}


def install() -> list[str]:
    """Register stand-ins for the training-only packages that are not installed; returns their names."""
    installed = []
    for package, submodules in TRAINING_ONLY.items():
        if package in sys.modules or importlib.util.find_spec(package) is not None:
            continue
        reason = (f"{package} is not installed: ctbench's vila-m3 server replaces it with a stand-in because "
                  "VILA imports it only for training. Install it to use this code path.")
        register(package, reason, is_package=True)
        for qualname in submodules:
            register(qualname, reason)
        installed.append(package)
    return installed
