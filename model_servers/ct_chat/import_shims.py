"""A stand-in for the one module CT-CHAT's LLaVA fork imports but never committed.

CT-CHAT @ fec81f5c75816f83ee6d1ee3709ef56ec9fbc985, `llava/model/multimodal_encoder/builder.py`
line 3, runs ``from .ct_clip import CLIPVisionTower``, and the repository has no
`llava/model/multimodal_encoder/ct_clip.py`: importing `llava.model.builder` fails. Inference
never builds that tower: `LlavaMetaModel.__init__` has the `build_vision_tower` call commented
out (`llava/model/llava_arch.py` line 36) and `encode_images` feeds the CT-CLIP tokens straight
to `mm_projector` (line 146); only training's `initialize_vision_modules` calls it. So when the
checkout lacks the module, `install(checkout)` registers a stand-in whose `CLIPVisionTower`
raises `ShimCalled` if anything builds it. A checkout that has the module keeps it.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ctbench.model_servers.vlm_common.import_shims import register

MISSING_MODULE = "llava.model.multimodal_encoder.ct_clip"
REASON = ("the CT-CHAT checkout has no llava/model/multimodal_encoder/ct_clip.py (never committed upstream): "
          "ctbench's ct-chat server replaces it with a stand-in, since inference feeds CT-CLIP tokens to "
          "mm_projector and never builds this vision tower.")


def module_in_checkout(checkout: Path) -> bool:
    folder = checkout / "llava" / "model" / "multimodal_encoder"
    return (folder / "ct_clip.py").is_file() or (folder / "ct_clip" / "__init__.py").is_file()


def install(checkout: Path) -> list[str]:
    """Register the stand-in unless the checkout has the module; returns what was registered."""
    if MISSING_MODULE in sys.modules or module_in_checkout(checkout):
        return []
    register(MISSING_MODULE, REASON)
    return [MISSING_MODULE]
