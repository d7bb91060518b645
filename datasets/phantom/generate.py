"""`bench data synth`: the phantom benchmark — CT-like volumes with exact ground truth.

Each volume holds one lung nodule, one renal cyst and one hypodense lesion in the liver or the
spleen. Every attribute a question asks about (side, level, depth, centricity, contact, size) is
balanced exactly across the set, so a model that ignores the image cannot beat chance. Volumes
are stored in several orientations (LPS, RAS, flipped and permuted axes) on purpose: a harness
that mishandles the header turns laterality into a coin flip.

Output (CT-SpatialVQA JSON shape plus options, question type and category):
    OUT/qa_pairs.json          {volume_name: {"image_path", "storage_orientation", "qa_pairs": [...]}}
    OUT/volumes/<name>.nii.gz  int16 HU, correct spacing/origin/direction
    OUT/ground_truth.json      lesion geometry in LPS mm (for tests; servers never see it)
    OUT/labels/<name>.nii.gz   uint8 label map of each volume, same grid and orientation
    OUT/labels/label_table.json  what each label value is (`bench data qa measure` reads both;
                               they stay outside volumes/, the folder a measured dataset serves)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np

from ctbench.datasets.phantom.anatomy import (
    HU,
    KIDNEY,
    LABELS,
    LIVER,
    SPLEEN,
    Anatomy,
    Grid,
    Sphere,
    lung_nodule_center,
)

ORIENTATIONS = ("LPS", "RAS", "RPI", "PLS", "SRA", "LAI")
CATEGORY = {
    "laterality": "Laterality & Bilateral Symmetry",
    "vertical_level": "Longitudinal (Vertical) Position",
    "anterior_posterior": "Anterior-Posterior (Depth) Relations",
    "medial_lateral": "Medial-Lateral Orientation (Centricity)",
    "adjacency": "Adjacency & Containment",
    "extent": "Spatial Extent & Boundaries",
    "size_comparison": "Spatial Extent & Boundaries",
}


class GridSize(TypedDict):
    """`Grid`'s fields for one named phantom size."""

    shape_ijk: tuple[int, int, int]
    spacing: tuple[float, float, float]


SIZES: dict[str, GridSize] = {
    "small": {"shape_ijk": (96, 96, 64), "spacing": (4.0, 4.0, 6.25)},
    "ct-rate": {"shape_ijk": (512, 512, 300), "spacing": (0.75, 0.75, 4.0 / 3.0)},
}


@dataclass(frozen=True)
class PhantomConfig:
    n_volumes: int = 12
    size: str = "small"
    noise_hu: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_volumes < 1:
            raise ValueError(f"n_volumes must be >= 1, got {self.n_volumes}")
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, got {self.size!r}")


def _balanced(rng: np.random.Generator, n: int) -> np.ndarray:
    """n booleans, half True (one more False when n is odd), shuffled."""
    values = np.arange(n) < n // 2
    rng.shuffle(values)
    return values


def design(config: PhantomConfig) -> list[dict]:
    """Per-volume lesion attributes, each balanced across the set."""
    rng = np.random.default_rng(config.seed)
    n = config.n_volumes
    keys = ("nodule_left", "lateral", "anterior", "upper", "abutting", "cyst_left", "upper_pole",
            "in_liver", "large_lesion", "nodule_larger")
    columns = {key: _balanced(rng, n) for key in keys}
    rows = []
    for v in range(n):
        row: dict[str, bool | float | str] = {key: bool(columns[key][v]) for key in keys}
        row["nodule_radius"] = float(rng.uniform(9.0, 11.0) if row["nodule_larger"] else rng.uniform(5.0, 6.0))
        row["cyst_radius"] = float(rng.uniform(5.0, 6.0) if row["nodule_larger"] else rng.uniform(9.0, 11.0))
        row["lesion_radius"] = float(rng.uniform(19.0, 22.0) if row["large_lesion"] else rng.uniform(8.0, 10.0))
        row["orientation"] = ORIENTATIONS[v % len(ORIENTATIONS)]
        rows.append(row)
    return rows


def lesions_for(row: dict) -> list[Sphere]:
    side = "left" if row["nodule_left"] else "right"
    nodule = Sphere("nodule", lung_nodule_center(side, row["lateral"], row["anterior"], row["upper"], row["abutting"], row["nodule_radius"]), row["nodule_radius"], HU["nodule"])
    (kx, ky, kz), (_, _, kaz) = KIDNEY["left" if row["cyst_left"] else "right"]
    cyst = Sphere("cyst", (kx, ky, kz + (0.45 if row["upper_pole"] else -0.45) * kaz), row["cyst_radius"], HU["cyst"])
    (ox, oy, oz), _ = LIVER if row["in_liver"] else SPLEEN
    lesion = Sphere("abdominal_lesion", (ox, oy, oz), row["lesion_radius"], HU["cyst"])
    return [nodule, cyst, lesion]


def questions_for(row: dict) -> list[dict]:
    def q(qtype: str, text: str, options: list[str], answer: str) -> dict:
        assert answer in options
        return {"question": text, "answer": answer, "options": options, "question_type": qtype, "category": [CATEGORY[qtype]]}

    nodule_larger = row["nodule_larger"]
    return [
        q("laterality", "Which lung contains the pulmonary nodule?", ["left", "right"], "left" if row["nodule_left"] else "right"),
        q("laterality", "Which kidney contains the renal cyst?", ["left", "right"], "left" if row["cyst_left"] else "right"),
        q("vertical_level", "Is the pulmonary nodule in the upper or the lower half of its lung?", ["upper", "lower"], "upper" if row["upper"] else "lower"),
        q("vertical_level", "Is the renal cyst at the upper or the lower pole of its kidney?", ["upper pole", "lower pole"], "upper pole" if row["upper_pole"] else "lower pole"),
        q("anterior_posterior", "Is the pulmonary nodule in the anterior or the posterior half of its lung?", ["anterior", "posterior"], "anterior" if row["anterior"] else "posterior"),
        q("medial_lateral", "Is the pulmonary nodule in the medial or the lateral half of its lung?", ["medial", "lateral"], "lateral" if row["lateral"] else "medial"),
        q("adjacency", "Does the pulmonary nodule abut the pleura?", ["yes", "no"], "yes" if row["abutting"] else "no"),
        q("adjacency", "Which organ contains the hypodense abdominal lesion?", ["liver", "spleen"], "liver" if row["in_liver"] else "spleen"),
        q("extent", "Is the greatest diameter of the hypodense abdominal lesion more than 3 cm?", ["yes", "no"], "yes" if row["large_lesion"] else "no"),
        q("size_comparison", "Which is larger, the pulmonary nodule or the renal cyst?", ["the pulmonary nodule", "the renal cyst"], "the pulmonary nodule" if nodule_larger else "the renal cyst"),
    ]


def generate(out_dir: str | Path, config: PhantomConfig = PhantomConfig()) -> Path:
    """Write the phantom benchmark into `out_dir`; returns the path of qa_pairs.json.

    Deterministic: the same config gives byte-identical volumes and questions."""
    import SimpleITK as sitk

    out = Path(out_dir)
    (out / "volumes").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    grid = Grid(**SIZES[config.size])
    rng = np.random.default_rng(config.seed + 1)
    qa: dict[str, dict] = {}
    truth: dict[str, dict] = {}
    for v, row in enumerate(design(config)):
        name = f"phantom_{v:03d}.nii.gz"
        lesions = lesions_for(row)
        anatomy = Anatomy(grid, lesions)
        for folder, array in (("volumes", anatomy.render(config.noise_hu, rng)), ("labels", anatomy.labels())):
            image = sitk.GetImageFromArray(array)
            image.SetSpacing(grid.spacing)
            image.SetOrigin(grid.origin)
            image = sitk.DICOMOrient(image, row["orientation"])
            sitk.WriteImage(image, str(out / folder / name), useCompression=True)
        qa[name] = {"image_path": f"volumes/{name}", "storage_orientation": row["orientation"], "qa_pairs": questions_for(row)}
        truth[name] = {"design": row, "lesions": [asdict(s) for s in lesions]}
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    write_label_table(out / "labels" / "label_table.json")
    qa_path = out / "qa_pairs.json"
    qa_path.write_text(json.dumps(qa, indent=1))
    (out / "config.json").write_text(json.dumps(asdict(config)))
    return qa_path


def write_label_table(path: Path) -> Path:
    """The phantom's label table (`datasets/measure/label_table.py` format)."""
    from ctbench.datasets.measure.label_table import LabelTable, Structure

    return LabelTable(tuple(Structure(*row) for row in LABELS)).write(path)


def ensure_phantom(cache_dir: str | Path, config: PhantomConfig = PhantomConfig()) -> Path:
    """Generate once per config into `cache_dir/<key>/`, reuse afterwards."""
    key = f"n{config.n_volumes}-{config.size}-noise{config.noise_hu:g}-seed{config.seed}"
    target = Path(cache_dir) / key
    qa_path = target / "qa_pairs.json"
    if not qa_path.is_file():
        tmp = target.with_name(target.name + ".partial")
        generate(tmp, config)
        if target.exists():
            import shutil

            shutil.rmtree(target)
        tmp.rename(target)
    return qa_path
