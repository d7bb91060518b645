"""Ingest benchmark: one CT-RATE-sized volume through all eight presets, shared vs per-model.

(a) *shared*: decode the gzip NIfTI once, then produce every preset's input from the one
`Volume` (presets share the SimpleITK image, clipped volumes and reorientations).
(b) *per model*, the published harness's style: each model re-reads and decodes the file, turns
the whole volume into floats (float64 where the published script used nibabel ``get_fdata``,
float32 where it used SimpleITK), and runs its own transforms on the full volume with nothing
shared. Both produce the same arrays (checked); only the work differs.

The report says where the time goes: decode, and time per transform kind (resampling, HU
clipping, windowing, slice resizing, ...), summed over presets.
"""
from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from ctbench.preprocess.compose import Compose
from ctbench.preprocess.input_spec import get_spec, preset_names
from ctbench.preprocess.loading import load
from ctbench.preprocess.resampling import resampling_backend
from ctbench.preprocess.volume import Volume, save_volume, volume_from_sitk

__all__ = ["ingest_benchmark", "make_ct_like_volume"]

# Which presets the published harness loaded with nibabel get_fdata (float64); the rest used SimpleITK.
_NIBABEL_FLOAT64 = {"medgemma", "lingshu", "ct-chat", "vila-m3"}


def make_ct_like_volume(shape=(300, 512, 512), spacing=(0.7, 0.7, 1.25), seed: int = 0) -> Volume:
    """A chest-CT-like int16 volume (array (k, j, i), LPS): air, body, lungs, spine, noise.

    Noise makes it compress like a real scan (a flat phantom would gzip to almost nothing).
    """
    depth, rows, cols = shape
    rng = np.random.default_rng(seed)
    y, x = np.ogrid[:rows, :cols]
    cy, cx = rows / 2, cols / 2
    body = ((y - cy) / (0.38 * rows)) ** 2 + ((x - cx) / (0.45 * cols)) ** 2 <= 1
    lung_l = ((y - cy * 0.95) / (0.25 * rows)) ** 2 + ((x - cx * 1.4) / (0.14 * cols)) ** 2 <= 1
    lung_r = ((y - cy * 0.95) / (0.25 * rows)) ** 2 + ((x - cx * 0.6) / (0.14 * cols)) ** 2 <= 1
    spine = ((y - cy * 1.55) / (0.06 * rows)) ** 2 + ((x - cx) / (0.05 * cols)) ** 2 <= 1
    fov = (y - cy) ** 2 + (x - cx) ** 2 <= (0.5 * min(rows, cols)) ** 2
    base = np.full((rows, cols), -1000, np.int16)
    base[body] = 40
    base[lung_l | lung_r] = -850
    base[spine] = 700
    base[~fov] = -1024
    array = np.empty(shape, np.int16)
    for k in range(depth):
        noise = rng.normal(0, 12, size=(rows, cols)).astype(np.int16)
        array[k] = base + np.where(fov, noise, 0).astype(np.int16)
    return Volume(array, spacing, (0.0, 0.0, 0.0))


def _timed_pipeline(pipeline: Compose, data, sink: dict) -> object:
    for transform in pipeline.transforms:
        start = time.perf_counter()
        data = transform(data)
        sink[type(transform).__name__] += time.perf_counter() - start
    return data


def _fresh_pipeline(name: str) -> Compose:
    """A new pipeline for preset `name`, not the spec's cached one."""
    build = get_spec(name).build
    if build is None:
        raise ValueError(f"preset {name!r} has no pipeline")
    return build()


def _shared(path: Path, names: list[str], steps: dict) -> tuple[float, float, dict]:
    start = time.perf_counter()
    volume = load(path)  # keeps the reader's image: no copy before resampling
    decode = time.perf_counter() - start
    outputs = {name: _timed_pipeline(get_spec(name).pipeline(), volume, steps) for name in names}
    return time.perf_counter() - start, decode, outputs


def _per_model(path: Path, names: list[str], steps: dict) -> tuple[float, float, dict]:
    import SimpleITK as sitk

    start = time.perf_counter()
    decode_total = 0.0
    outputs = {}
    for name in names:
        begin = time.perf_counter()
        image = sitk.ReadImage(str(path))  # every model re-reads and decodes the file
        volume = volume_from_sitk(image, str(path))
        decode_total += time.perf_counter() - begin
        begin = time.perf_counter()
        floats = volume.array.astype(np.float64 if name in _NIBABEL_FLOAT64 else np.float32)
        volume = volume.with_array(floats)
        steps["float conversion"] += time.perf_counter() - begin
        # A fresh pipeline per model: nothing cached between models.
        outputs[name] = _timed_pipeline(_fresh_pipeline(name), volume, steps)
        del volume, floats, image
    return time.perf_counter() - start, decode_total, outputs


def ingest_benchmark(
    shape=(300, 512, 512), repeats: int = 1, workdir: str | Path | None = None, warm_up: bool = True,
    backend: str = "sitk", device: str = "auto",
) -> dict:
    """Time (a) load once + all eight presets against (b) per-model re-read + own preprocessing.

    Writes a CT-like int16 gzip NIfTI of `shape` (k, j, i) into `workdir` (a temporary folder if
    None). With `repeats` > 1 each side's best run is reported ("ratio" = best per-model / best
    shared); every run's own pair and ratio are listed under "runs", with their median (robust
    on a machine shared with other work). `warm_up` first runs both sides on a tiny volume so
    imports and first-call costs (torch, thread pools) are not timed. `backend` "torch" runs the
    shared side's resampling on torch (`device` "auto": CUDA if present); the per-model side
    stays on SimpleITK, as the published scripts mostly were. Returns seconds for each side,
    their ratio, where the time goes, and the largest difference between the two sides' outputs
    (checked on the first run).
    """
    import SimpleITK as sitk

    from ctbench.preprocess.torch_resampling import torch_available, torch_device

    names = preset_names()
    with tempfile.TemporaryDirectory(prefix="ctbench-ingest-") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ct_like.nii.gz"
        volume = make_ct_like_volume(tuple(shape))
        save_volume(volume, path)
        file_bytes = path.stat().st_size
        del volume
        if warm_up:
            with resampling_backend(backend, device):
                _warm_up(folder, names)
        best_shared: tuple[float, float, dict] | None = None
        best_per_model: tuple[float, float, dict] | None = None
        runs = []
        difference = None
        for _ in range(max(1, int(repeats))):
            per_model_steps: dict = defaultdict(float)
            per_model_s, per_model_decode, per_model_out = _per_model(path, names, per_model_steps)
            shared_steps: dict = defaultdict(float)
            with resampling_backend(backend, device):
                shared_s, shared_decode, shared_out = _shared(path, names, shared_steps)
            if difference is None:  # same arrays from both sides, checked once
                difference = max(_largest_difference(shared_out[n], per_model_out[n]) for n in names)
            del shared_out, per_model_out  # several GB at full size: never hold two runs' outputs
            runs.append({"shared_s": round(shared_s, 3), "per_model_s": round(per_model_s, 3),
                         "ratio": round(per_model_s / shared_s, 2)})
            if best_per_model is None or per_model_s < best_per_model[0]:
                best_per_model = (per_model_s, per_model_decode, dict(per_model_steps))
            if best_shared is None or shared_s < best_shared[0]:
                best_shared = (shared_s, shared_decode, dict(shared_steps))
        assert best_shared is not None and best_per_model is not None  # at least one repeat ran
        shared_s, shared_decode, shared_steps = best_shared
        per_model_s, per_model_decode, per_model_steps = best_per_model
    return {
        "shape": list(shape),
        "file_bytes": int(file_bytes),
        "presets": names,
        "repeats": int(repeats),
        "threads": int(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()),
        "slice_resize_backend": "torch" if torch_available() else "sitk",
        "resampling_backend": backend if backend == "sitk" else f"torch ({torch_device(device)})",
        "shared_s": round(shared_s, 3),
        "per_model_s": round(per_model_s, 3),
        "ratio": round(per_model_s / shared_s, 2),
        "median_run_ratio": round(float(np.median([run["ratio"] for run in runs])), 2),
        "shared_breakdown_s": {"decode": round(shared_decode, 3), **_rounded(shared_steps)},
        "per_model_breakdown_s": {"decode": round(per_model_decode, 3), **_rounded(per_model_steps)},
        "max_output_difference": difference,
        "runs": runs,
    }


def _largest_difference(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _warm_up(folder: Path, names: list[str]) -> None:
    """Imports, thread pools and first-call costs (e.g. torch) paid before any timing."""
    path = folder / "warm_up.nii.gz"
    save_volume(make_ct_like_volume((8, 32, 32)), path)
    _per_model(path, names, defaultdict(float))
    _shared(path, names, defaultdict(float))


def _rounded(steps: dict) -> dict:
    return {k: round(v, 3) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])}
