"""`SliceVLM`: the server body MedGemma and Lingshu share (stock `transformers` classes).

Per volume: sample and window the slices (`preprocess`), run the processor and, with reuse on,
encode the shared slice prefix once (`encode_volume` -> `PrefixState`: vision features and the
prefix KV cache). Per batch of that volume's questions: greedy decoding from a copy of that
state (`PrefixDecoder`). With `--option reuse=false` every question re-encodes its slices
through `model.generate` on the full prompt (the baseline the speed-up is measured against);
both paths feed the same token ids, so greedy outputs agree.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ctbench.errors import ModelError, ModelNotReady
from ctbench.model_servers.sdk import InputSpec, QuestionItem
from ctbench.model_servers.vlm_common.base import InvalidOption, VLMModel, parse_bool, parse_int
from ctbench.model_servers.vlm_common.inputs import preset, slice_pipeline
from ctbench.model_servers.vlm_common.slice_prompt import SplitPrompt, split_prompt
from ctbench.model_servers.vlm_common.text import clean_answer
from ctbench.model_servers.vlm_common.weights import require_complete_load
from ctbench.preprocess.volume import Volume

if TYPE_CHECKING:  # torch and transformers are imported at load time only
    from transformers import ProcessorMixin

    from ctbench.model_servers.vlm_common.prefix_decoding import PrefixDecoder

TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")


@dataclass
class SliceStack:
    images: np.ndarray  # (N, rows, cols, 3) uint8, slice 0 first (see the preset's orientation)

    @property
    def nbytes(self) -> int:
        return int(self.images.nbytes)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:  # what InspectInput shows
        return self.images if dtype is None else self.images.astype(dtype)


@dataclass
class VolumePrompt:
    """A volume's processed prefix; `state` is set when reuse is on."""

    prefix_inputs: dict  # processor output for the prefix, batch 1, CPU tensors
    split: SplitPrompt
    n_images: int
    state: Any = None
    processor_ms: float = 0.0

    @property
    def nbytes(self) -> int:
        total = sum(int(v.element_size() * v.nelement()) for v in self.prefix_inputs.values() if hasattr(v, "nelement"))
        return total + (self.state.nbytes if self.state is not None else 0)


class SliceVLM(VLMModel):
    #: the transformers class the authors load (resolved by name at load time)
    model_class: ClassVar[str] = ""
    mrope: ClassVar[bool] = False
    extra_options = ("num_slices", "slice_size", "reuse", "max_batch_size", "fit_context", "exact_batches")
    max_batch_size = 16
    stop_strings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: str):
        super().__init__(**options)
        self.reuse = parse_bool("reuse", options.get("reuse", "true"))
        self.settings["reuse"] = self.reuse
        spec = preset(self.name, self.variant)
        self.num_slices = parse_int("num_slices", options.get("num_slices", spec.num_slices), 1)
        self.slice_size = _parse_size(options["slice_size"]) if "slice_size" in options else spec.slice_size
        self.pipeline = slice_pipeline(spec, self.num_slices, self.slice_size)
        if "max_batch_size" in options:
            self.max_batch_size = parse_int("max_batch_size", options["max_batch_size"], 1)
        self.fit_context = parse_bool("fit_context", options.get("fit_context", "true"))
        # Reuse batches pad shorter questions between the prefix and the question. Full-attention
        # layers are exact; a sliding-window layer (Gemma 3's local layers) then sees its window
        # shifted by the pad count. exact_batches=true decodes equal-length questions together only.
        self.exact_batches = parse_bool("exact_batches", options.get("exact_batches", "false"))
        self.settings["exact_batches"] = self.exact_batches
        self._lock = threading.Lock()  # one model call at a time (encode_volume runs on other threads)
        self.processor: ProcessorMixin | None = None
        self.decoder: PrefixDecoder | None = None
        # version was computed before `reuse` joined the settings: recompute
        self.version = f"{self.weights_version}+{self.variant}+gen-{self._settings_hash()}"

    def input_spec(self) -> InputSpec:
        """The preset, with any `num_slices` / `slice_size` override this server runs with."""
        spec = super().input_spec()
        details = {**spec.details, "slice_size": "native" if self.slice_size is None
                   else f"{self.slice_size[0]}x{self.slice_size[1]}"}
        shape = (self.num_slices, *(self.slice_size or spec.target_shape[1:])) if spec.target_shape else ()
        return dataclasses.replace(spec, num_slices=self.num_slices, details=details, target_shape=shape)

    # --- loading ----------------------------------------------------------------------------
    def load_model(self) -> None:
        import torch
        import transformers

        from ctbench.model_servers.vlm_common.prefix_decoding import PrefixDecoder

        self.seed_everything()
        path = str(self.weights_path)
        processor = self.processor = self.load_processor(path)
        cls = getattr(transformers, self.model_class)
        model, info = cls.from_pretrained(path, output_loading_info=True, **self.dtype_kwargs())
        require_complete_load(self.name, self.weights_path, info)
        self.model = model.to(self.device()).eval()
        tokenizer = processor.tokenizer
        self.end_ids = self._end_token_ids()
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_ids[0]
        self.pad_id = int(pad)
        self.decoder = PrefixDecoder(
            self.model, mrope=self.mrope, end_token_ids=self.end_ids, pad_token_id=self.pad_id,
            max_new_tokens=self.settings["max_new_tokens"], min_new_tokens=self.min_new_tokens,
        )
        if torch.cuda.is_available() and self.device().startswith("cuda"):
            self.gpu_memory_bytes = int(torch.cuda.max_memory_allocated())

    @property
    def loaded_processor(self) -> ProcessorMixin:
        """The processor `load_model` read; ModelNotReady before that."""
        if self.processor is None:
            raise ModelNotReady(f"{self.name}: model not loaded")
        return self.processor

    @property
    def loaded_decoder(self) -> PrefixDecoder:
        """The prefix decoder `load_model` built; ModelNotReady before that."""
        if self.decoder is None:
            raise ModelNotReady(f"{self.name}: model not loaded")
        return self.decoder

    def load_processor(self, path: str):
        import transformers

        return transformers.AutoProcessor.from_pretrained(path, use_fast=True)

    @property
    def min_new_tokens(self) -> int:
        """The preset's minimum, never above `max_new_tokens` (a short cap wins)."""
        return min(self.settings.get("min_new_tokens", 0), self.settings["max_new_tokens"])

    def _end_token_ids(self) -> list[int]:
        tokenizer = self.loaded_processor.tokenizer
        ids: list[int] = []
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        for value in (configured, tokenizer.eos_token_id):
            if value is None:
                continue
            ids.extend(value if isinstance(value, (list, tuple)) else [value])
        return sorted({int(i) for i in ids})

    # --- per volume -------------------------------------------------------------------------
    def preprocess(self, volume: Volume) -> SliceStack:
        return SliceStack(np.asarray(self.pipeline(volume)))

    def encode_volume(self, prepared: SliceStack) -> VolumePrompt:
        if self.processor is None:
            raise ModelNotReady(f"{self.name}: model not loaded")
        start = time.perf_counter()
        prompt = self._volume_prompt(prepared)
        prompt.processor_ms = (time.perf_counter() - start) * 1e3
        if self.reuse:
            with self._lock:
                prompt.state = self.loaded_decoder.encode_prefix(prompt.prefix_inputs, prompt.n_images)
        return prompt

    def _volume_prompt(self, prepared: SliceStack) -> VolumePrompt:
        images = list(prepared.images)
        processor = self.loaded_processor
        while True:
            split = split_prompt(processor, len(images))
            inputs = processor(text=[split.prefix_text], images=[images], return_tensors="pt",
                               add_special_tokens=False)
            inputs = dict(inputs)
            budget = self._context_length() - self.settings["max_new_tokens"] - 64
            if not self.fit_context or inputs["input_ids"].shape[1] <= budget or len(images) <= 1:
                return VolumePrompt(inputs, split, len(images))
            # As the published MedGemma harness does: keep 80% of the slices, uniformly, and retry.
            keep = np.rint(np.linspace(0, len(images) - 1, max(1, int(len(images) * 0.8)))).astype(int)
            images = [images[i] for i in keep]

    def _context_length(self) -> int:
        config = getattr(self.model.config, "text_config", self.model.config)
        return int(getattr(config, "max_position_embeddings", 1 << 30))

    # --- per batch --------------------------------------------------------------------------
    def tail_ids(self, prompt: VolumePrompt, question: str) -> list[int]:
        text = prompt.split.tail(question)
        return list(self.loaded_processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        results: list[str | Exception] = [ModelError("not answered")] * len(batch)
        groups: dict[int, list[int]] = {}
        for index, item in enumerate(batch):
            groups.setdefault(id(item.state), []).append(index)
        for indices in groups.values():
            prompt: VolumePrompt = batch[indices[0]].state
            tails = {i: self.tail_ids(prompt, batch[i].text) for i in indices}
            for group in self._decode_groups(tails):
                with self._lock:
                    if self.reuse:
                        if prompt.state is None:  # encoded while reuse was off
                            prompt.state = self.loaded_decoder.encode_prefix(prompt.prefix_inputs, prompt.n_images)
                        new_tokens = self.loaded_decoder.decode(prompt.state, [tails[i] for i in group])
                    else:
                        new_tokens = self.generate_full(prompt, [tails[i] for i in group])
                for i, tokens in zip(group, new_tokens):
                    results[i] = self.decode_text(tokens)
        return results

    def _decode_groups(self, tails: dict[int, list[int]]) -> list[list[int]]:
        if not (self.reuse and self.exact_batches):
            return [list(tails)]
        groups: dict[int, list[int]] = {}
        for index, tail in tails.items():
            groups.setdefault(len(tail), []).append(index)
        return list(groups.values())

    def decode_text(self, tokens: list[int]) -> str:
        text = self.loaded_processor.tokenizer.decode(tokens, skip_special_tokens=True)
        return clean_answer(text, self.stop_strings)

    def full_inputs(self, prompt: VolumePrompt, tails: list[list[int]]) -> dict:
        """The whole prompt per question (prefix + tail), left-padded, images repeated per row."""
        import torch

        prefix = prompt.prefix_inputs
        batch = len(tails)
        rows = []
        for tail in tails:
            row = {}
            tail_t = torch.tensor([tail], dtype=torch.long)
            for key in TOKEN_KEYS:
                if key not in prefix:
                    continue
                fill = tail_t if key == "input_ids" else torch.full_like(tail_t, 1 if key == "attention_mask" else 0)
                row[key] = torch.cat([prefix[key], fill.to(prefix[key].dtype)], dim=1)
            rows.append(row)
        width = max(r["input_ids"].shape[1] for r in rows)
        out = {}
        for key in rows[0]:
            pad_value = self.pad_id if key == "input_ids" else 0
            padded = []
            for r in rows:
                t = r[key]
                pad = torch.full((1, width - t.shape[1]), pad_value, dtype=t.dtype)
                padded.append(torch.cat([pad, t], dim=1))
            out[key] = torch.cat(padded, dim=0)
        for key, value in prefix.items():
            if key not in TOKEN_KEYS and isinstance(value, torch.Tensor):
                out[key] = torch.cat([value] * batch, dim=0)
        return out

    def generate_full(self, prompt: VolumePrompt, tails: list[list[int]]) -> list[list[int]]:
        import torch

        inputs = {k: v.to(self.model.device) for k, v in self.full_inputs(prompt, tails).items()}
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, do_sample=False, max_new_tokens=self.settings["max_new_tokens"],
                min_new_tokens=self.min_new_tokens, eos_token_id=self.end_ids,
                pad_token_id=self.pad_id, top_p=None, top_k=None, temperature=None,
            )
        new = output[:, inputs["input_ids"].shape[1]:].tolist()
        trimmed = []
        for row in new:
            tokens = []
            for token in row:
                tokens.append(token)
                if token in self.end_ids:
                    break
            trimmed.append(tokens)
        return trimmed


def _parse_size(value: str) -> tuple[int, int] | None:
    if value in ("native", ""):
        return None
    try:
        rows, _, cols = value.lower().partition("x")
        return (int(rows), int(cols or rows))
    except ValueError:
        raise InvalidOption(f"option slice_size={value!r}: expected ROWSxCOLS, a single size or 'native'") from None
