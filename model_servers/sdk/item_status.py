"""Exceptions -> per-item statuses, in exactly one place.

A `CtbenchError` keeps its type and message (they are written for the client). Anything else is
a bug in the model server: the client gets INTERNAL with a generic message and the traceback
goes to the server log.
"""
from __future__ import annotations

import logging

import grpc

from ctbench.errors import CtbenchError
from ctbench.v1 import answer_volume_question_pb2 as pb

log = logging.getLogger("ctbench.server")

OK = pb.ItemStatus(code=0)


def status_from_exception(exc: BaseException, context: str = "") -> pb.ItemStatus:
    if isinstance(exc, CtbenchError):
        code = getattr(grpc.StatusCode, exc.code, grpc.StatusCode.INTERNAL)
        return pb.ItemStatus(code=code.value[0], error_type=exc.type_name, message=str(exc))
    log.error("unexpected error%s", f" ({context})" if context else "", exc_info=exc)
    return pb.ItemStatus(
        code=grpc.StatusCode.INTERNAL.value[0],
        error_type="InternalError",
        message="internal error in the model server; its log has the traceback",
    )
