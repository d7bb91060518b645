"""The slice-prompt layout MedGemma's CT notebook and MedEvalKit (Lingshu) use, split into the
part every question on a volume shares and the part that is the question's own.

One user turn: the instruction, then each slice image followed by the text `SLICE i`, then the
suffix and `Question: ...`; the model's chat template adds the turn markers and the generation
prompt. The shared prefix ends right after the suffix's newline, so the question's tokens never
merge with the prefix's (both the reuse and the no-reuse paths use these same split tokens).
"""
from __future__ import annotations

from dataclasses import dataclass

INSTRUCTION = (
    "You are an instructor teaching medical students. You are analyzing a contiguous block of CT slices. "
    "Please review the slices provided below carefully."
)
SUFFIX = (
    "Based on the visual evidence in the slices provided above, answer the question below. "
    "Provide concise reasoning and conclude with a final answer."
)
SLOT = "CTBENCHQUESTIONSLOT"


@dataclass(frozen=True)
class SplitPrompt:
    prefix_text: str  # chat-templated text up to and including the suffix's newline
    tail_template: str  # "Question: {question}" + what the template puts after the user turn

    def tail(self, question: str) -> str:
        return self.tail_template.replace(SLOT, question.strip(), 1)


def slice_messages(n_slices: int, first_slice_number: int = 1) -> list[dict]:
    content: list[dict] = [{"type": "text", "text": INSTRUCTION}]
    for i in range(n_slices):
        content.append({"type": "image"})
        content.append({"type": "text", "text": f"SLICE {i + first_slice_number}"})
    content.append({"type": "text", "text": f"{SUFFIX}\nQuestion: {SLOT}"})
    return [{"role": "user", "content": content}]


def split_prompt(processor, n_slices: int) -> SplitPrompt:
    """Render the chat template once with a placeholder question and cut it there."""
    text = processor.apply_chat_template(slice_messages(n_slices), add_generation_prompt=True, tokenize=False)
    if isinstance(text, list):
        text = text[0]
    if text.count(SLOT) != 1:
        raise ValueError("the chat template did not keep the question text verbatim")
    before, after = text.split(SLOT)
    cut = before.rfind("Question: ")
    if cut < 0:
        raise ValueError("the chat template dropped the 'Question: ' marker")
    return SplitPrompt(before[:cut], before[cut:] + SLOT + after)
