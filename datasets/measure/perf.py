"""`bench perf measure`: how fast `bench data qa measure` measures a CT-sized label map.

A phantom label map of the CT-RATE grid (512 x 512 x 300 at 0.75 x 0.75 x 1.33 mm: nine
structures, from a 0.1 mL nodule to a 2 L lung) is written as .nii.gz, then for each repeat:
read and decoded with ctbench's loader, every structure measured (volume, centroid, extents,
boundary), and every question the templates ask built (pairs: contact, containment, surface
distance). Medians of the repeats are reported, with peak memory.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _phantom_label_map(folder: Path, slices: int) -> tuple[Path, Path]:
    import SimpleITK as sitk

    from ctbench.datasets.phantom.anatomy import Anatomy, Grid
    from ctbench.datasets.phantom.generate import PhantomConfig, design, lesions_for, write_label_table

    grid = Grid(shape_ijk=(512, 512, slices), spacing=(0.75, 0.75, 4.0 / 3.0 * 300 / slices))
    labels = Anatomy(grid, lesions_for(design(PhantomConfig(n_volumes=2))[0])).labels()
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(grid.spacing)
    image.SetOrigin(grid.origin)
    path = folder / "labels.nii.gz"
    sitk.WriteImage(image, str(path), useCompression=True)
    return path, write_label_table(folder / "label_table.json")


def measure_benchmark(repeats: int = 3, slices: int = 300, pairs: str = "all") -> dict:
    """Seconds to load, measure every structure of, and build every question for a CT-sized label map."""
    from ctbench.datasets.measure import templates
    from ctbench.datasets.measure.label_table import load_label_table
    from ctbench.datasets.measure.quantities import LabelMap
    from ctbench.preprocess.volume import load_volume

    if repeats < 1 or slices < 1:
        raise ValueError(f"repeats and slices must be >= 1, got {repeats}, {slices}")
    with tempfile.TemporaryDirectory(prefix="ctbench-measure-") as tmp:
        path, table_path = _phantom_label_map(Path(tmp), slices)
        table = load_label_table(table_path)
        load_s, structures_s, questions_s, cpu_s = [], [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            labels = load_volume(path)
            t1, c1 = time.perf_counter(), time.process_time()
            label_map = LabelMap(labels, table)
            measured = label_map.structures()
            t2 = time.perf_counter()
            questions = templates.questions_for(label_map, pairs)
            t3, c3 = time.perf_counter(), time.process_time()
            load_s.append(t1 - t0)
            structures_s.append(t2 - t1)
            questions_s.append(t3 - t2)
            cpu_s.append(c3 - c1)
        n_structures = len(measured)
        n_pairs = len({frozenset(q["structures"]) for q in questions if len(q["structures"]) == 2})
        shape = labels.shape_ijk
        voxels = {name: m.voxels for name, m in measured.items()}
    structures_median, questions_median = statistics.median(structures_s), statistics.median(questions_s)
    return {
        "shape_ijk": list(shape), "spacing_mm": [round(s, 4) for s in labels.spacing], "structures": n_structures,
        "voxels_per_structure": voxels, "pairs": n_pairs, "pair_policy": pairs, "questions": len(questions),
        "repeats": repeats, "load_s": statistics.median(load_s), "measure_s": structures_median,
        "questions_s": questions_median,
        "structures_per_s": n_structures / structures_median,
        "structures_per_s_with_pairs": n_structures / (structures_median + questions_median),
        "measure_and_questions_cpu_s": statistics.median(cpu_s),  # CPU time: what a busy machine does not inflate
        "structures_per_cpu_s_with_pairs": n_structures / statistics.median(cpu_s),
        "volumes_per_hour_with_load": 3600.0 / (statistics.median(load_s) + structures_median + questions_median),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}",
    }


def report_lines(r: dict) -> list[str]:
    shape = "x".join(map(str, r["shape_ijk"]))
    return [
        f"label map {shape} at {r['spacing_mm']} mm: {r['structures']} structures, {r['pairs']} pairs ({r['pair_policy']}), "
        f"{r['questions']} questions; medians of {r['repeats']}",
        f"load (read + decode .nii.gz): {r['load_s']:.2f}s",
        f"measure structures: {r['measure_s']:.2f}s = {r['structures_per_s']:.1f} structures/s",
        f"pairs and questions: {r['questions_s']:.2f}s; with them {r['structures_per_s_with_pairs']:.1f} structures/s "
        f"(CPU time of both: {r['measure_and_questions_cpu_s']:.2f}s = {r['structures_per_cpu_s_with_pairs']:.1f} structures per CPU second)",
        f"whole volume including load: {r['volumes_per_hour_with_load']:.0f} label maps/hour (wall clock, one process)",
        f"peak RSS {r['peak_rss_mib']:.0f} MiB; machine: {r['machine']}",
    ]
