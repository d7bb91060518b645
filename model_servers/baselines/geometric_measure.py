"""`geometric` on measured questions: it measures what it segmented itself.

The structures it finds by intensity (lungs, kidneys, liver, spleen and the lesions inside them)
are painted into a label map of its own, on its working grid, and measured with the same code
and the same templates as `bench data qa measure` (`datasets/measure/`). It never sees the true
label map: only the words of the question name the structures.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ctbench.datasets.measure import templates
from ctbench.datasets.measure.label_table import LabelTable, Structure
from ctbench.datasets.measure.quantities import LabelMap
from ctbench.errors import UnsupportedQuestion
from ctbench.preprocess.volume import Volume

#: What the expert can segment, named as questions name them.
SEGMENTED = LabelTable(tuple(
    Structure(value, name, laterality, kind) for value, (name, laterality, kind) in enumerate((
        ("left lung", "left", "organ"), ("right lung", "right", "organ"), ("liver", "right", "organ"),
        ("spleen", "left", "organ"), ("left kidney", "left", "organ"), ("right kidney", "right", "organ"),
        ("pulmonary nodule", "", "lesion"), ("renal cyst", "", "lesion"), ("hypodense abdominal lesion", "", "lesion"),
    ), start=1)
))


def segmented_label_map(
    volume: Volume,
    air_organs: dict[str, np.ndarray],
    solid_organs: dict[str, np.ndarray],
    lesions: dict[str, tuple[np.ndarray, tuple[slice, ...]] | None],
) -> LabelMap:
    """A label map of the segmented structures on `volume`'s grid. Solid organs have their
    enclosed holes filled (noise and the lesion's cavity), then every lesion is painted over its
    organ, as a label map of a segmentation holds them."""
    from scipy import ndimage

    labels = np.zeros(volume.array.shape, dtype=np.uint8)
    for name, mask in air_organs.items():
        labels[mask] = SEGMENTED.by_name(name).value
    for name, mask in solid_organs.items():
        window = _box(mask)  # filled in its bounding box, grown by a voxel: the same as on the whole array
        labels[window][ndimage.binary_fill_holes(mask[window])] = SEGMENTED.by_name(name).value
    for name, found in lesions.items():
        if found is not None:
            mask, window = found
            labels[window][mask] = SEGMENTED.by_name(name).value
    return LabelMap(Volume(labels, volume.spacing, volume.origin, volume.direction, volume.source), SEGMENTED)


def _box(mask: np.ndarray) -> tuple[slice, ...]:
    from scipy import ndimage

    found = ndimage.find_objects(mask.astype(np.uint8))[0]
    return tuple(slice(max(0, b.start - 1), min(n, b.stop + 1)) for b, n in zip(found, mask.shape))


def answer_measured(text: str) -> Callable[[LabelMap | None], str] | None:
    """The rule for a measured question (`datasets/measure/templates.py`), or None when `text`
    is not one. Decided from the words alone; the rule raises `UnsupportedQuestion` when a
    structure it names is not one it segments, or was not found in this volume."""
    matched = templates.match_question(text)
    if matched is None:
        return None
    template, a, b = matched
    names = [a] if b is None else [a, b]
    known = {s.name for s in SEGMENTED.structures}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnsupportedQuestion(f"geometric does not segment the {unknown[0]!r}")

    def rule(label_map: LabelMap | None) -> str:
        if label_map is None:  # nothing segmented: the first structure asked is missing
            raise UnsupportedQuestion(f"could not find the {names[0]} in the volume")
        for name in names:
            if label_map.structure(name) is None:
                raise UnsupportedQuestion(f"could not find the {name} in the volume")
        return templates.answer(template, label_map, a, b).text

    return rule
