"""`VLMModel`: the `Model` subclass the eight published VLM servers share.

It parses the options every server takes (`variant`, `weights`, `device`, `dtype`, `seed`,
`max_new_tokens`), checks the weights directory before loading, builds the card (licence,
input preset of the chosen variant, decoding settings) and stamps every answer's
`model_version` with the variant and a hash of the decoding settings, so each prediction
records how it was produced.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, ClassVar

from ctbench.errors import InvalidOption
from ctbench.model_servers.sdk import InputSpec, Model, ModelCard
from ctbench.model_servers.vlm_common.catalog import ModelWeights, get_weights
from ctbench.model_servers.vlm_common.inputs import input_spec_for
from ctbench.model_servers.vlm_common.weights import require_weights, weights_dir


def variants_of(name: str) -> list[str]:
    """The input-preset variants a server accepts: every variant its preset family registers."""
    from ctbench.preprocess.input_spec import PRESETS, preset_names

    return sorted(PRESETS.get(name).variants) if name in preset_names() else ["authors", "published"]


TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def parse_bool(name: str, value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise InvalidOption(f"option {name}={value!r}: expected true or false")


def parse_int(name: str, value: str | int, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidOption(f"option {name}={value!r}: expected an integer") from None
    if number < minimum:
        raise InvalidOption(f"option {name}={number}: must be >= {minimum}")
    return number


class VLMModel(Model):
    """Base for the published-VLM servers. Subclasses set `name`, `weights_version` and the
    class attributes below, and implement `load_model`, `preprocess` and `answer`."""

    weights_version: ClassVar[str] = "0"
    #: decoding settings per harness ("authors" / "published"), before option overrides
    generation_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    #: option names this server accepts beyond the common ones
    extra_options: ClassVar[tuple[str, ...]] = ()
    common_options: ClassVar[tuple[str, ...]] = ("variant", "weights", "device", "dtype", "seed", "max_new_tokens")

    def option_names(self) -> tuple[str, ...]:
        return (*self.common_options, *self.extra_options)

    def __init__(self, **options: str):
        super().__init__(**options)
        self.variant = options.get("variant", "authors")
        variants = variants_of(self.name)
        if self.variant not in variants:
            raise InvalidOption(f"{self.name}: variant must be one of {', '.join(variants)}, got {self.variant!r}")
        # "published-1mm", "published-minmax": other inputs of the same published harness, whose
        # prompt, loading and decoding are those of "published".
        self.harness = "published" if self.variant.startswith("published") else "authors"
        self.weights_path = weights_dir(options.get("weights"))
        self.seed = parse_int("seed", options.get("seed", 0))
        self.catalog: ModelWeights = get_weights(self.name)
        self.settings = dict(self.generation_defaults.get(self.harness, {}))
        if "max_new_tokens" in options:
            self.settings["max_new_tokens"] = parse_int("max_new_tokens", options["max_new_tokens"], 1)
        self.model = None
        # Per-instance: the version each answer carries names the variant and decoding settings.
        self.version = f"{self.weights_version}+{self.variant}+gen-{self._settings_hash()}"

    # --- loading ----------------------------------------------------------------------------
    def load(self) -> None:
        require_weights(self.weights_path, self.catalog)
        self.load_model()

    def load_model(self) -> None:
        raise NotImplementedError

    def device(self) -> str:
        device = self.options.get("device", "auto")
        if device != "auto":
            return device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def torch_dtype(self, default: str = "bfloat16"):
        import torch

        name = self.options.get("dtype") or (default if self.device().startswith("cuda") else "float32")
        dtype = getattr(torch, name, None)
        if not isinstance(dtype, torch.dtype):
            raise InvalidOption(f"{self.name}: dtype {name!r} is not a torch dtype")
        return dtype

    def dtype_kwargs(self, default: str = "bfloat16") -> dict:
        """`dtype=` for transformers >= 4.56, `torch_dtype=` before (the older images pin older versions)."""
        import transformers

        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        return {key: self.torch_dtype(default)}

    def seed_everything(self) -> None:
        import torch

        torch.manual_seed(self.seed)

    # --- the card -----------------------------------------------------------------------------
    def input_spec(self) -> InputSpec:
        return input_spec_for(self.name, self.variant)

    def generation(self) -> dict[str, str]:
        settings = {k: (json.dumps(v) if isinstance(v, (list, tuple, dict)) else str(v)) for k, v in self.settings.items()}
        settings["variant"] = self.variant
        settings["seed"] = str(self.seed)
        return settings

    def _settings_hash(self) -> str:
        blob = json.dumps({"settings": self.settings, "variant": self.variant, "seed": self.seed}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def card(self) -> ModelCard:
        return dataclasses.replace(super().card(), license=self.catalog.license,
                                   weights=f"{self.catalog.weights_id} (at {self.weights_path})")
