"""What can go wrong with an LLM call, typed once for judges, the QA pipeline and model servers.

Each error carries the gRPC code a model server reports it with (see `ctbench/errors.py`):
UNAVAILABLE and DEADLINE_EXCEEDED are asked again when a run resumes; an endpoint that answered
with a refusal, a content-filter stop or nothing at all is a settled outcome for that question.
"""
from __future__ import annotations

from ctbench.errors import CtbenchError


class LLMError(CtbenchError):
    """A call failed for good (after retries), or the reply was unusable."""

    code = "UNAVAILABLE"


class LLMTimeout(LLMError):
    """Every attempt ran past the configured timeout."""

    code = "DEADLINE_EXCEEDED"


class UnusableReply(LLMError):
    """The endpoint answered, but with no answer. Never retried: asking again gets the same."""

    code = "INTERNAL"


class Refused(UnusableReply):
    """The model declined (the reply's `refusal` field)."""

    code = "INVALID_ARGUMENT"


class ContentFiltered(UnusableReply):
    """The provider's content filter stopped the reply (finish_reason `content_filter` / SAFETY)."""

    code = "INVALID_ARGUMENT"


class EmptyReply(UnusableReply):
    """A reply with no text (often: the token budget ran out first)."""


class ExternalCallRefused(CtbenchError):
    """A call would leave this machine and `allow_external` was not given."""

    code = "PERMISSION_DENIED"
