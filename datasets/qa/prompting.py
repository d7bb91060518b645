"""Versioned prompt files: the default of each step ships in `prompts/`, named ``<step>-v<N>.txt``.

A prompt's identity is the sha256 of its text; every item the pipeline produces records it, so a
changed prompt is visible in the output and invalidates cached and resumed results.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import DatasetError

PROMPT_DIR = Path(__file__).with_name("prompts")
DEFAULT_PROMPTS = {"generate": "generate-v1", "filter": "filter-v1", "categorize": "categorize-v1"}


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, **fields: str) -> str:
        """Fill ``<<NAME>>`` placeholders (braces stay literal, so JSON examples need no escaping)."""
        text = self.text
        for key, value in fields.items():
            marker = f"<<{key.upper()}>>"
            if marker not in text:
                raise DatasetError(f"prompt {self.name!r} has no {marker} placeholder")
            text = text.replace(marker, value)
        return text


def load_prompt(step: str, path: str | Path | None = None) -> Prompt:
    """The default prompt of `step`, or the file at `path`."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DatasetError("prompt file not found", path)
        return Prompt(path.stem, path.read_text(encoding="utf-8"))
    if step not in DEFAULT_PROMPTS:
        raise DatasetError(f"no default prompt for step {step!r}; steps: {', '.join(DEFAULT_PROMPTS)}")
    name = DEFAULT_PROMPTS[step]
    return Prompt(name, (PROMPT_DIR / f"{name}.txt").read_text(encoding="utf-8"))
