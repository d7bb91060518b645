#!/usr/bin/env python3
"""Template ctbench model server: copy this file, rename the class, fill in the four methods.

The SDK (ctbench.model_servers.sdk) does everything that is not your model: the gRPC protocol,
volume transfer and caching, batching, per-item errors, timings, health (NOT_SERVING until
`load()` returns) and shutdown. You never touch protobuf.

Run it locally, then check it before shipping:
    python template_server.py --port 50051 --data-root ./data
    bench conformance 127.0.0.1:50051 --data-root ./data

In a container (dockerfiles/template.Dockerfile) the runner starts it as
    template_server.py MODEL --host 0.0.0.0 --port 50051 --data-root /data
with the data mounted read-only at /data and, for GPU models, weights read-only at /weights.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from ctbench.errors import ModelNotReady, UnsupportedQuestion
from ctbench.model_servers.sdk import InputSpec, Model, QuestionItem, ServerOptions, serve
from ctbench.preprocess.orientation import reorient
from ctbench.preprocess.volume import Volume


class TemplateModel(Model):
    # --- the model card: who you are and how you prepare input ------------------------------
    name = "template"
    version = "0.1.0"
    description = "Template server: says which lung holds a nodule, from the voxels (a toy)."
    license = "Apache-2.0"
    weights = "none (a real model: the weights id, read from /weights)"
    max_batch_size = 8
    transports = ("reference", "inline")
    gpu_memory_bytes = 0  # a real VLM: roughly what it needs, e.g. 24 << 30

    def input_spec(self) -> InputSpec:
        # Say exactly what your model sees: `bench conformance` and the report record it.
        # A preset's spec (`ctbench.preprocess.input_spec.get_spec("medgemma")`) is the usual answer.
        return InputSpec(name="template-ras", variant="", kind="volume3d", orientation="RAS", axis_order="DHW",
                         intensity="raw HU", notes="reoriented exactly (no resampling)")

    def generation(self) -> dict[str, str]:
        return {"do_sample": "false"}  # greedy: the same question always gets the same answer

    # --- the four methods ---------------------------------------------------------------------
    def load(self) -> None:
        """Load weights here. If something is missing, say what and how to get it."""
        weights = self.options.get("weights")
        if weights is not None and not Path(weights).exists():
            raise ModelNotReady(f"weights not found at {weights}: mount them read-only at /weights")

    def preprocess(self, volume: Volume) -> np.ndarray:
        """Once per volume. `volume.array` is [k, j, i] with LPS geometry in the header: always go
        through the direction matrix (here: reorient to RAS), never assume a storage order."""
        ras = reorient(volume, "RAS")  # index i now increases towards the patient's Right
        return np.asarray(ras.array, dtype=np.float32)

    def encode_volume(self, prepared: np.ndarray) -> dict:
        """Optional, once per volume: state shared by all its questions (vision features, ...).
        Here: which lung holds more soft tissue enclosed by aerated lung along each row."""
        n_i = prepared.shape[2]
        # RAS: the low-i half is the patient's left, the high-i half the patient's right.
        halves = {"left": prepared[:, :, : n_i // 2], "right": prepared[:, :, n_i // 2 :]}
        enclosed = {side: _tissue_enclosed_by_lung(half) for side, half in halves.items()}
        return {"nodule_side": max(enclosed, key=enclosed.get), "enclosed_voxels": enclosed}

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        """One answer, or one exception for that item alone, per question, in batch order."""
        results: list[str | Exception] = []
        for item in batch:
            if "lung" not in item.text.lower() or set(item.options) != {"left", "right"}:
                results.append(UnsupportedQuestion(f"template answers left/right lung questions only, not {item.text!r}"))
                continue
            results.append(item.state["nodule_side"])
        return results


def _tissue_enclosed_by_lung(hu: np.ndarray) -> int:
    """Soft-tissue voxels lying between the first and last aerated-lung voxel of their row."""
    lung = (hu > -950) & (hu < -500)
    index = np.arange(hu.shape[2])
    first = lung.argmax(axis=2)[..., None]
    last = (hu.shape[2] - 1 - lung[..., ::-1].argmax(axis=2))[..., None]
    between = (index >= first) & (index <= last) & lung.any(axis=2)[..., None]
    return int(((hu > -300) & between).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the template model.")
    parser.add_argument("model", nargs="?", default=TemplateModel.name, help="ignored: one model per image")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--weights", help="weights folder (mounted read-only at /weights in containers)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="model option, as `bench serve` takes it (the registry passes weights=/weights)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = dict(item.split("=", 1) for item in args.option if "=" in item)
    if args.weights:
        options["weights"] = args.weights
    serve(TemplateModel(**options), ServerOptions(host=args.host, port=args.port, data_root=args.data_root))


if __name__ == "__main__":
    main()
