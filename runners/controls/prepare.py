"""Prepare a run's volume controls: each control's questions, and its derived volumes, once.

RUN/controls/<control>/ holds what a control needs: `dataset.jsonl` (its questions, with the
expected answers the control implies: left and right swapped for `mirror-lr`), `control.json`
(what was done: the seed, the shuffle's assignment, volumes that could not be derived, questions
left out), `derived/` (the derived volumes of `mirror-lr`, `blank` and `noise`, written once and
reused on resume) and `predictions/<server>.jsonl` (a ledger like any other). Derived volumes
live in the run folder, which a server does not mount, so they travel inline; `shuffle` uses
the real volumes and travels however the real run does.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from ctbench.datasets.qa_items import Dataset, QAItem
from ctbench.errors import CtbenchError, PreflightError, UnknownName
from ctbench.runners.controls import transforms
from ctbench.runners.controls.laterality import flips_under_mirror, laterality_words, swap_laterality
from ctbench.runners.controls.nifti_voxels import NiftiVoxels, read_nifti_voxels
from ctbench.runners.controls.shuffle import shuffle_assignment

SEEDED = ("shuffle", "noise")  # controls whose volumes or questions depend on --control-seed
CONTROLS = {
    "mirror-lr": "the volume mirrored left-right in patient space; left and right swapped in the expected answer",
    "shuffle": "each question gets another patient's volume of the same size class (seeded)",
    "blank": "an air-only volume (-1000 HU) with the same geometry",
    "noise": "Gaussian noise with the volume's own mean and spread in HU, same geometry (seeded)",
}


@dataclass
class ControlSet:
    """One control of a run: the questions as asked under it and where its answers go."""

    name: str
    folder: Path  # RUN/controls/<name>
    dataset: Dataset  # the questions under this control (RUN/controls/<name>/dataset.jsonl)
    by_reference: bool  # False: derived volumes, sent inline
    failed: dict[str, str] = field(default_factory=dict)  # image path -> why its volume could not be derived
    left_out: list[str] = field(default_factory=list)  # question ids whose expected answer the control cannot derive

    def ledger(self, server: str) -> Path:
        return self.folder / "predictions" / f"{server}.jsonl"

    def to_json(self, seed: int, assignment: dict[str, str] | None) -> dict:
        return {"control": self.name, "description": CONTROLS[self.name], "seed": seed,
                "questions": len(self.dataset.items), "left_out_questions": self.left_out,
                "failed_volumes": self.failed, **({"assignment": assignment} if assignment else {})}


def parse_controls(values: Iterable[str]) -> list[str]:
    """Control names from repeated and comma-separated values, in order, each once."""
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if not name:
                continue
            if name not in CONTROLS:
                raise UnknownName(f"Unknown control {name!r}. Available: {', '.join(CONTROLS)}")
            if name not in names:
                names.append(name)
    return names


def prepare_controls(names: list[str], dataset: Dataset, out_dir: Path, seed: int = 0) -> list[ControlSet]:
    """Each named control's questions, with its derived volumes written under out_dir/controls/."""
    sets = []
    for name in names:
        folder = out_dir / "controls" / name
        _check_seed(name, folder, seed)
        assignment = None
        if name == "shuffle":
            control, assignment = _shuffled(dataset, folder, seed)
        else:
            items, left_out = (_mirrored_items(dataset.items) if name == "mirror-lr" else (list(dataset.items), []))
            control = _derived(name, dataset, items, folder, _transform(name, seed))
            control.left_out = left_out
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "control.json").write_text(json.dumps(control.to_json(seed, assignment), indent=1) + "\n")
        sets.append(control)
    return sets


def _check_seed(name: str, folder: Path, seed: int) -> None:
    """Refuse to resume a seeded control with another seed: its derived volumes and questions
    were made with the first one."""
    if name not in SEEDED:
        return
    try:
        earlier = json.loads((folder / "control.json").read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(earlier, int) and earlier != seed:
        raise PreflightError(f"{folder}: control {name} was made with --control-seed {earlier}, not {seed}; "
                             "resume with the same seed, or use a new --out")


# --- the expected answers under a mirror ----------------------------------------------------
def mirrored_item(item: QAItem) -> QAItem | None:
    """The question as asked of the mirrored volume: left and right swapped in the answer and
    the options (the options keep their order when swapping gives the same set, so the model
    reads the same question). None when the question names a side but the answer does not
    (a yes/no about one side): its expected answer under the mirror cannot be derived."""
    answer_flips = flips_under_mirror(item.answer)
    if not answer_flips and laterality_words(item.question):
        return None
    options = tuple(swap_laterality(o) if flips_under_mirror(o) else o for o in item.options)
    if set(options) == set(item.options):
        options = item.options
    answer = swap_laterality(item.answer) if answer_flips else item.answer
    return replace(item, answer=answer, options=options)


def _mirrored_items(items: list[QAItem]) -> tuple[list[QAItem], list[str]]:
    kept, left_out = [], []
    for item in items:
        mirrored = mirrored_item(item)
        if mirrored is None:
            left_out.append(item.question_id)
        else:
            kept.append(mirrored)
    return kept, left_out


# --- derived volumes ------------------------------------------------------------------------
def _transform(name: str, seed: int) -> Callable[[NiftiVoxels, str], NiftiVoxels]:
    if name == "mirror-lr":
        return lambda volume, key: transforms.mirror_lr(volume)
    if name == "blank":
        return lambda volume, key: transforms.blank(volume)
    return lambda volume, key: transforms.noise(volume, seed, key)


def derived_name(image_path: str) -> str:
    """Where a volume's derived copy goes under derived/: its relative image path, or (absolute
    paths, paths with ..) a short hash of the path plus the file name."""
    path = PurePosixPath(image_path.replace("\\", "/"))
    if not path.is_absolute() and ".." not in path.parts:
        return str(path)
    return f"{hashlib.sha256(image_path.encode()).hexdigest()[:12]}-{path.name}"


def _derived(name: str, dataset: Dataset, items: list[QAItem], folder: Path, transform) -> ControlSet:
    failed: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for image_path in dict.fromkeys(item.image_path for item in items):
        target_name = "derived/" + derived_name(image_path)
        renamed[image_path] = target_name
        target = folder / target_name
        if target.is_file():
            continue  # derived on an earlier attempt: the same bytes again
        try:
            transform(read_nifti_voxels(dataset.volume_path(image_path)), image_path).write(target)
        except CtbenchError as exc:
            failed[target_name] = f"{name}: {exc}"
    items = [replace(item, image_path=renamed[item.image_path]) for item in items]
    control_dataset = Dataset(items, folder.resolve(), source=str(folder / "dataset.jsonl"), name=f"{dataset.name}@{name}")
    return ControlSet(name, folder, control_dataset, by_reference=False, failed=failed)


def _shuffled(dataset: Dataset, folder: Path, seed: int) -> tuple[ControlSet, dict[str, str]]:
    volumes = {image: dataset.volume_path(image) for image in dataset.by_volume()}
    assignment = shuffle_assignment(volumes, seed)
    items = [replace(item, image_path=assignment[item.image_path]) for item in dataset.items]
    control_dataset = replace(dataset, items=items, source=str(folder / "dataset.jsonl"), name=f"{dataset.name}@shuffle")
    return ControlSet("shuffle", folder, control_dataset, by_reference=True), assignment
