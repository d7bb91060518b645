"""`InspectInput`: the array a server would hand its model for one volume, without calling it.

The volume is loaded and prepared exactly as for a question (the model's own `preprocess`), then
`Model.model_input` turns what `preprocess` returned into the array the model reads. The reply
carries that array's shape, dtype and statistics, and a strided sample of it bounded by the
request's `max_bytes`, so a conformance checker can see where a probe's markers landed and what
intensities they got without the whole tensor crossing the wire.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ctbench.errors import InvalidVolume, UnsupportedTransport, VolumeTooLarge
from ctbench.preprocess.volume import Volume
from ctbench.v1 import answer_volume_question_pb2 as pb

DEFAULT_MAX_BYTES = 1 << 20
MAX_SAMPLE_BYTES = 12 << 20  # a client asks for more than 4 MiB only with a larger receive limit


class InputNotInspectable(UnsupportedTransport):
    """The model's prepared input is not an array InspectInput can show (UNIMPLEMENTED)."""


def as_model_array(prepared: Any) -> np.ndarray:
    """The array in `prepared`: a numpy array, a `Volume` (its voxels) or anything with `__array__`."""
    if isinstance(prepared, np.ndarray):
        return prepared
    if isinstance(prepared, Volume):
        return np.asarray(prepared.array)
    if hasattr(prepared, "__array__"):
        return np.asarray(prepared)
    raise InputNotInspectable(
        f"the model's preprocess returns {type(prepared).__name__}, not an array: override Model.model_input")


def strides_for(shape: tuple[int, ...], itemsize: int, max_bytes: int) -> tuple[int, ...]:
    """Integer strides, one per axis, so that array[::s0, ::s1, ...] fits `max_bytes`: the axis
    with the most sampled elements is thinned first; a trailing channel axis (<= 4) is kept."""
    strides = [1] * len(shape)
    spatial = [a for a in range(len(shape)) if not (a == len(shape) - 1 and len(shape) == 4 and shape[a] <= 4)]

    def size() -> int:
        return int(np.prod([-(-n // s) for n, s in zip(shape, strides)], dtype=np.int64)) * itemsize

    while size() > max_bytes:
        axis = max(spatial, key=lambda a: -(-shape[a] // strides[a]))
        if -(-shape[axis] // strides[axis]) <= 1:
            break
        strides[axis] += 1
    return tuple(strides)


def model_input_message(array: np.ndarray, volume_id: str, spec: pb.InputSpec, max_bytes: int,
                        preprocess_ms: float) -> pb.ModelInput:
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise InputNotInspectable(f"the model's input has dtype {array.dtype}, not a numeric array")
    bound = min(max_bytes or DEFAULT_MAX_BYTES, MAX_SAMPLE_BYTES)
    strides = strides_for(array.shape, array.dtype.itemsize, bound)
    sample = np.ascontiguousarray(array[tuple(slice(None, None, s) for s in strides)])
    little = sample.astype(sample.dtype.newbyteorder("<"), copy=False)
    return pb.ModelInput(
        volume_id=volume_id, shape=list(array.shape), dtype=array.dtype.name, stride=list(strides),
        sampled_shape=list(sample.shape), data=little.tobytes(),
        minimum=float(array.min()) if array.size else 0.0, maximum=float(array.max()) if array.size else 0.0,
        mean=float(array.mean(dtype=np.float64)) if array.size else 0.0,
        preprocess_ms=preprocess_ms, input=spec)


def inspect_input(pipeline, request: pb.InspectInputRequest) -> pb.ModelInput:
    """Load `request`'s volume as a question's would be, through the pipeline's decode and
    preprocess stages, and describe the result. Raises the SDK's typed errors (the servicer
    turns them into the call's status); `ModelNotReady` unless the server is serving."""
    pipeline.readiness.require_serving()
    model, limits = pipeline.model, pipeline.limits
    if not model.reads_volume:
        raise InputNotInspectable(f"{model.name} reads no voxels: it has no input array to show")
    header = request.volume
    vid = header.volume_id
    if not vid:
        raise InvalidVolume("InspectInput: the volume header has no volume_id")
    start = pipeline.clock()
    source = header.WhichOneof("source")
    if source == "path":
        if "reference" not in model.transports:
            raise UnsupportedTransport("this server accepts volumes inline only")
        volume = pipeline.decode_file(pipeline.resolve(header.path), vid)
    elif source == "inline":
        if "inline" not in model.transports:
            raise UnsupportedTransport("this server accepts volumes by reference only")
        data = request.data
        if len(data) > limits.max_chunk_bytes:
            raise VolumeTooLarge(f"InspectInput takes an inline volume of at most {limits.max_chunk_bytes} bytes "
                                 f"(one message); got {len(data)}")
        if header.inline.total_bytes and header.inline.total_bytes != len(data):
            raise InvalidVolume(f"inline volume declares {header.inline.total_bytes} bytes, the request carries {len(data)}")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest != vid:
            raise InvalidVolume(f"volume bytes hash to {digest}, not the declared {vid}")
        volume = pipeline.decode_bytes(data, header.inline.filename or "volume.nii.gz")
    else:
        raise InvalidVolume("InspectInput: the volume header names neither a path nor an inline volume")
    array = model.model_input(pipeline.preprocess(volume))
    return model_input_message(array, vid, pipeline.describe().input, request.max_bytes,
                               (pipeline.clock() - start) * 1e3)
