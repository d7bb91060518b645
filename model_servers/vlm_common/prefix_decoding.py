"""Greedy decoding of many questions from one cached, shared prompt prefix.

For the slice-based models (MedGemma, Lingshu) a volume's prompt is a long shared prefix (the
instruction and one image per slice: ~22k tokens for MedGemma's 85 slices) followed by a short
question. `encode_prefix` runs the vision tower and the language model over the prefix once and
keeps the KV cache; `decode` answers a batch of that volume's questions from a copy of it:

    cache (batch 1) --repeat--> batch B;  tails laid out as [prefix | pads | tail_b]
    attention mask 0 over the pads; position ids continue from the prefix for each row

so row b computes exactly what a left-padded, unshared forward pass would. The loop is plain
greedy decoding with `min_new_tokens` (end tokens masked until then) and several end tokens,
the same rules `transformers`' `generate` applies, so outputs can be compared token for token.

Axis conventions: token tensors are (batch, sequence); Qwen2.5-VL position ids are
(3, batch, sequence) (M-RoPE: temporal, height, width), Gemma 3's (batch, sequence).
"""
from __future__ import annotations

import copy
import inspect
import time
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class PrefixState:
    """What `encode_prefix` keeps for one volume."""

    cache: Any  # a transformers Cache holding the prefix's keys/values, batch 1
    length: int  # prefix tokens in the cache
    next_position: int  # position id of the first token after the prefix
    encode_ms: float
    n_images: int

    @property
    def nbytes(self) -> int:
        total = 0
        for layer in getattr(self.cache, "layers", []):
            for name in ("keys", "values"):
                tensor = getattr(layer, name, None)
                if isinstance(tensor, torch.Tensor):
                    total += tensor.element_size() * tensor.nelement()
        return total


def cache_kwarg(model) -> str:
    """`cache` in transformers >= 5.x forward signatures, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def new_cache(model):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers
        return DynamicCache()


class PrefixDecoder:
    """Greedy decoding for one causal VLM from a shared prefix (see the module docstring)."""

    def __init__(self, model, *, mrope: bool, end_token_ids: list[int], pad_token_id: int,
                 max_new_tokens: int, min_new_tokens: int = 0):
        self.model = model
        self.mrope = mrope
        self.end_ids = torch.tensor(sorted(set(end_token_ids)), dtype=torch.long)
        self.pad_id = int(pad_token_id)
        self.max_new_tokens = int(max_new_tokens)
        self.min_new_tokens = int(min_new_tokens)
        self._cache_kw = cache_kwarg(model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def encode_prefix(self, inputs: dict[str, torch.Tensor], n_images: int) -> PrefixState:
        """One forward pass over the prefix (`inputs` as the processor returned them, batch 1)."""
        start = time.perf_counter()
        inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        cache = new_cache(self.model)
        self.model(**inputs, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache})
        length = int(inputs["input_ids"].shape[1])
        next_position = length
        if self.mrope:
            # Text after the images continues from the largest M-RoPE position + 1.
            deltas = getattr(self.model.model, "rope_deltas", None)
            if deltas is None:
                raise RuntimeError("the model did not record M-RoPE deltas for the prefix")
            next_position = length + int(deltas.reshape(-1)[0])
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return PrefixState(cache, length, next_position, (time.perf_counter() - start) * 1e3, n_images)

    @torch.inference_mode()
    def decode(self, state: PrefixState, tails: list[list[int]]) -> list[list[int]]:
        """New token ids for each tail (question tokens + generation prompt), greedy."""
        batch = len(tails)
        if batch == 0:
            return []
        device = self.device
        width = max(len(t) for t in tails)
        ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        tail_mask = torch.zeros((batch, width), dtype=torch.long)
        positions = torch.full((batch, width), state.next_position, dtype=torch.long)
        for row, tail in enumerate(tails):
            n = len(tail)
            ids[row, width - n:] = torch.tensor(tail, dtype=torch.long)
            tail_mask[row, width - n:] = 1
            positions[row, width - n:] = torch.arange(state.next_position, state.next_position + n)
        mask = torch.cat([torch.ones((batch, state.length), dtype=torch.long), tail_mask], dim=1).to(device)
        ids, positions = ids.to(device), positions.to(device)
        end_ids = self.end_ids.to(device)

        cache = copy.deepcopy(state.cache)
        if batch > 1:
            cache.batch_repeat_interleave(batch)
        next_pos = positions[:, -1:] + 1
        outputs: list[list[int]] = [[] for _ in range(batch)]
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        step_ids, step_pos = ids, positions
        for step in range(self.max_new_tokens):
            logits = self._forward(step_ids, mask, step_pos, cache)
            if step < self.min_new_tokens:
                logits[:, end_ids] = float("-inf")
            token = logits.argmax(dim=-1)
            token = torch.where(finished, torch.full_like(token, self.pad_id), token)
            for row, value in enumerate(token.tolist()):
                if not finished[row]:
                    outputs[row].append(value)
            finished |= torch.isin(token, end_ids)
            if bool(finished.all()):
                break
            step_ids = token[:, None]
            step_pos = next_pos
            next_pos = next_pos + 1
            mask = torch.cat([mask, torch.ones((batch, 1), dtype=mask.dtype, device=device)], dim=1)
        return outputs

    def _forward(self, ids, mask, positions, cache) -> torch.Tensor:
        if self.mrope:
            positions = positions[None].expand(3, -1, -1)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self._cache_kw: cache})
        return out.logits[:, -1, :].float()
