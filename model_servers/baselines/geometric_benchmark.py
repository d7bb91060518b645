"""How long `geometric` takes per volume, side by side with decoding that volume.

The volume-reading control must cost about what reading the volume costs, or a run on real-sized
volumes times out on it. Each volume of a phantom benchmark (CT-RATE-sized by default) is read
and decoded as a server does (`load_volume`: bytes read once, NIfTI decoded from memory), then
`geometric` answers all of the volume's questions (one analysis per volume); both are timed, and
its answers are checked against the phantom's ground truth.
"""
from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

__all__ = ["geometric_benchmark", "report_lines"]


def geometric_benchmark(data: str | Path | None = None, volumes: int = 2, size: str = "ct-rate") -> dict:
    """Per-volume decode and `geometric` seconds on `data` (a phantom `qa_pairs.json`), or on a
    freshly generated phantom of `volumes` volumes of `size` when `data` is None."""
    if data is not None:
        return _measure(Path(data))
    from ctbench.datasets.phantom.generate import PhantomConfig, generate

    with tempfile.TemporaryDirectory(prefix="ctbench-geometric-") as tmp:
        return _measure(generate(tmp, PhantomConfig(n_volumes=volumes, size=size)))


def _measure(qa_path: Path) -> dict:
    from ctbench.datasets.qa_items import load_dataset
    from ctbench.model_servers.baselines.geometric import GeometricExpert
    from ctbench.model_servers.sdk.model import QuestionItem
    from ctbench.preprocess.volume import load_volume

    dataset = load_dataset(qa_path)
    model = GeometricExpert()
    rows, ratios, correct, total = [], [], 0, 0
    import scipy.ndimage  # noqa: F401  (imported once, outside the timings)

    for image_path, items in dataset.by_volume().items():
        started = time.perf_counter()
        volume = load_volume(dataset.volume_path(image_path))
        decoded = time.perf_counter()
        prepared = model.preprocess(volume)
        answers = model.answer([QuestionItem(item.question_id, item.question, prepared=prepared) for item in items])
        answered = time.perf_counter()
        correct += sum(a == item.answer for a, item in zip(answers, items))
        total += len(items)
        ratios.append((answered - decoded) / max(decoded - started, 1e-9))
        rows.append({
            "volume": image_path, "shape_kji": list(volume.array.shape), "questions": len(items),
            "decode_s": decoded - started, "geometric_s": answered - decoded, "ratio": ratios[-1],
        })
    return {
        "dataset": str(qa_path), "volumes": rows, "correct": correct, "questions": total,
        "max_ratio": max(ratios),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }


def report_lines(report: dict) -> list[str]:
    lines = [f"{'volume':<24} {'shape (k,j,i)':<16} {'decode s':>9} {'geometric s':>12} {'ratio':>6}"]
    for r in report["volumes"]:
        shape = "x".join(map(str, r["shape_kji"]))
        lines.append(f"{Path(r['volume']).name:<24} {shape:<16} {r['decode_s']:>9.2f} {r['geometric_s']:>12.2f} {r['ratio']:>5.2f}x")
    lines.append(f"answers correct: {report['correct']}/{report['questions']}; worst ratio {report['max_ratio']:.2f}x")
    lines.append(f"machine: {report['machine']}")
    return lines
