"""The exception tree: one base class, one subclass per kind of failure.

Every exception carries the stable ``code`` (the same string as in Rust and Node), the HTTP
``status`` and ``request_id`` when known, and the ``idempotency_key`` of a failed POST.
"""

from __future__ import annotations

import json
from typing import Any, List, Optional

from ._models import Job, Problem

__all__ = [
    "RemoveBGVideoError",
    "AuthenticationError",
    "InsufficientCreditsError",
    "NotFoundError",
    "RateLimitError",
    "InvalidRequestError",
    "ConflictError",
    "ServerError",
    "APIConnectionError",
    "OutcomeUnknownError",
    "ValidationError",
    "JobFailedError",
    "WaitTimeoutError",
    "CancelledError",
    "DownloadError",
    "WebhookVerificationError",
    "UnexpectedResponseError",
    "SDKBugError",
]


class RemoveBGVideoError(Exception):
    """Base class of every error the SDK raises."""

    code: str
    """Stable machine-readable code, e.g. ``invalid_api_key``."""
    kind: str
    """The family of the error, e.g. ``authentication``."""
    message: str
    """A sentence for people; never contains the API key."""
    status: Optional[int]
    """The HTTP status, when a response was received."""
    request_id: Optional[str]
    """The request id, for support."""
    idempotency_key: Optional[str]
    """The Idempotency-Key of the failed POST: repeat it with this key."""
    retry_after: Optional[float]
    """Seconds the server asked to wait (rate limits)."""
    problems: List[Problem]
    """Every problem of a rejected request."""
    job: Optional[Job]
    """The job, for failed jobs and timed-out waits."""

    def __init__(self, message: str, *, code: str = "error", kind: str = "", status: Optional[int] = None,
                 request_id: Optional[str] = None, idempotency_key: Optional[str] = None,
                 retry_after: Optional[float] = None, problems: Optional[List[Problem]] = None,
                 job: Optional[Job] = None) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind
        self.message = message
        self.status = status
        self.request_id = request_id
        self.idempotency_key = idempotency_key
        self.retry_after = retry_after
        self.problems = problems or []
        self.job = job

    @classmethod
    def _from_payload(cls, payload: str) -> "RemoveBGVideoError":
        """Builds the exception from the native layer's JSON description."""
        data: Any = json.loads(payload)
        return cls(
            data["message"],
            code=data["code"],
            kind=data["kind"],
            status=data.get("status"),
            request_id=data.get("request_id"),
            idempotency_key=data.get("idempotency_key"),
            retry_after=data["retry_after_ms"] / 1000 if data.get("retry_after_ms") is not None else None,
            problems=[Problem.from_dict(p) for p in data.get("problems") or []],
            job=Job.from_dict(data["job"]) if data.get("job") else None,
        )

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.status is not None:
            text += f" (HTTP {self.status})"
        if self.request_id:
            text += f" [request_id {self.request_id}]"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, request_id={self.request_id!r})"


class AuthenticationError(RemoveBGVideoError):
    """The API key is missing or not valid (401, 403)."""


class InsufficientCreditsError(RemoveBGVideoError):
    """Not enough credits (402); never retried."""


class NotFoundError(RemoveBGVideoError):
    """No such job for this key (404)."""


class RateLimitError(RemoveBGVideoError):
    """Too many requests (429); ``retry_after`` says how long to wait."""


class InvalidRequestError(RemoveBGVideoError):
    """The server rejected the request (400 or another 4xx)."""


class ConflictError(RemoveBGVideoError):
    """An Idempotency-Key was reused with a different request (409)."""


class ServerError(RemoveBGVideoError):
    """The server failed (5xx) and retries did not help."""


class APIConnectionError(RemoveBGVideoError, ConnectionError):
    """The connection failed, broke or timed out."""


class OutcomeUnknownError(RemoveBGVideoError):
    """A POST was sent and got no answer; it was not re-sent. Repeat it with ``idempotency_key``."""


class ValidationError(RemoveBGVideoError, ValueError):
    """The request was rejected before sending; ``errors`` lists every problem."""

    @property
    def errors(self) -> List[Problem]:
        """Every problem: ``path`` (JSON Pointer), ``code`` and ``message``."""
        return self.problems


class JobFailedError(RemoveBGVideoError):
    """The job ended in ``failed``; ``job`` is the failed job."""


class WaitTimeoutError(RemoveBGVideoError, TimeoutError):
    """A wait reached its deadline; ``job`` is the last job seen."""


class CancelledError(RemoveBGVideoError):
    """The call was cancelled."""


class DownloadError(RemoveBGVideoError):
    """A download could not be completed intact (nothing half-written is left)."""


class WebhookVerificationError(RemoveBGVideoError):
    """A webhook delivery's headers, signature or timestamp did not check out."""


class UnexpectedResponseError(RemoveBGVideoError):
    """The server answered something the API does not document."""


class SDKBugError(RemoveBGVideoError):
    """The SDK hit a bug of its own (a Rust panic) in this call; nothing else is affected.
    Please report it with the message."""
