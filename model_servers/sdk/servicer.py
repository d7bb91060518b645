"""The gRPC servicer: a thin translator between protobuf and the SDK's Python objects.

Every call goes to the `Pipeline` (pipeline.py): `Describe` returns its card, with the
pipeline's readiness in the trailing metadata `ctbench-readiness` (`loading`, `serving`,
`failed`, `draining`: what health says, in words); `InspectInput` runs its decode and
preprocess stages while it serves; each `Answer` call is one
`StreamSession` (stream_session.py), whose reader thread consumes the requests while this call
yields the responses.
"""
from __future__ import annotations

import logging
import threading

import grpc

from ctbench.model_servers.sdk.item_status import status_from_exception
from ctbench.model_servers.sdk.model_card import card_to_proto  # noqa: F401  (the wire card, for callers of the servicer)
from ctbench.model_servers.sdk.pipeline import Pipeline
from ctbench.model_servers.sdk.stream_session import StreamSession
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

log = logging.getLogger("ctbench.server")

_CODES = {c.value[0]: c for c in grpc.StatusCode}
READINESS_KEY = "ctbench-readiness"  # Describe's trailing metadata: the pipeline's readiness


class AnswerVolumeQuestionServicer(pb_grpc.AnswerVolumeQuestionServicer):
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.ModelCard:
        context.set_trailing_metadata(((READINESS_KEY, self.pipeline.readiness.state),))
        try:
            return self.pipeline.describe()
        except Exception as exc:  # a card the protocol cannot carry says why; a bug is INTERNAL
            _abort(context, exc, "Describe")

    def InspectInput(self, request: pb.InspectInputRequest, context: grpc.ServicerContext) -> pb.ModelInput:
        from ctbench.model_servers.sdk.input_inspection import inspect_input

        try:
            return inspect_input(self.pipeline, request)
        except Exception as exc:  # typed errors keep their code and message; bugs become INTERNAL
            _abort(context, exc, "InspectInput")

    def Answer(self, request_iterator, context: grpc.ServicerContext):
        streams = self.pipeline.streams
        if not streams.take():
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server serves at most {streams.limit} Answer streams at once; try again when one ends",
            )
        context.add_callback(streams.give_back)  # runs once, however the call ends
        session = StreamSession(self.pipeline, context)
        threading.Thread(target=session.read, args=(request_iterator,), name="ctbench-reader", daemon=True).start()
        yield from session.responses()


def _abort(context: grpc.ServicerContext, exc: Exception, call: str) -> None:
    status = status_from_exception(exc, call)
    context.abort(_CODES.get(status.code, grpc.StatusCode.INTERNAL), f"{status.error_type}: {status.message}")

