"""The one class a model team subclasses.

The SDK owns everything that is not the model: the `Pipeline` (pipeline.py) runs a model's
stages in order, times them and keeps its readiness; around it are the gRPC plumbing, the
volume cache, batching, per-item errors, health and shutdown (see server.py). A subclass fills
in `load`, optionally `preprocess` and `encode_volume`, and `answer`, and declares its card
(class attributes and `input_spec()`, an `InputSpec`). It never touches protobuf.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ctbench.errors import InvalidOption
from ctbench.preprocess.input_spec import InputSpec
from ctbench.preprocess.volume import Volume

if TYPE_CHECKING:
    from ctbench.model_servers.sdk.model_card import ModelCard
    from ctbench.model_servers.sdk.pipeline import Readiness


@dataclass
class QuestionItem:
    """One question as `Model.answer` sees it, with its volume already prepared."""

    question_id: str
    text: str
    options: tuple[str, ...] = ()
    question_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    volume_id: str = ""
    prepared: Any = None  # what `preprocess` returned for this question's volume
    state: Any = None  # what `encode_volume` returned (shared by the volume's questions)


class _BoundName:
    """`Model.name`: the name `MODEL_MODULES` (model_servers/registry.py) binds the class, or the
    nearest base class, to. The name is written there alone; a class outside that table (an
    out-of-tree server, a test's stand-in) sets `name = "..."` itself, or has the name ""."""

    def __get__(self, obj: object, owner: type) -> str:
        from ctbench.model_servers.registry import MODELS  # that module imports this one

        for klass in owner.__mro__:
            bound = MODELS.name_of(klass)
            if bound:
                return bound
        return ""


class Model:
    """Base class for every ctbench model server.

    Class attributes describe the model card; instance options come from
    `bench serve MODEL --option key=value` and arrive as keyword arguments. `version`,
    `max_batch_size`, `max_wait_ms` and `gpu_memory_bytes` are class defaults a server may set per
    instance (from its weights or options); the rest are fixed per class.
    """

    if TYPE_CHECKING:
        name: ClassVar[str]
    else:
        name = _BoundName()
    version: str = "0"
    description: ClassVar[str] = ""
    license: ClassVar[str] = ""
    weights: ClassVar[str] = ""
    max_batch_size: int = 8
    max_wait_ms: float = 5.0
    #: Seconds one `answer()` call may take; past it the batch's questions get `AnswerTimeout`.
    batch_timeout_s: ClassVar[float] = 300.0
    #: False for models that never look at voxels (the server then skips decoding volumes).
    reads_volume: ClassVar[bool] = True
    #: "reference" and/or "inline".
    transports: ClassVar[tuple[str, ...]] = ("reference", "inline")
    #: File formats accepted by reference (`ctbench.preprocess.volume_formats.FORMATS` keys).
    volume_formats: ClassVar[tuple[str, ...]] = ("nifti",)
    gpu_memory_bytes: int = 0
    #: False when `model_input` cannot show what `preprocess` prepares (InspectInput is then refused).
    inspects_input: ClassVar[bool] = True
    #: The names `--option` may set. Declared, any other name is refused at start (a misspelt
    #: option must not fall back silently to its default); None leaves options unchecked.
    accepted_options: ClassVar[tuple[str, ...] | None] = None
    _readiness: Readiness | None = None  # the serving pipeline's, set when one runs this model

    def __init__(self, **options: str):
        self.options = dict(options)
        check_options(self.name or type(self).__name__, self.options, self.option_names())

    @property
    def ready(self) -> bool:
        """Whether the model is loaded and answers questions, as the pipeline serving it says
        (False before a server has loaded it, or when its load failed)."""
        return self._readiness is not None and self._readiness.model_loaded

    def option_names(self) -> tuple[str, ...] | None:
        """The option names this model accepts (default: `accepted_options`)."""
        return self.accepted_options

    # --- what a model team writes ---------------------------------------------------------
    def load(self) -> None:
        """Load weights. Raise `ModelNotReady` saying what is missing and how to get it."""

    def preprocess(self, volume: Volume) -> Any:
        """Turn a validated `Volume` into the model's input. Runs once per volume."""
        return volume

    def model_input(self, prepared: Any) -> Any:
        """The array the model reads, from what `preprocess` returned (for InspectInput, which
        conformance checks against `input_spec`). The default takes a numpy array, a `Volume` or
        anything with `__array__`; override it when the input lives elsewhere in `prepared`."""
        from ctbench.model_servers.sdk.input_inspection import as_model_array

        return as_model_array(prepared)

    def encode_volume(self, prepared: Any) -> Any:
        """Optional per-volume state (vision features, a KV cache) shared by its questions."""
        return None

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        """One answer (or an exception for that item alone) per question, in batch order."""
        raise NotImplementedError

    # --- the model card -------------------------------------------------------------------
    def input_spec(self) -> InputSpec:
        """How volumes are prepared: an `InputSpec` (`ctbench.preprocess.input_spec`), usually a
        preset's (`ctbench.preprocess.input_spec.get_spec`). The default declares the volume as
        stored, or no input for a model that reads no voxels. A dict is still accepted, with a
        deprecation warning (see docs/shipping-a-model-container.md)."""
        return InputSpec(name=self.name, variant="", kind="volume3d" if self.reads_volume else "none")

    def generation(self) -> dict[str, str]:
        """Decoding settings, reported in the card and recorded with each prediction."""
        return {}

    def card(self) -> ModelCard:
        """The model card, from the class attributes, `input_spec()` and `generation()`. To
        change a field, override and return `dataclasses.replace(super().card(), field=...)`."""
        from ctbench.model_servers.sdk.model_card import ModelCard, as_input_spec

        return ModelCard(
            name=self.name,
            input=as_input_spec(self.input_spec(), self.name),
            version=self.version,
            description=self.description,
            license=self.license,
            weights=self.weights,
            max_batch_size=self.max_batch_size,
            transports=tuple(self.transports),
            volume_formats=tuple(self.volume_formats),
            generation=self.generation(),
            gpu_memory_bytes=self.gpu_memory_bytes,
            inspect_input=bool(self.inspects_input and self.reads_volume),
        )


def check_options(model: str, options: dict[str, str], accepted: tuple[str, ...] | None) -> None:
    """Refuse option names a model does not declare, listing the ones it does."""
    if accepted is None:
        return
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(sorted(accepted)) or "(none)"
        raise InvalidOption(f"{model}: unknown option(s) {', '.join(unknown)}. Allowed: {allowed}")
