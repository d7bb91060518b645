"""The error record: why one question of one server has no answer.

An `ItemError` is the `error` of a `PredictionRecord` (`ledger.py`) and of the client's
`Outcome` (`client.py`); its JSON form is the ledger's `{"code", "type", "message"}` object:
`code` is a gRPC status code name (what resume decides on: `retryable`), `type` the error's
type name (`InvalidVolume`, `DeadlineExceeded`, ...), `message` what was wrong. Every writer
builds one through a constructor below and every reader through `from_json`, so the three keys
are spelled in this module alone. Like a summary row it reads by key too (`error["code"]`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ctbench.errors import CtbenchError
from ctbench.status_codes import code_name

# Codes worth asking again on resume: the server, not the item, was the problem, or the
# ledger line itself was damaged (DATA_LOSS).
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "ABORTED", "DATA_LOSS"})
_KEYS = ("code", "type", "message")


class ItemStatus(Protocol):
    """What `from_status` reads: the protocol's per-item `Status` message."""

    code: int
    error_type: str
    message: str


@dataclass(frozen=True)
class ItemError:
    code: str  # gRPC status code name
    type: str  # the error's type name
    message: str

    # --- the ways an item fails ----------------------------------------------------------------
    @classmethod
    def of(cls, exc: CtbenchError, message: str | None = None) -> ItemError:
        """A typed ctbench error (its code and type name; `message` replaces its text)."""
        return cls(exc.code, exc.type_name, str(exc) if message is None else message)

    @classmethod
    def from_status(cls, status: ItemStatus) -> ItemError:
        """A server's per-item status (non-OK) as the protocol carries it."""
        return cls(code_name(status.code), status.error_type, status.message)

    @classmethod
    def deadline(cls, seconds: float) -> ItemError:
        """No answer within the runner's per-item deadline."""
        return cls("DEADLINE_EXCEEDED", "DeadlineExceeded", f"no answer within the per-item deadline of {seconds:g}s")

    @classmethod
    def not_asked(cls, message: str) -> ItemError:
        """Left unasked because its server failed earlier in the run (asked again on resume)."""
        return cls("UNAVAILABLE", "ServerUnavailable", message)

    @classmethod
    def invalid_prediction(cls, message: str) -> ItemError:
        """A ledger line that says `ok` without a usable prediction (asked again on resume)."""
        return cls("DATA_LOSS", "InvalidPrediction", message)

    # --- what it means ---------------------------------------------------------------------------
    @property
    def retryable(self) -> bool:
        """Whether resume asks the question again (the server, not the item, failed)."""
        return self.code in RETRYABLE_CODES

    # --- its JSON form (the ledger's) ------------------------------------------------------------
    def __getitem__(self, key: str) -> str:
        """Read by key as the JSON form spells it (`error["code"]`), as well as by attribute."""
        if key not in _KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "type": self.type, "message": self.message}

    @classmethod
    def from_json(cls, value: Any) -> ItemError:
        """The error of a ledger line with status `error`. An object gives its fields (a field it
        lacks reads as "UNKNOWN" for the code, "" otherwise); anything else becomes an UNKNOWN
        error whose message is that value (or says there were no details)."""
        if not isinstance(value, dict):
            return cls("UNKNOWN", "Error", str(value or "status 'error' without details"))
        code, type_name, message = value.get("code"), value.get("type"), value.get("message")
        return cls("UNKNOWN" if code is None else str(code), "" if type_name is None else str(type_name),
                   "" if message is None else str(message))
