"""Versioned judge prompts: `<name>.txt` files in this folder; a verdict records the prompt's sha256."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import UnknownName

DEFAULT_PROMPT = "ct-spatialvqa-judge-v1"
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    system: str
    user_template: str
    sha256: str  # of the file's bytes: any edit is a new prompt

    def render(self, items: list[dict]) -> tuple[str, str]:
        return self.system, self.user_template.replace("{items_json}", json.dumps(items, ensure_ascii=False, indent=1))


def available_prompts() -> list[str]:
    return sorted(p.stem for p in _HERE.glob("*.txt"))


def load_prompt(name_or_path: str = DEFAULT_PROMPT) -> JudgePrompt:
    path = Path(name_or_path)
    if not path.is_file():
        path = _HERE / f"{name_or_path}.txt"
    if not path.is_file():
        raise UnknownName(f"Unknown judge prompt {name_or_path!r}. Available: {', '.join(available_prompts())}")
    raw = path.read_bytes()
    text = "\n".join(line for line in raw.decode("utf-8").splitlines() if not line.startswith("#"))
    if "=== SYSTEM ===" not in text or "=== USER ===" not in text:
        raise ValueError(f"{path}: a judge prompt needs '=== SYSTEM ===' and '=== USER ===' sections")
    system = text.split("=== SYSTEM ===", 1)[1].split("=== USER ===", 1)[0].strip()
    user = text.split("=== USER ===", 1)[1].strip()
    if "{items_json}" not in user:
        raise ValueError(f"{path}: the user section must contain {{items_json}}")
    return JudgePrompt(path.stem, system, user, hashlib.sha256(raw).hexdigest())
