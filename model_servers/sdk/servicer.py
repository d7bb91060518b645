"""The gRPC servicer: a thin translator between protobuf and the SDK's Python objects.

`Describe` turns the model card into its message; each `Answer` call is one `StreamSession`
(stream_session.py), whose reader thread consumes the requests while this call yields the
responses.
"""
from __future__ import annotations

import logging
import threading

import grpc

from ctbench.errors import InvalidModelCard
from ctbench.model_servers.sdk.item_status import status_from_exception
from ctbench.model_servers.sdk.model_core import ModelCore, ServerLimits
from ctbench.model_servers.sdk.stream_session import StreamSession
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

log = logging.getLogger("ctbench.server")

_CODES = {c.value[0]: c for c in grpc.StatusCode}
TRANSPORTS = {"reference": pb.VOLUME_TRANSPORT_REFERENCE, "inline": pb.VOLUME_TRANSPORT_INLINE}


class AnswerVolumeQuestionServicer(pb_grpc.AnswerVolumeQuestionServicer):
    def __init__(self, core: ModelCore):
        self.core = core

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.ModelCard:
        try:
            return card_to_proto(self.core.model.card(), self.core.limits)
        except InvalidModelCard as exc:  # the model's declaration is wrong: say how
            context.abort(grpc.StatusCode.INTERNAL, str(exc))
        except Exception:  # a bug in the card: generic message out, traceback in the log
            log.exception("Describe failed")
            context.abort(grpc.StatusCode.INTERNAL, "internal error building the model card; the server log has the traceback")

    def InspectInput(self, request: pb.InspectInputRequest, context: grpc.ServicerContext) -> pb.ModelInput:
        from ctbench.model_servers.sdk.input_inspection import inspect_input

        try:
            spec = card_to_proto(self.core.model.card(), self.core.limits).input
            return inspect_input(self.core, request, spec)
        except Exception as exc:  # typed errors keep their code and message; bugs become INTERNAL
            status = status_from_exception(exc, "InspectInput")
            context.abort(_CODES.get(status.code, grpc.StatusCode.INTERNAL), f"{status.error_type}: {status.message}")

    def Answer(self, request_iterator, context: grpc.ServicerContext):
        if not self.core.streams.take():
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server serves at most {self.core.streams.limit} Answer streams at once; try again when one ends",
            )
        context.add_callback(self.core.streams.give_back)  # runs once, however the call ends
        session = StreamSession(self.core, context)
        threading.Thread(target=session.read, args=(request_iterator,), name="ctbench-reader", daemon=True).start()
        yield from session.responses()


# Card keys the server fills in itself, and one the server keeps to itself (it enforces the
# formats it reads by reference; the wire card does not carry them).
SERVER_FILLED = {"max_volume_bytes", "max_chunk_bytes", "max_inline_bytes", "sdk_version", "inline_hash_follows"}
LOCAL_ONLY = {"volume_formats"}


def card_to_proto(card: dict, limits: ServerLimits) -> pb.ModelCard:
    """The wire card from `Model.card()`. A key the protocol does not know is an error naming it:
    a misspelt field must not vanish from the card (and from what conformance checks)."""
    from ctbench import __version__

    check_card_keys(card)
    spec = dict(card.get("input") or {})
    windows = [pb.IntensityWindow(lower=lo, upper=hi) for lo, hi in spec.pop("windows", []) or []]
    details = {str(k): str(v) for k, v in (spec.pop("details", {}) or {}).items()}
    spec = {k: v for k, v in spec.items() if v is not None}
    transports = [t for t in card.get("transports", []) if t in TRANSPORTS]
    if limits.data_root is None and "reference" in transports:
        transports.remove("reference")
    return pb.ModelCard(
        name=card.get("name", ""),
        version=card.get("version", ""),
        description=card.get("description", ""),
        license=card.get("license", ""),
        weights=card.get("weights", ""),
        input=pb.InputSpec(windows=windows, details=details, **spec),
        max_batch_size=card.get("max_batch_size", 1),
        transports=[TRANSPORTS[t] for t in transports],
        max_volume_bytes=limits.max_volume_bytes,
        max_chunk_bytes=limits.max_chunk_bytes,
        max_inline_bytes=limits.max_inline_bytes,
        generation=card.get("generation", {}),
        gpu_memory_bytes=card.get("gpu_memory_bytes", 0),
        sdk_version=__version__,
        inspect_input=bool(card.get("inspect_input", False)),
        inline_hash_follows="inline" in transports,  # the SDK's streams take a hash after the bytes
    )


def check_card_keys(card: dict) -> None:
    """Raise `InvalidModelCard` for a card or InputSpec key the protocol does not define."""
    known_card = {f.name for f in pb.ModelCard.DESCRIPTOR.fields} - SERVER_FILLED | LOCAL_ONLY
    known_input = {f.name for f in pb.InputSpec.DESCRIPTOR.fields}
    problems = []
    unknown = sorted(set(card) - known_card)
    if unknown:
        problems.append(f"unknown card key(s) {', '.join(unknown)} (known: {', '.join(sorted(known_card))})")
    unknown_input = sorted(set(card.get("input") or {}) - known_input)
    if unknown_input:
        problems.append(f"unknown input key(s) {', '.join(unknown_input)} (known: {', '.join(sorted(known_input))})")
    if problems:
        raise InvalidModelCard(f"model card of {card.get('name') or '(no name)'!r}: " + "; ".join(problems))
