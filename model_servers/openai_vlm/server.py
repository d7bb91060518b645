"""`openai-vlm`: any OpenAI-compatible multimodal chat endpoint as a model server.

Per volume (`preprocess`): a slice preset from `ctbench.preprocess.presets` (default `lingshu`:
32 axial slices in display orientation, three CT windows as RGB) turns the volume into
`(N, rows, cols, 3)` uint8 slices, each encoded once as a PNG `data:` URI. Per question: one
chat completion through the shared LLM client (`ctbench.llm`: external hosts only with
`allow_external=true`, retries with exponential backoff on 429/5xx/connection errors and
timeouts), in the slice layout MedGemma's and Lingshu's servers use (`vlm_common/slice_prompt.py`):
the instruction, each slice followed by `SLICE i`, then the question. A batch's questions are
sent `concurrency` at a time. A refusal, a content-filter stop, an empty reply or a timeout
fails that question alone, with its own error type.

The API key is read from the environment variable `api_key_env` names (default
`OPENAI_API_KEY`); it is never an option, never in the card, never logged.

    bench serve openai-vlm --option base_url=http://127.0.0.1:8000/v1 --option model=Qwen/Qwen2.5-VL-7B-Instruct
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ctbench.llm import LLMClient, LLMConfig
from ctbench.model_servers.openai_vlm.png import png_data_uri
from ctbench.model_servers.sdk import Model, ModelCard, QuestionItem
from ctbench.model_servers.vlm_common.base import InvalidOption, parse_bool, parse_int
from ctbench.model_servers.vlm_common.inputs import preset, sized_slice_spec
from ctbench.model_servers.vlm_common.slice_prompt import INSTRUCTION, SUFFIX
from ctbench.preprocess.input_spec import InputSpec, preset_names
from ctbench.preprocess.volume import Volume

OPTIONS = ("base_url", "model", "name", "preset", "variant", "num_slices", "slice_size", "api_key_env", "allow_external",
           "concurrency", "max_tokens", "temperature", "timeout_s", "max_retries", "backoff_s", "max_batch_size")
DEFAULTS = {"preset": "lingshu", "variant": "authors", "api_key_env": "OPENAI_API_KEY", "allow_external": "false",
            "concurrency": "4", "max_tokens": "512", "temperature": "0", "timeout_s": "120", "max_retries": "4",
            "backoff_s": "1"}


@dataclass(frozen=True)
class SliceImages:
    """A volume's slices as the endpoint receives them: PNG data: URIs, slice 0 first."""

    data_uris: tuple[str, ...]
    shape: tuple[int, ...]  # (N, rows, cols, 3) before encoding

    @property
    def nbytes(self) -> int:
        return sum(len(uri) for uri in self.data_uris)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The slices decoded back from the PNGs the endpoint receives (InspectInput shows these)."""
        from ctbench.model_servers.openai_vlm.png import decode_png

        stack = np.stack([decode_png(base64.b64decode(uri.split(",", 1)[1])) for uri in self.data_uris])
        return stack if dtype is None else stack.astype(dtype)


def slice_content(images: SliceImages, question: str) -> list[dict[str, Any]]:
    """The user turn: instruction, each slice image followed by `SLICE i`, then the question."""
    content: list[dict[str, Any]] = [{"type": "text", "text": INSTRUCTION}]
    for number, uri in enumerate(images.data_uris, start=1):
        content.append({"type": "image_url", "image_url": {"url": uri}})
        content.append({"type": "text", "text": f"SLICE {number}"})
    content.append({"type": "text", "text": f"{SUFFIX}\nQuestion: {question.strip()}"})
    return content


class OpenAIVLM(Model):
    description = ("Any OpenAI-compatible multimodal chat endpoint (OpenAI, vLLM, SGLang, ...): a slice preset's "
                   "images as PNG, one chat completion per question.")
    license = "that of the model behind the endpoint"
    max_batch_size = 8
    accepted_options = tuple(OPTIONS)

    def __init__(self, **options: str):
        if "api_key" in options:  # before the generic unknown-option check: say where the key goes
            raise InvalidOption("openai-vlm: the API key is read from the environment only: set "
                                f"${options.get('api_key_env', 'OPENAI_API_KEY')}, "
                                "or name another variable with api_key_env=NAME")
        super().__init__(**options)
        missing = [key for key in ("base_url", "model") if not options.get(key)]
        if missing:
            raise InvalidOption(f"openai-vlm: option(s) {', '.join(missing)} required, e.g. "
                                "--option base_url=http://127.0.0.1:8000/v1 --option model=NAME")
        opts = {**DEFAULTS, **options}
        if opts.get("name"):  # several endpoints side by side, each under its own name (`--endpoints NAME=...`)
            self.name = opts["name"]
        self.base_url = opts["base_url"]
        self.model_name = opts["model"]
        self.spec = _slice_spec(opts)
        if "max_batch_size" in options:
            self.max_batch_size = parse_int("max_batch_size", options["max_batch_size"], 1)
        self.config = LLMConfig(
            backend="openai", model=self.model_name, base_url=self.base_url, api_key_env=opts["api_key_env"],
            temperature=_parse_float("temperature", opts["temperature"]),
            max_output_tokens=parse_int("max_tokens", opts["max_tokens"], 1), json_mode=False,
            concurrency=parse_int("concurrency", opts["concurrency"], 1),
            max_retries=parse_int("max_retries", opts["max_retries"]),
            backoff_s=_parse_float("backoff_s", opts["backoff_s"]),
            timeout_s=_parse_float("timeout_s", opts["timeout_s"]),
            allow_external=parse_bool("allow_external", opts["allow_external"]),
        )
        # The endpoint policy and the key are checked here, so `bench serve` fails at once.
        self.client = LLMClient(self.config, cache=False)
        self.version = f"{self.model_name}+{self.spec.name}-{self.spec.variant}+gen-{self._settings_hash()}"

    def load(self) -> None:
        self.client.backend  # noqa: B018 - builds the OpenAI SDK client (a missing `openai` shows here)

    def preprocess(self, volume: Volume) -> SliceImages:
        slices = self.spec.apply(volume)
        return SliceImages(tuple(png_data_uri(image) for image in slices), tuple(np.shape(slices)))

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        replies = self.client.complete_many([("", slice_content(item.prepared, item.text)) for item in batch])
        return [reply if isinstance(reply, Exception) else reply.text.strip() for reply in replies]

    # --- the card -------------------------------------------------------------------------
    @property
    def endpoint_host(self) -> str:
        parsed = urlparse(self.base_url)
        return parsed.hostname + (f":{parsed.port}" if parsed.port else "") if parsed.hostname else self.base_url

    def input_spec(self) -> InputSpec:
        return self.spec

    def generation(self) -> dict[str, str]:
        return {"model": self.model_name, "endpoint": self.endpoint_host, "preset": f"{self.spec.name}/{self.spec.variant}",
                "temperature": str(self.config.temperature), "max_tokens": str(self.config.max_output_tokens),
                "image_format": "png"}

    def card(self) -> ModelCard:
        return dataclasses.replace(super().card(), weights=f"{self.model_name} at {self.endpoint_host}")

    def _settings_hash(self) -> str:
        blob = json.dumps({"generation": self.generation(), "input": self.spec.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _slice_spec(opts: dict[str, str]) -> InputSpec:
    """The preset named by `preset` / `variant`, with any `num_slices` / `slice_size` override."""
    name = opts["preset"]
    spec = preset(name, opts["variant"])
    if spec.kind != "slices2d":
        slice_presets = [n for n in preset_names() if preset(n, None).kind == "slices2d"]
        raise InvalidOption(f"openai-vlm: preset {name!r} feeds a 3D volume, not slices. "
                            f"Slice presets: {', '.join(slice_presets)}")
    count = parse_int("num_slices", opts["num_slices"], 1) if "num_slices" in opts else None
    size = _parse_size(opts["slice_size"]) if "slice_size" in opts else "preset"
    try:
        return sized_slice_spec(spec, count, size)
    except ValueError as exc:
        raise InvalidOption(f"openai-vlm: preset {name!r} takes no num_slices/slice_size override ({exc})") from None


def _parse_size(value: str) -> tuple[int, int] | None:
    if value in ("native", ""):
        return None
    rows, _, cols = value.lower().partition("x")
    try:
        size = (int(rows), int(cols or rows))
    except ValueError:
        raise InvalidOption(f"option slice_size={value!r}: expected ROWSxCOLS, a single size or 'native'") from None
    if min(size) < 1:
        raise InvalidOption(f"option slice_size={value!r}: sizes must be >= 1")
    return size


def _parse_float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidOption(f"option {name}={value!r}: expected a number") from None
    if number < 0:
        raise InvalidOption(f"option {name}={number}: must be >= 0")
    return number
