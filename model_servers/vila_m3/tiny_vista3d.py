"""A tiny VISTA3D bundle in the layout `monai.bundle download vista3d` produces, for CPU tests
and `bench selftest vila-m3` (`tiny_weights.py` puts it at ``WEIGHTS/vista3d``).

``<root>/configs/{inference.json, metadata.json, logging.conf}``, ``<root>/models/model.pt`` and
``<root>/scripts/`` (the bundle's own package, which its config imports). The network is MONAI's
`VISTA3D` (SegResNetDS2 encoder, class and point heads) at a few thousand parameters with random
weights; the config keeps the real bundle's keys that the expert overrides (``input_dict``,
``output_dir``, ``output_dtype``, ``output_ext``, ``separate_folder``) and its load / orient /
invert / save chain. The evaluator here is a short stand-in for the bundle's: it segments the
``label_prompt`` classes, or ``everything_labels`` without one, and writes label ids.
"""
from __future__ import annotations

import json
from pathlib import Path

EVERYTHING_LABELS = (1, 3, 6)
LABEL_NAMES = {"0": "background", "1": "liver", "3": "spleen", "6": "aorta"}
# The authors' label_groups_dict.json shape: "everything" is a path, the rest map name -> id.
LABEL_GROUPS = {
    "everything": "../experts/vista3d/label_dict.json",
    "organs": {"liver": 1, "spleen": 3},
    "cardiovascular": {"aorta": 6},
}

NETWORK = (
    "$monai.networks.nets.VISTA3D("
    "image_encoder=monai.networks.nets.segresnet_ds.SegResNetDS2(in_channels=1, blocks_down=(1, 1, 1), "
    "norm='instance', out_channels=8, init_filters=8, dsdepth=1), "
    "class_head=monai.networks.nets.vista3d.ClassMappingClassify(n_classes=16, feature_size=8, use_mlp=True), "
    "point_head=monai.networks.nets.vista3d.PointMappingSAM(feature_size=8, n_classes=16, last_supported=8))"
)

INFERENCE = {
    "imports": ["$import os", "$import scripts", "$import numpy as np", "$import copy", "$import json", "$import pathlib"],
    "bundle_root": "./",
    "image_key": "image",
    "output_dir": "$@bundle_root + '/eval'",
    "output_ext": ".nii.gz",
    "output_dtype": "$np.float32",
    "output_postfix": "trans",
    "separate_folder": True,
    "input_dict": "${'image': 'image.nii.gz'}",
    "everything_labels": list(EVERYTHING_LABELS),
    "metadata_path": "$@bundle_root + '/configs/metadata.json'",
    "metadata": "$json.loads(pathlib.Path(@metadata_path).read_text())",
    "device": "$torch.device('cpu')",
    "network_def": NETWORK,
    "network": "$@network_def.to(@device)",
    "preprocessing_transforms": [
        {"_target_": "LoadImaged", "keys": "@image_key", "image_only": True},
        {"_target_": "EnsureChannelFirstd", "keys": "@image_key"},
        {"_target_": "EnsureTyped", "keys": "@image_key", "device": "@device", "track_meta": True},
        {"_target_": "ScaleIntensityRanged", "keys": "@image_key", "a_min": -963.8, "a_max": 1053.7, "b_min": 0,
         "b_max": 1, "clip": True},
        {"_target_": "Orientationd", "keys": "@image_key", "axcodes": "RAS"},
        {"_target_": "CastToTyped", "keys": "@image_key", "dtype": "$torch.float32"},
    ],
    "preprocessing": {"_target_": "Compose", "transforms": "$@preprocessing_transforms "},
    "dataset": {"_target_": "Dataset", "data": "$[@input_dict]", "transform": "@preprocessing"},
    "dataloader": {"_target_": "ThreadDataLoader", "dataset": "@dataset", "batch_size": 1, "shuffle": False,
                   "num_workers": 0},
    "postprocessing": {
        "_target_": "Compose",
        "transforms": [
            {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing",
             "orig_keys": "@image_key", "nearest_interp": True, "to_tensor": True},
            {"_target_": "SaveImaged", "keys": "pred", "resample": False, "output_dir": "@output_dir",
             "output_ext": "@output_ext", "output_dtype": "@output_dtype", "output_postfix": "@output_postfix",
             "separate_folder": "@separate_folder"},
        ],
    },
    "checkpointloader": {"_target_": "CheckpointLoader", "load_path": "$@bundle_root + '/models/model.pt'",
                         "load_dict": {"model": "@network"}, "map_location": "@device"},
    "evaluator": {"_target_": "scripts.evaluator.TinyVista3dEvaluator", "device": "@device",
                  "val_data_loader": "@dataloader", "network": "@network", "postprocessing": "@postprocessing",
                  "everything_labels": "@everything_labels"},
    "initialize": ["$monai.utils.set_determinism(seed=123)", "$@checkpointloader(@evaluator)"],
    "run": ["$@evaluator.run()"],
}

EVALUATOR = '''
import torch
from monai.engines import SupervisedEvaluator
from monai.inferers import sliding_window_inference
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys


class TinyVista3dEvaluator(SupervisedEvaluator):
    """Segments the label_prompt classes (or everything_labels) and writes label ids."""

    def __init__(self, *args, everything_labels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.everything_labels = list(everything_labels)

    def _iteration(self, engine, batchdata):
        inputs = batchdata["image"].to(engine.state.device)
        prompt = batchdata.get("label_prompt")
        ids = [int(x) for x in prompt] if prompt is not None else self.everything_labels
        class_vector = torch.tensor(ids, device=inputs.device).unsqueeze(-1)
        with engine.mode(engine.network), torch.no_grad():  # (1, N, x, y, z), padded to whole windows
            logits = sliding_window_inference(inputs, (16, 16, 16), 1, engine.network, overlap=0.25,
                                              class_vector=class_vector, transpose=True)
        labels = torch.tensor(ids, dtype=torch.float32)[logits.argmax(1)]
        labels[(logits <= 0).all(1)] = 0
        pred = inputs.clone()
        pred[:] = labels.unsqueeze(1)
        engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: None, Keys.PRED: pred}
        engine.fire_event(IterationEvents.MODEL_COMPLETED)  # runs the postprocessing (invert, save)
        return engine.state.output
'''

LOGGING = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=WARNING
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=WARNING
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


def write_bundle(root: Path, seed: int = 0) -> Path:
    """Write the tiny bundle at `root` (the folder `monai.bundle download` names after the bundle)."""
    import torch
    from monai.bundle import ConfigParser

    root = Path(root)
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    (root / "scripts").mkdir(exist_ok=True)
    (root / "configs" / "inference.json").write_text(json.dumps(INFERENCE, indent=1))
    metadata = {"version": "0.5.4-tiny", "monai_version": "1.4.0", "name": "VISTA3D (tiny, random weights)",
                "network_data_format": {"outputs": {"pred": {"channel_def": LABEL_NAMES}}}}
    (root / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=1))
    (root / "configs" / "logging.conf").write_text(LOGGING)
    (root / "scripts" / "__init__.py").write_text("")
    (root / "scripts" / "evaluator.py").write_text(EVALUATOR)
    torch.manual_seed(seed)
    network = ConfigParser({"network_def": NETWORK}).get_parsed_content("network_def")
    torch.save(network.state_dict(), root / "models" / "model.pt")
    return root


def write_checkout(root: Path) -> Path:
    """The part of the authors' checkout the server reads without VILA: the label groups file."""
    path = Path(root) / "m3" / "demo" / "experts" / "label_groups_dict.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(LABEL_GROUPS))
    return Path(root)
