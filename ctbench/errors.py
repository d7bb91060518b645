"""The typed errors every part of ctbench raises.

Each error names the gRPC status code it maps to (as a string, so this module needs no grpc);
the model-server servicer turns them into per-item statuses in exactly one place. Messages say
what was wrong and where: the file, the line, the values seen.
"""
from __future__ import annotations


class CtbenchError(Exception):
    """Base class. `code` is the gRPC status code name this error maps to."""

    code = "INTERNAL"

    @property
    def type_name(self) -> str:
        return type(self).__name__


# --- volumes -----------------------------------------------------------------------------
class InvalidVolume(CtbenchError):
    """The volume cannot be used: unreadable, wrong dimensionality, non-finite voxels, ..."""

    code = "INVALID_ARGUMENT"


class VolumeNotFound(InvalidVolume):
    code = "NOT_FOUND"


class VolumeOutsideDataRoot(CtbenchError):
    """A by-reference path that resolves outside the data root the server mounts."""

    code = "PERMISSION_DENIED"


class UnknownVolume(CtbenchError):
    """A question refers to a volume id that was never sent on this stream."""

    code = "FAILED_PRECONDITION"


class VolumeTooLarge(InvalidVolume):
    code = "RESOURCE_EXHAUSTED"


class UnsupportedTransport(CtbenchError):
    code = "UNIMPLEMENTED"


class InlineBytesExhausted(CtbenchError):
    """Inline uploads already hold the server's whole budget of bytes in flight (model card:
    `max_inline_bytes`); the volume may fit later, once other uploads are decoded."""

    code = "RESOURCE_EXHAUSTED"


# --- questions and models ------------------------------------------------------------------
class UnsupportedQuestion(CtbenchError):
    code = "INVALID_ARGUMENT"


class QuestionTooLarge(CtbenchError):
    """A question too large for one gRPC message: it is failed alone, never sent."""

    code = "RESOURCE_EXHAUSTED"


class ModelNotReady(CtbenchError):
    code = "UNAVAILABLE"


class ModelError(CtbenchError):
    """The model failed on an item; the message is safe to show to the client."""

    code = "INTERNAL"


class AnswerTimeout(ModelError):
    """`Model.answer()` did not return within the server's per-batch timeout."""

    code = "DEADLINE_EXCEEDED"


# --- harness side --------------------------------------------------------------------------
def _where(path: object, line: int | None) -> str:
    """`path:line: ` (or `path: `, or nothing) to put before a message about a file."""
    if path is None:
        return ""
    return f"{path}" + (f":{line}" if line is not None else "") + ": "


class DatasetError(CtbenchError):
    """A dataset file is missing or malformed. Carries the path and, where known, the line."""

    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, path: object = None, line: int | None = None):
        super().__init__(_where(path, line) + message)
        self.path = path
        self.line = line


class ComposeFileError(CtbenchError):
    """The server compose file (compose/compose.yaml) is missing or malformed, or its services
    disagree. Carries the path and, where known, the line and the service."""

    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, path: object = None, line: int | None = None, service: str | None = None):
        super().__init__(_where(path, line) + (f"service {service!r}: " if service is not None else "") + message)
        self.path = path
        self.line = line
        self.service = service


class InvalidModelCard(CtbenchError, ValueError):
    """A model's card names a field the protocol does not define (a misspelling, usually)."""

    code = "INTERNAL"


class InvalidOption(CtbenchError, ValueError):
    """A `--option key=value` the server does not accept (shown as `Error: ...` by the CLI)."""

    code = "INVALID_ARGUMENT"


class UnknownName(CtbenchError, KeyError):
    """A name looked up in a registry (server, metric, judge) that is not there."""

    code = "NOT_FOUND"

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ServerStartError(CtbenchError):
    """A model server did not come up: crashed at start, port in use, never turned healthy."""

    code = "UNAVAILABLE"


class PortInUse(ServerStartError):
    pass


class WrongServer(ServerStartError):
    """An endpoint answers, but as another server than the one asked for (a stranger on the port)."""


class PreflightError(CtbenchError):
    """What a run needs before it streams (volumes, a valid dataset) is not there."""

    code = "FAILED_PRECONDITION"


class RunFolderLocked(CtbenchError):
    """Another runner is using this run folder."""

    code = "FAILED_PRECONDITION"
