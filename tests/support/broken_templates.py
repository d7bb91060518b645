"""The template server (dockerfiles/template/template_server.py), deliberately broken in the ways
that feed a model the wrong input or fail the real benchmark's questions, for the conformance
tests. Served as `bench serve broken_templates:CLASS` (tests/support on PYTHONPATH) or in-process.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

_TEMPLATE = Path(__file__).resolve().parents[2] / "dockerfiles" / "template" / "template_server.py"
_spec = importlib.util.spec_from_file_location("ctbench_template_server", _TEMPLATE)
template_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(template_server)
TemplateModel = template_server.TemplateModel


class LeftRightMirroredTemplate(TemplateModel):
    """Reorients to RAS as declared, then mirrors left-right: every volume consistently, so its
    answers never change with the storage order (and are always the wrong lung)."""

    name = "template-mirrored"

    def preprocess(self, volume):
        return np.ascontiguousarray(super().preprocess(volume)[:, :, ::-1])


class HeaderIgnoringTemplate(TemplateModel):
    """Declares RAS but feeds the array as stored, whatever the header says."""

    name = "template-ignores-header"

    def preprocess(self, volume):
        return np.asarray(volume.array, dtype=np.float32)


class OpenQuestionCrashTemplate(TemplateModel):
    """Answers questions with options; an open question (none declared) is a bug: INTERNAL."""

    name = "template-crashes-on-open"

    def answer(self, batch):
        for item in batch:
            if not item.options:
                raise RuntimeError(f"no options to choose from for {item.question_id}")
        return super().answer(batch)


class OpenQuestionExitTemplate(TemplateModel):
    """An open question kills the whole process (exit code 3), as a segfaulting model would."""

    name = "template-exits-on-open"

    def answer(self, batch):
        if any(not item.options for item in batch):
            print("fatal: open question without options; exiting", flush=True)
            os._exit(3)
        return super().answer(batch)


class SlowTemplate(TemplateModel):
    """The template, taking `delay_s` (option) per batch."""

    name = "template-slow"

    def answer(self, batch):
        import time

        time.sleep(float(self.options.get("delay_s", "1")))
        return super().answer(batch)
