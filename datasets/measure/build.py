"""`bench data qa measure`: CT volumes + label maps + a label table -> a measured QA dataset.

Inputs: a folder of CT volumes, a folder of label maps with the same file names (NIfTI, any
source: a segmentation model's output or a dataset's masks), and a label table
(`label_table.py`). Each label map must lie on its volume's voxel grid (same shape, spacing,
origin, direction: checked). Output, all deterministic (the same inputs give identical bytes):

    OUT/dataset.jsonl      one question per line (ctbench's JSONL form: case_id, image_path,
                           question, answer, options, question_type, category, plus
                           answer_value / answer_unit for open questions and the structures asked about)
    OUT/measurements.json  per volume: every structure's quantities, every asked pair's
    OUT/manifest.json      the dataset manifest (`datasets/manifest.py`) plus the label table,
                           the templates, the decisiveness margins and this tool's version

Image paths are relative to `data_root` (default: the volumes folder), which is the
`--data-root` of `bench run`; the label maps stay outside it, so no server can read them.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from ctbench.datasets.manifest import dataset_manifest, file_sha256
from ctbench.datasets.measure import templates
from ctbench.datasets.measure.label_table import load_label_table
from ctbench.datasets.measure.quantities import LabelMap, check_same_grid
from ctbench.datasets.qa_items import load_dataset
from ctbench.errors import DatasetError
from ctbench.preprocess.volume import NIFTI_SUFFIXES, load_volume

MEASURE_VERSION = "1"


def volume_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))


def build_measured_dataset(
    volumes_dir: str | Path,
    labels_dir: str | Path,
    label_table: str | Path,
    out_dir: str | Path,
    data_root: str | Path | None = None,
    pairs: str = "lesions",
    on_volume: Callable[[str, int], None] | None = None,
) -> dict:
    """Measure every (volume, label map) pair and write the dataset; returns the manifest."""
    volumes_dir, labels_dir, out = Path(volumes_dir), Path(labels_dir), Path(out_dir)
    if pairs not in templates.PAIR_POLICIES:
        raise DatasetError(f"pairs must be one of {', '.join(templates.PAIR_POLICIES)}, got {pairs!r}")
    for folder, what in ((volumes_dir, "volumes"), (labels_dir, "label maps")):
        if not folder.is_dir():
            raise DatasetError(f"{what} folder not found", folder)
    table = load_label_table(label_table)
    root = Path(data_root) if data_root is not None else volumes_dir
    volumes = volume_files(volumes_dir)
    if not volumes:
        raise DatasetError("no NIfTI volumes (.nii, .nii.gz) in the folder", volumes_dir)
    missing = [p.name for p in volumes if not (labels_dir / p.name).is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} volume(s) have no label map of the same name, e.g. {', '.join(missing[:3])}", labels_dir)
    rows: list[dict] = []
    measurements: dict[str, dict] = {}
    for path in volumes:
        label_path = labels_dir / path.name
        volume, labels = load_volume(path), load_volume(label_path)
        check_same_grid(volume, labels, str(label_path))
        del volume
        label_map = LabelMap(labels, table, str(label_path))
        questions = templates.questions_for(label_map, pairs)
        try:
            image_path = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            raise DatasetError(f"volume {path} is not under the data root {root}") from None
        for q in questions:
            rows.append({"case_id": path.name, "image_path": image_path, **q})
        asked = sorted({tuple(q["structures"]) for q in questions if len(q["structures"]) == 2})
        measurements[path.name] = {
            "label_map": label_path.name,
            "structures": {name: m.to_json() for name, m in label_map.structures().items()},
            "pairs": [label_map.pair(a, b).to_json() for a, b in asked],
        }
        if on_volume is not None:
            on_volume(path.name, len(questions))
    if not rows:
        raise DatasetError("no questions: no structure of the label table appears in any label map", labels_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset_path = out / "dataset.jsonl"
    with dataset_path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    (out / "measurements.json").write_text(json.dumps(measurements, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    manifest = dataset_manifest(load_dataset(dataset_path, root))
    manifest["source"] = dataset_path.name  # relative: the manifest does not depend on where OUT is
    manifest["measure"] = {
        "tool": "ctbench.datasets.measure", "version": MEASURE_VERSION,
        "label_table": table.to_json(), "label_table_sha256": file_sha256(label_table),
        "pairs": pairs,
        "margins": {"size_relative": templates.SIZE_MARGIN, "position_mm": templates.POSITION_MARGIN_MM,
                    "contact_gap_voxel_steps": templates.CONTACT_GAP_STEPS},
        "templates": [asdict(t) for t in templates.TEMPLATES],
        "volumes": len(volumes),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest
