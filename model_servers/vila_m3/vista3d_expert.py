"""VILA-M3's VISTA3D expert turn, as the authors' agent framework builds it.

Sources, VLM-Radiology-Agent-Framework at commit 9acf57647b6619a923ce76a3f78d48453b444cd9:
``m3/demo/experts/expert_monai_vista3d.py`` (`ExpertVista3D`: trigger parsing, label groups,
the result text) and ``m3/demo/experts/utils.py`` (`Dye`: slice orientation and colours).

Orientation: `Dye` takes slice ``z`` of the RAS ``(x, y, z)`` array and shows
``np.rot90(np.swapaxes(slice, 0, 1), k=2)``: rows anterior -> posterior, columns patient right
-> left, the same display orientation as the slice the model sees (preset ``vila-m3``).
Colours: ``skimage.color.label2rgb(label, colors=COLORS, image=slice, bg_label=0) * 255`` cast
to uint8; the legend pairs the sorted labels present on the slice with ``COLORS`` in turn, and
names each label by the first label group that lists its id (ids no group lists are coloured but
not named).
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctbench.errors import ModelNotReady

MODEL_NAME = "VISTA3D"
LABEL_GROUPS_FILE = "m3/demo/experts/label_groups_dict.json"
EVERYTHING = "everything"
COLORS = ("red", "blue", "yellow", "magenta", "green", "indigo", "darkorange", "cyan", "pink", "brown", "orange",
          "lime", "orange", "gold", "yellowgreen", "darkgreen")
RESULT_PREFIX = "The results are <image>. The colors in this image describe "
INSTRUCTION = "Use this result to respond to this prompt:\n"


class TriggerError(ValueError):
    """The model's VISTA3D call cannot be run (as the expert's own ValueErrors)."""


def load_label_groups(checkout: Path) -> dict:
    """The authors' label groups (``label_groups_dict.json`` in their checkout)."""
    path = Path(checkout) / LABEL_GROUPS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelNotReady(f"vila-m3: the VISTA3D label groups file {path} is missing (part of the authors' checkout)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotReady(f"vila-m3: cannot read the VISTA3D label groups file {path}: {exc}") from None


def mentions_vista3d(text: str) -> bool:
    """`ExpertVista3D.mentioned_by`: exactly one ``<...>`` tag, and it names VISTA3D."""
    matches = re.findall(r"<(.*?)>", str(text))
    return len(matches) == 1 and MODEL_NAME in matches[0]


def requested_group(text: str, label_groups: dict) -> str:
    """The label group a ``<VISTA3D(arg)>`` call asks for (`ExpertVista3D.run`'s parsing)."""
    matches = re.findall(r"<(.*?)>", text)
    if len(matches) != 1:
        raise TriggerError(f"Expert model {MODEL_NAME} is not correctly enclosed in angle brackets.")
    args = re.findall(r"\((.*?)\)", matches[0][len(MODEL_NAME):])
    if not args or (len(args) == 1 and not args[0]):
        args = [EVERYTHING]
    if len(args) > 1:
        raise TriggerError("Multiple expert model arguments are provided in the same prompt, which is not supported in this version.")
    if args[0] not in label_groups:
        raise TriggerError(f"Label group {args[0]} is not accepted by the VISTA-3D model.")
    return args[0]


def label_prompt(group: str, label_groups: dict) -> list[int] | None:
    """The bundle's ``label_prompt`` for a group; None ("everything") runs the bundle's default."""
    return None if group == EVERYTHING else [int(i) for i in label_groups[group].values()]


def label_name(label_id: int, label_groups: dict) -> str | None:
    for group in label_groups.values():
        if isinstance(group, dict):  # skips "everything": <path>
            for name, value in group.items():
                if value == label_id:
                    return name
    return None


def display_slice(ras: np.ndarray, index: int) -> np.ndarray:
    """Slice `index` along z of an (x, y, z) RAS array, turned as `Dye` turns it."""
    return np.rot90(np.swapaxes(np.take(ras, index, axis=2).astype(np.uint8), 0, 1), k=2)


def colormap(label_slice: np.ndarray) -> dict[int, str]:
    """Colour name per label on the slice: sorted labels, `COLORS` in turn (`Dye`'s colormap)."""
    present = [int(v) for v in np.unique(label_slice) if v != 0]
    return dict(zip(present, itertools.cycle(COLORS)))


def colour_overlay(image_slice: np.ndarray, label_slice: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: `label2rgb` over the grey slice, as `Dye` writes the label image."""
    from skimage.color import label2rgb

    if image_slice.shape != label_slice.shape:
        raise ValueError(f"image slice {image_slice.shape} and label slice {label_slice.shape} differ")
    rgb = label2rgb(label_slice, colors=list(COLORS), image=image_slice, bg_label=0) * 255
    return rgb.astype(np.uint8)


def result_text(label_slice: np.ndarray, label_groups: dict) -> str:
    """`ExpertVista3D.segmentation_to_string`: the prefix, then 'colour: name' per named label."""
    items = [f"{colour}: {name}" for label, colour in colormap(label_slice).items()
             if (name := label_name(label, label_groups)) is not None]
    return RESULT_PREFIX + ", ".join(items) + ". "


@dataclass(frozen=True)
class ExpertResult:
    """What the expert adds to the conversation: the overlay image and the turn's text."""

    overlay: np.ndarray  # (H, W, 3) uint8
    text: str  # result text + instruction, as the squashed expert turn reads

    @classmethod
    def build(cls, image_slice: np.ndarray, label_slice: np.ndarray, label_groups: dict, question: str,
              trigger: str = "") -> ExpertResult:
        text = result_text(label_slice, label_groups)
        if "segmented" not in trigger:  # the expert adds no instruction when the model says "segmented"
            text += INSTRUCTION + question
        return cls(colour_overlay(image_slice, label_slice), text)

    @property
    def asks_again(self) -> bool:
        """The framework asks the model again only when the expert turn carries the instruction."""
        return INSTRUCTION in self.text
