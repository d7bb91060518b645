"""`ModelCard`: what a model server says about itself, typed from `Model.card()` to the wire.

The card is one frozen dataclass whose `input` is the preprocessing library's `InputSpec`. It
meets protobuf in this module alone: `ModelCard.to_proto` (the server's `Describe`, with the
limits the server fills in) and `ModelCard.from_proto` (a client reading a `Describe` reply).

A model written for an older SDK may still return a dict from `input_spec()` or `card()`:
`as_input_spec` and `as_model_card` convert it once, warn (`DeprecationWarning`, and the server
log) that the dict form goes away, and refuse a key the protocol does not define with
`InvalidModelCard` naming it, so a misspelt field never vanishes from the card.
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctbench.errors import InvalidModelCard
from ctbench.preprocess.input_spec import InputSpec, UnknownInputKey
from ctbench.v1 import answer_volume_question_pb2 as pb

if TYPE_CHECKING:
    from ctbench.model_servers.sdk.model_core import ServerLimits

log = logging.getLogger("ctbench.server")

TRANSPORTS = ("reference", "inline")
#: Card fields the server fills in from its own limits and version (`to_proto`); a model's
#: card that sets them is refused.
SERVER_FILLED = ("max_volume_bytes", "max_chunk_bytes", "max_inline_bytes", "sdk_version", "inline_hash_follows")
#: A card field the server keeps to itself: it enforces the formats it reads by reference.
LOCAL_ONLY = ("volume_formats",)
_WIRE_TRANSPORTS = {"reference": pb.VOLUME_TRANSPORT_REFERENCE, "inline": pb.VOLUME_TRANSPORT_INLINE}


@dataclass(frozen=True)
class ModelCard:
    """A model's card. The fields before `volume_formats` are the model's declaration; the last
    five are the server's (zero / empty in a card a model builds, set in a card read back)."""

    name: str
    input: InputSpec
    version: str = "0"
    description: str = ""
    license: str = ""
    weights: str = ""
    max_batch_size: int = 1
    transports: tuple[str, ...] = TRANSPORTS
    generation: Mapping[str, str] = field(default_factory=dict)
    gpu_memory_bytes: int = 0
    inspect_input: bool = False
    volume_formats: tuple[str, ...] = ("nifti",)  # LOCAL_ONLY: never on the wire
    max_volume_bytes: int = 0
    max_chunk_bytes: int = 0
    max_inline_bytes: int = 0
    sdk_version: str = ""
    inline_hash_follows: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.input, InputSpec):
            raise InvalidModelCard(f"model card of {self.name or '(no name)'!r}: input is a "
                                   f"{type(self.input).__name__}, not a ctbench.preprocess.input_spec.InputSpec")
        unknown = [t for t in self.transports if t not in TRANSPORTS]
        if unknown:
            raise InvalidModelCard(f"model card of {self.name or '(no name)'!r}: unknown transport(s) "
                                   f"{', '.join(unknown)} (known: {', '.join(TRANSPORTS)})")
        object.__setattr__(self, "transports", tuple(self.transports))
        object.__setattr__(self, "volume_formats", tuple(self.volume_formats))
        object.__setattr__(self, "generation", {str(k): str(v) for k, v in self.generation.items()})

    # --- the protobuf boundary --------------------------------------------------------------
    def to_proto(self, limits: ServerLimits) -> pb.ModelCard:
        """The `ctbench.v1.ModelCard` a server's `Describe` returns: the model's fields, the
        server's limits and SDK version; no reference transport without a data root; the SDK's
        streams take an inline volume's hash after its bytes (`inline_hash_follows`)."""
        from ctbench import __version__

        transports = [t for t in self.transports if t != "reference" or limits.data_root is not None]
        return pb.ModelCard(
            name=self.name, version=self.version, description=self.description, license=self.license,
            weights=self.weights, input=self.input.to_proto(), max_batch_size=self.max_batch_size,
            transports=[_WIRE_TRANSPORTS[t] for t in transports], max_volume_bytes=limits.max_volume_bytes,
            max_chunk_bytes=limits.max_chunk_bytes, max_inline_bytes=limits.max_inline_bytes,
            generation=dict(self.generation), gpu_memory_bytes=self.gpu_memory_bytes, sdk_version=__version__,
            inspect_input=self.inspect_input, inline_hash_follows="inline" in transports)

    @classmethod
    def from_proto(cls, message: pb.ModelCard) -> ModelCard:
        """The card a `Describe` reply carries. Raises ValueError for an invalid InputSpec."""
        names = {wire: name for name, wire in _WIRE_TRANSPORTS.items()}
        return cls(
            name=message.name, input=InputSpec.from_proto(message.input), version=message.version,
            description=message.description, license=message.license, weights=message.weights,
            max_batch_size=message.max_batch_size, transports=tuple(names[t] for t in message.transports if t in names),
            generation=dict(message.generation), gpu_memory_bytes=message.gpu_memory_bytes,
            inspect_input=message.inspect_input, volume_formats=(), max_volume_bytes=message.max_volume_bytes,
            max_chunk_bytes=message.max_chunk_bytes, max_inline_bytes=message.max_inline_bytes,
            sdk_version=message.sdk_version, inline_hash_follows=message.inline_hash_follows)


def card_to_proto(card: ModelCard | Mapping[str, Any], limits: ServerLimits) -> pb.ModelCard:
    """The wire card of `card` (a `ModelCard`, or the deprecated dict form, which is checked
    key by key: `InvalidModelCard` names any key the protocol does not define)."""
    name = card.name if isinstance(card, ModelCard) else str(card.get("name") or "")
    return as_model_card(card, name).to_proto(limits)


# --- the dict form an older model may still return ------------------------------------------
MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelCard) if f.name not in SERVER_FILLED)
_DICT_WARNING = ("{model}: {method}() returned a dict; return {type} instead (the dict form is "
                 "deprecated and will be refused in a later release; see docs/shipping-a-model-container.md)")


def as_input_spec(spec: Any, model: str) -> InputSpec:
    """`spec` as an `InputSpec`; a dict is converted with a deprecation warning. Raises
    `InvalidModelCard` for an unknown key or an invalid declaration, naming the model."""
    if isinstance(spec, InputSpec):
        return spec
    if not isinstance(spec, Mapping):
        raise InvalidModelCard(f"model card of {model or '(no name)'!r}: input_spec() returned "
                               f"{type(spec).__name__}, not a ctbench.preprocess.input_spec.InputSpec")
    _warn_dict(model, "input_spec", "a ctbench.preprocess.input_spec.InputSpec")
    try:
        return InputSpec.from_dict(spec)
    except ValueError as exc:
        raise InvalidModelCard(f"model card of {model or '(no name)'!r}: {exc}") from None


def as_model_card(card: Any, model: str) -> ModelCard:
    """`card` as a `ModelCard`; a dict is converted with a deprecation warning. Raises
    `InvalidModelCard` naming every key the protocol does not define (card and input alike)."""
    if isinstance(card, ModelCard):
        return card
    if not isinstance(card, Mapping):
        raise InvalidModelCard(f"model card of {model or '(no name)'!r}: card() returned "
                               f"{type(card).__name__}, not a ModelCard")
    name = str(card.get("name") or model)
    _warn_dict(name, "card", "a ModelCard (dataclasses.replace(super().card(), ...))")
    problems = []
    unknown = sorted(set(card) - set(MODEL_FIELDS))
    if unknown:
        problems.append(f"unknown card key(s) {', '.join(unknown)} (known: {', '.join(sorted(MODEL_FIELDS))})")
    spec = card.get("input") or {}
    if isinstance(spec, Mapping):
        try:
            spec = InputSpec.from_dict(spec)
        except UnknownInputKey as exc:
            problems.append(str(exc))
        except ValueError as exc:
            problems.append(f"input: {exc}")
    if problems:
        raise InvalidModelCard(f"model card of {name or '(no name)'!r}: " + "; ".join(problems))
    fields = {k: v for k, v in card.items() if k != "input" and v is not None}
    for key in ("transports", "volume_formats"):
        if key in fields:
            fields[key] = tuple(fields[key])
    return ModelCard(input=as_input_spec(spec, name), **{"name": name, **fields})


def _warn_dict(model: str, method: str, wanted: str) -> None:
    message = _DICT_WARNING.format(model=model or "(no name)", method=method, type=wanted)
    warnings.warn(message, DeprecationWarning, stacklevel=3)
    log.warning("%s", message)
