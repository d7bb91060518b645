from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VolumeTransport(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOLUME_TRANSPORT_UNSPECIFIED: _ClassVar[VolumeTransport]
    VOLUME_TRANSPORT_REFERENCE: _ClassVar[VolumeTransport]
    VOLUME_TRANSPORT_INLINE: _ClassVar[VolumeTransport]
VOLUME_TRANSPORT_UNSPECIFIED: VolumeTransport
VOLUME_TRANSPORT_REFERENCE: VolumeTransport
VOLUME_TRANSPORT_INLINE: VolumeTransport

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IntensityWindow(_message.Message):
    __slots__ = ("lower", "upper")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    lower: float
    upper: float
    def __init__(self, lower: _Optional[float] = ..., upper: _Optional[float] = ...) -> None: ...

class InputSpec(_message.Message):
    __slots__ = ("name", "variant", "kind", "orientation", "axis_order", "target_shape", "target_spacing_mm", "intensity", "num_slices", "windows", "notes", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_FIELD_NUMBER: _ClassVar[int]
    AXIS_ORDER_FIELD_NUMBER: _ClassVar[int]
    TARGET_SHAPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SPACING_MM_FIELD_NUMBER: _ClassVar[int]
    INTENSITY_FIELD_NUMBER: _ClassVar[int]
    NUM_SLICES_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    name: str
    variant: str
    kind: str
    orientation: str
    axis_order: str
    target_shape: _containers.RepeatedScalarFieldContainer[int]
    target_spacing_mm: _containers.RepeatedScalarFieldContainer[float]
    intensity: str
    num_slices: int
    windows: _containers.RepeatedCompositeFieldContainer[IntensityWindow]
    notes: str
    details: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., variant: _Optional[str] = ..., kind: _Optional[str] = ..., orientation: _Optional[str] = ..., axis_order: _Optional[str] = ..., target_shape: _Optional[_Iterable[int]] = ..., target_spacing_mm: _Optional[_Iterable[float]] = ..., intensity: _Optional[str] = ..., num_slices: _Optional[int] = ..., windows: _Optional[_Iterable[_Union[IntensityWindow, _Mapping]]] = ..., notes: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ModelCard(_message.Message):
    __slots__ = ("name", "version", "description", "license", "weights", "input", "max_batch_size", "transports", "max_volume_bytes", "max_chunk_bytes", "generation", "gpu_memory_bytes", "sdk_version", "max_inline_bytes", "inspect_input", "inline_hash_follows")
    class GenerationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRANSPORTS_FIELD_NUMBER: _ClassVar[int]
    MAX_VOLUME_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_INLINE_BYTES_FIELD_NUMBER: _ClassVar[int]
    INSPECT_INPUT_FIELD_NUMBER: _ClassVar[int]
    INLINE_HASH_FOLLOWS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    description: str
    license: str
    weights: str
    input: InputSpec
    max_batch_size: int
    transports: _containers.RepeatedScalarFieldContainer[VolumeTransport]
    max_volume_bytes: int
    max_chunk_bytes: int
    generation: _containers.ScalarMap[str, str]
    gpu_memory_bytes: int
    sdk_version: str
    max_inline_bytes: int
    inspect_input: bool
    inline_hash_follows: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., license: _Optional[str] = ..., weights: _Optional[str] = ..., input: _Optional[_Union[InputSpec, _Mapping]] = ..., max_batch_size: _Optional[int] = ..., transports: _Optional[_Iterable[_Union[VolumeTransport, str]]] = ..., max_volume_bytes: _Optional[int] = ..., max_chunk_bytes: _Optional[int] = ..., generation: _Optional[_Mapping[str, str]] = ..., gpu_memory_bytes: _Optional[int] = ..., sdk_version: _Optional[str] = ..., max_inline_bytes: _Optional[int] = ..., inspect_input: _Optional[bool] = ..., inline_hash_follows: _Optional[bool] = ...) -> None: ...

class AnswerRequest(_message.Message):
    __slots__ = ("volume", "chunk", "question")
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    volume: VolumeHeader
    chunk: VolumeChunk
    question: Question
    def __init__(self, volume: _Optional[_Union[VolumeHeader, _Mapping]] = ..., chunk: _Optional[_Union[VolumeChunk, _Mapping]] = ..., question: _Optional[_Union[Question, _Mapping]] = ...) -> None: ...

class VolumeHeader(_message.Message):
    __slots__ = ("volume_id", "path", "inline")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    INLINE_FIELD_NUMBER: _ClassVar[int]
    volume_id: str
    path: str
    inline: InlineVolume
    def __init__(self, volume_id: _Optional[str] = ..., path: _Optional[str] = ..., inline: _Optional[_Union[InlineVolume, _Mapping]] = ...) -> None: ...

class InlineVolume(_message.Message):
    __slots__ = ("total_bytes", "filename", "upload_id")
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    total_bytes: int
    filename: str
    upload_id: str
    def __init__(self, total_bytes: _Optional[int] = ..., filename: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class VolumeChunk(_message.Message):
    __slots__ = ("volume_id", "offset", "data", "volume_sha256")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    VOLUME_SHA256_FIELD_NUMBER: _ClassVar[int]
    volume_id: str
    offset: int
    data: bytes
    volume_sha256: str
    def __init__(self, volume_id: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., volume_sha256: _Optional[str] = ...) -> None: ...

class Question(_message.Message):
    __slots__ = ("question_id", "volume_id", "text", "options", "question_type", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    QUESTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    volume_id: str
    text: str
    options: _containers.RepeatedScalarFieldContainer[str]
    question_type: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, question_id: _Optional[str] = ..., volume_id: _Optional[str] = ..., text: _Optional[str] = ..., options: _Optional[_Iterable[str]] = ..., question_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AnswerResponse(_message.Message):
    __slots__ = ("answer", "volume")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    answer: Answer
    volume: VolumeStatus
    def __init__(self, answer: _Optional[_Union[Answer, _Mapping]] = ..., volume: _Optional[_Union[VolumeStatus, _Mapping]] = ...) -> None: ...

class ItemStatus(_message.Message):
    __slots__ = ("code", "error_type", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    error_type: str
    message: str
    def __init__(self, code: _Optional[int] = ..., error_type: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("queue_ms", "preprocess_ms", "inference_ms", "batch_size", "volume_cache_hit")
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    PREPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    queue_ms: float
    preprocess_ms: float
    inference_ms: float
    batch_size: int
    volume_cache_hit: bool
    def __init__(self, queue_ms: _Optional[float] = ..., preprocess_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., batch_size: _Optional[int] = ..., volume_cache_hit: _Optional[bool] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("question_id", "text", "status", "timings", "model_version")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    text: str
    status: ItemStatus
    timings: Timings
    model_version: str
    def __init__(self, question_id: _Optional[str] = ..., text: _Optional[str] = ..., status: _Optional[_Union[ItemStatus, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., model_version: _Optional[str] = ...) -> None: ...

class VolumeStatus(_message.Message):
    __slots__ = ("volume_id", "status", "load_ms", "cache_hit")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOAD_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    volume_id: str
    status: ItemStatus
    load_ms: float
    cache_hit: bool
    def __init__(self, volume_id: _Optional[str] = ..., status: _Optional[_Union[ItemStatus, _Mapping]] = ..., load_ms: _Optional[float] = ..., cache_hit: _Optional[bool] = ...) -> None: ...

class InspectInputRequest(_message.Message):
    __slots__ = ("volume", "data", "max_bytes")
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    volume: VolumeHeader
    data: bytes
    max_bytes: int
    def __init__(self, volume: _Optional[_Union[VolumeHeader, _Mapping]] = ..., data: _Optional[bytes] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class ModelInput(_message.Message):
    __slots__ = ("volume_id", "shape", "dtype", "stride", "sampled_shape", "data", "minimum", "maximum", "mean", "preprocess_ms", "input")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    PREPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    volume_id: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    stride: _containers.RepeatedScalarFieldContainer[int]
    sampled_shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    minimum: float
    maximum: float
    mean: float
    preprocess_ms: float
    input: InputSpec
    def __init__(self, volume_id: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., stride: _Optional[_Iterable[int]] = ..., sampled_shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., mean: _Optional[float] = ..., preprocess_ms: _Optional[float] = ..., input: _Optional[_Union[InputSpec, _Mapping]] = ...) -> None: ...
