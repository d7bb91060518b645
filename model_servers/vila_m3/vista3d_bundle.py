"""The MONAI VISTA3D bundle, run the way VILA-M3's agent framework runs it.

`python -m monai.bundle download vista3d --version 0.5.4 --bundle_dir WEIGHTS` (the authors'
Makefile) leaves the bundle root at ``WEIGHTS/vista3d``: every download source of
`monai.bundle.download` extracts the zip with its base folder, or snapshots the Hugging Face
repository into ``bundle_dir/<name>``. The expert (`m3/demo/experts/expert_monai_vista3d.py`)
then calls `monai.bundle.create_workflow("infer", ...)` on ``configs/inference.json`` with
``configs/logging.conf`` and ``configs/metadata.json``, an ``input_dict`` of the NIfTI path
(plus ``label_prompt`` for a label group), ``output_dtype="uint8"``, ``separate_folder=False``,
``output_ext=".nii.gz"`` and a temporary ``output_dir``, runs ``workflow.evaluator.run()`` and
reads back the one segmentation file written there. This module does exactly that, and checks
the bundle at load time so a missing or broken file is named before the server reports SERVING.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ctbench.errors import ModelError, ModelNotReady
from ctbench.preprocess.volume import Volume, save_volume

INFERENCE_CONFIG = "configs/inference.json"
METADATA = "configs/metadata.json"
LOGGING = "configs/logging.conf"
CHECKPOINT = "models/model.pt"
BUNDLE_FILES = (INFERENCE_CONFIG, METADATA, LOGGING, CHECKPOINT)
DOWNLOAD = "python -m monai.bundle download vista3d --version 0.5.4 --bundle_dir WEIGHTS (the bundle lands in WEIGHTS/vista3d)"


class Vista3DBundle:
    """A VISTA3D bundle root (the folder holding ``configs/`` and ``models/``)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def check(self) -> None:
        """Raise `ModelNotReady` naming the first missing or unreadable bundle file.

        Beyond presence: both JSON files must parse, and the checkpoint must load strictly into
        the bundle's own ``network_def`` (a checkpoint that leaves weights at random init is an
        error, not a warning)."""
        for name in BUNDLE_FILES:
            if not (self.root / name).is_file():
                raise ModelNotReady(f"vila-m3: the VISTA3D bundle at {self.root} has no {name}. Get it with `{DOWNLOAD}`.")
        for name in (INFERENCE_CONFIG, METADATA):
            try:
                json.loads((self.root / name).read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ModelNotReady(f"vila-m3: the VISTA3D bundle file {self.root / name} is not valid JSON: {exc}") from None
        self._check_checkpoint()

    def _check_checkpoint(self) -> None:
        import torch
        from monai.bundle import ConfigParser

        path = self.root / CHECKPOINT
        self._on_path()
        try:
            parser = ConfigParser()
            parser.read_config(str(self.root / INFERENCE_CONFIG))
            parser["bundle_root"] = str(self.root)
            network = parser.get_parsed_content("network_def")
        except Exception as exc:  # the bundle's own config: any failure is a broken bundle
            raise ModelNotReady(
                f"vila-m3: cannot build network_def from {self.root / INFERENCE_CONFIG}: {type(exc).__name__}: {exc}"
            ) from None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelNotReady(f"vila-m3: cannot read the VISTA3D checkpoint {path}: {type(exc).__name__}: {exc}") from None
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]  # CheckpointLoader's {"model": ...} form
        try:
            network.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[:2]
            raise ModelNotReady(f"vila-m3: the VISTA3D checkpoint {path} does not match network_def: {' '.join(first)}") from None

    def segment(self, volume: Volume, label_prompt: list[int] | None = None) -> np.ndarray:
        """Labels for `volume` as (x, y, z) in RAS, uint8, read back as the authors' `Dye` reads them."""
        from monai.bundle import create_workflow

        with tempfile.TemporaryDirectory(prefix="ctbench-vista3d-") as work:
            image = Path(work) / "image.nii.gz"
            save_volume(volume, image)
            output_dir = Path(work) / "out"
            input_dict: dict[str, Any] = {"image": str(image)}
            if label_prompt is not None:
                input_dict["label_prompt"] = list(label_prompt)
            self._on_path()
            workflow = create_workflow(
                workflow_type="infer",
                bundle_root=str(self.root),
                config_file=str(self.root / INFERENCE_CONFIG),
                logging_file=str(self.root / LOGGING),
                meta_file=str(self.root / METADATA),
                input_dict=input_dict,
                output_dtype="uint8",
                separate_folder=False,
                output_ext=".nii.gz",
                output_dir=str(output_dir),
            )
            workflow.evaluator.run()
            written = sorted(output_dir.glob("*.nii.gz")) if output_dir.is_dir() else []
            if len(written) != 1:
                raise ModelError(f"VISTA3D wrote {len(written)} segmentation files to its output folder, expected 1")
            return load_ras(written[0])

    def _on_path(self) -> None:
        """The bundle's config imports its own `scripts` package (`$import scripts`); the
        authors put the bundle root first on sys.path for that, and so do we (once)."""
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))


def load_ras(path: Path) -> np.ndarray:
    """A NIfTI label map as (x, y, z) in RAS: MONAI `LoadImage` + `Orientation("RAS")`, squeezed."""
    from monai.transforms import LoadImage, Orientation

    image = LoadImage(ensure_channel_first=True, image_only=True)(str(path))
    return np.squeeze(np.asarray(Orientation(axcodes="RAS")(image))).astype(np.uint8)
