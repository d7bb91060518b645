"""gRPC status codes by name: the protocol's per-item `Status.code` is the number, ledgers and
reports spell the name (`INVALID_ARGUMENT`). The one table both the runner (`ItemError`) and the
conformance kit read."""
from __future__ import annotations

import grpc

GRPC_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def code_name(code: int) -> str:
    """The name of a numeric gRPC status code; the number itself for one gRPC does not define."""
    return GRPC_CODE_NAMES.get(code, str(code))
