"""`AuthorsVLM`: base for the six servers whose model classes live in their authors' code.

Those classes are imported from a checkout of the authors' repository at a pinned commit (the
Dockerfile clones it at build time); its path comes from `--option repo=DIR`, else the
server's environment variable, else the image's default. Everything up to the model call
(weights checks, preprocessing, prompt and token construction, post-processing and stop
strings) is plain Python here and in each server, tested in CI; the model call itself
(`generate_one`) stays a few lines that only a GPU host with weights runs.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ctbench.errors import ModelNotReady
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.base import VLMModel
from ctbench.model_servers.vlm_common.inputs import preset
from ctbench.model_servers.vlm_common.text import clean_answer
from ctbench.preprocess.volume import Volume


@dataclass(frozen=True)
class AuthorsRepo:
    url: str
    commit: str  # pinned; the Dockerfile checks it out
    env_var: str  # where the checkout is, overridden by --option repo=
    default_path: str  # where the image puts it
    import_root: str = ""  # subfolder that goes on sys.path


def require_checkout(repo: AuthorsRepo) -> Path:
    """The checkout a server would use without options ($ENV_VAR, else the image's path), or
    `ModelNotReady` saying how to provide one (a tiny-model builder's first step)."""
    path = Path(os.environ.get(repo.env_var) or repo.default_path)
    if not path.is_dir():
        raise ModelNotReady(
            f"set {repo.env_var} to a checkout of {repo.url} at commit {repo.commit} "
            f"(nothing at {path}; the image clones it there)"
        )
    return path


class AuthorsVLM(VLMModel):
    repo: ClassVar[AuthorsRepo | None] = None
    max_batch_size = 1  # the authors' generate() takes one volume and one prompt
    stop_strings: ClassVar[tuple[str, ...]] = ()
    answer_prefixes: ClassVar[tuple[str, ...]] = ()
    extra_options: ClassVar[tuple[str, ...]] = ("repo",)

    # --- authors' code ----------------------------------------------------------------------
    def checkout(self, repo: AuthorsRepo | None = None, option: str = "repo") -> Path:
        repo = repo or self.repo
        assert repo is not None
        return Path(self.options.get(option) or os.environ.get(repo.env_var) or repo.default_path)

    def import_authors(self, module: str, repo: AuthorsRepo | None = None, option: str = "repo"):
        """Import `module` from the pinned checkout, or say where the checkout should be."""
        repo = repo or self.repo
        assert repo is not None
        checkout = self.checkout(repo, option)
        root = checkout / repo.import_root if repo.import_root else checkout
        if not root.is_dir():
            raise ModelNotReady(
                f"{self.name}: the authors' code is not at {root}. Clone {repo.url} at commit "
                f"{repo.commit} and pass --option {option}=DIR or set {repo.env_var} (the image does this)."
            )
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return importlib.import_module(module)

    # --- per volume / question ----------------------------------------------------------------
    def preprocess(self, volume: Volume) -> Any:
        return preset(self.name, self.variant).apply(volume)

    def build_prompt(self, item: QuestionItem) -> str:
        raise NotImplementedError

    def generate_one(self, prepared: Any, prompt: str) -> str:
        """The model call: raw generated text for one volume and one prompt."""
        raise NotImplementedError

    def postprocess(self, text: str) -> str:
        return clean_answer(text, self.stop_strings, self.answer_prefixes)

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        results: list[str | Exception] = []
        for item in batch:
            self.seed_everything()  # per question: sampled answers do not depend on batching
            results.append(self.postprocess(self.generate_one(item.prepared, self.build_prompt(item))))
        return results
