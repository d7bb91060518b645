"""Tiny model servers used by the tests (imported by server subprocesses via PYTHONPATH)."""
from __future__ import annotations

import os
import time

import numpy as np

from ctbench.errors import ModelNotReady, UnsupportedQuestion
from ctbench.model_servers.sdk import Model, QuestionItem


class EchoModel(Model):
    """Answers '<question_id>|<volume shape>|<voxel sum>'; options: delay_ms per batch."""

    name = "echo"
    version = "test-1"
    max_batch_size = 4
    max_wait_ms = 20.0

    def load(self) -> None:
        self.delay = float(self.options.get("delay_ms", 0)) / 1e3
        self.batches: list[int] = []
        self.preprocess_calls = 0

    def preprocess(self, volume):
        self.preprocess_calls += 1
        return volume

    def answer(self, batch: list[QuestionItem]):
        if self.delay:
            time.sleep(self.delay)
        self.batches.append(len(batch))
        results = []
        for item in batch:
            if item.text == "raise-unsupported":
                results.append(UnsupportedQuestion("echo cannot answer that"))
            elif item.text == "raise-bug":
                results.append(ZeroDivisionError("secret internal detail"))
            else:
                v = item.prepared
                results.append(f"{item.question_id}|{v.array.shape}|{int(np.asarray(v.array, dtype=np.int64).sum())}")
        return results


class ReferenceOnlyEchoModel(EchoModel):
    """EchoModel that accepts volumes only by reference (a server that mounts its data)."""

    name = "echo-reference-only"
    transports = ("reference",)


class NeverReadyModel(Model):
    name = "never-ready"

    def load(self) -> None:
        raise ModelNotReady("weights missing: /weights/model.safetensors (run `bench models fetch never-ready`)")

    def answer(self, batch):  # pragma: no cover - never called
        return ["" for _ in batch]


class CrashAtStartModel(Model):
    name = "crash-at-start"

    def __init__(self, **options):
        super().__init__(**options)
        os._exit(3)  # the process dies before listening


class HangingModel(EchoModel):
    """`answer()` never returns for a batch holding the question 'hang' (until `unblock` is set);
    its per-batch timeout is two seconds, and it answers one question per batch."""

    name = "hanging"
    max_batch_size = 1
    max_wait_ms = 0.0
    batch_timeout_s = 2.0

    def load(self) -> None:
        super().load()
        import threading

        self.unblock = threading.Event()

    def answer(self, batch):
        if any(item.text == "hang" for item in batch):
            self.unblock.wait()
        return super().answer(batch)


class NewerSdkEchoModel(EchoModel):
    """EchoModel whose card says a ctbench SDK newer than any runner built it (its own process
    reports sdk_version 99.0.0)."""

    name = "echo-newer-sdk"

    def __init__(self, **options):
        import ctbench

        super().__init__(**options)
        ctbench.__version__ = "99.0.0"
