"""`chance`: picks uniformly among the question's declared options. The floor a model must beat.

Seeded per question id, so the answer to a question never depends on batch or arrival order.
"""
from __future__ import annotations

import hashlib
import random

from ctbench.errors import UnsupportedQuestion
from ctbench.model_servers.sdk import Model, QuestionItem


class Chance(Model):
    version = "1"
    description = "Uniform random choice among the declared answer options (seeded per question)."
    license = "Apache-2.0"
    accepted_options = ("seed",)
    reads_volume = False
    max_batch_size = 64

    def load(self) -> None:
        self.seed = int(self.options.get("seed", 0))

    def generation(self) -> dict[str, str]:
        return {"seed": str(self.seed if self.ready else self.options.get("seed", 0))}

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        results: list[str | Exception] = []
        for item in batch:
            if not item.options:
                results.append(UnsupportedQuestion(f"{item.question_id}: chance needs declared answer options"))
                continue
            digest = hashlib.sha256(f"{self.seed}:{item.question_id}".encode()).digest()
            results.append(random.Random(digest).choice(item.options))
        return results
