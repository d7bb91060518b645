"""Volume controls (`bench run --control NAME`): the same questions asked of a mirrored, another
patient's, an air-only or a noise volume, to show whether a model's answers depend on the image.
The runner derives each control's volumes once; model servers never know a control is running."""
from __future__ import annotations

from ctbench.runners.controls.prepare import CONTROLS, ControlSet, parse_controls, prepare_controls

__all__ = ["CONTROLS", "ControlSet", "parse_controls", "prepare_controls"]
