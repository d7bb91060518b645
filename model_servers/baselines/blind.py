"""`blind`: never reads the volume; answers from the question text alone with a fixed prior.

It stands for a model that leans on language priors: it prefers the options a report-trained
language model would guess most often. A model that reads the volume must beat it.
"""
from __future__ import annotations

import re

from ctbench.model_servers.sdk import Model, QuestionItem

# Most "likely" words first: a fixed prior over answer words, independent of any image.
PRIOR = ("right", "both", "bilateral", "no", "lower", "posterior", "lateral", "normal", "smaller")
FREE_TEXT_ANSWER = "No significant abnormality."


class Blind(Model):
    version = "1"
    description = "Answers from the question text alone with a fixed prior over answer words; never reads voxels."
    license = "Apache-2.0"
    accepted_options = ()
    reads_volume = False
    max_batch_size = 64

    def generation(self) -> dict[str, str]:
        return {"prior": ",".join(PRIOR)}

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        return [choose(item.options) for item in batch]


def choose(options: tuple[str, ...]) -> str:
    if not options:
        return FREE_TEXT_ANSWER
    for word in PRIOR:
        for option in options:
            if re.search(rf"\b{word}\b", option.lower()):
                return option
    return options[0]
