"""RemoveBGVideo: background removal for videos, with retries, idempotency, waits and
resumable downloads built in.

>>> import removebgvideo
>>> client = removebgvideo.Client()  # the key from REMOVEBGVIDEO_API_KEY
>>> result = client.run("https://example.com/clip.mp4", output="clip.webm")  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import json
from typing import TYPE_CHECKING, Any, Dict, List, Mapping

from . import _native

# The engine's threads call into Python (futures, progress, logs): before the interpreter
# finalizes, they stop, and the calls already inside finish (attaching later would abort).
atexit.register(_native.close_for_exit)
from ._background import Background, BackgroundLike
from ._batch import (
    Batch,
    BatchEvent,
    BatchItemResult,
    BatchOutput,
    BatchProgress,
    BatchReport,
    BatchStatus,
    BatchSummary,
    check_manifest,
)
from ._client import CancelToken, Client, Download, PollPolicy, ProgressCallback, RetryPolicy, RunResult, WaitResult
from ._errors import (
    APIConnectionError,
    AuthenticationError,
    CancelledError,
    ConflictError,
    DownloadError,
    InsufficientCreditsError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    RemoveBGVideoError,
    SDKBugError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from ._models import Event, Health, Job, JobAccepted, JobList, LegacyDownload, Problem, UploadResult, UsageEvent, UsageEvents, UsageSummary
from ._params import (
    CallOptions,
    ClientSettings,
    CreateJobParams,
    DownloadParams,
    GetJobParams,
    HealthParams,
    LegacyDownloadParams,
    ListJobsParams,
    RunParams,
    StartJobParams,
    UploadParams,
    UsageEventsParams,
    UsageSummaryParams,
    WaitParams,
)
from ._webhooks import VerifiedWebhook, WebhookDelivery, WebhookReceiver, verify_webhook

if TYPE_CHECKING:
    from ._aio import AsyncClient

__version__: str = _native.__version__

__all__ = [
    "Client", "AsyncClient", "CancelToken", "PollPolicy", "RetryPolicy", "Background", "BackgroundLike",
    "ProgressCallback", "Job", "JobAccepted", "JobList", "UploadResult", "UsageSummary", "UsageEvent", "UsageEvents",
    "LegacyDownload", "Health", "Problem", "Event", "Download", "RunResult", "WaitResult", "VerifiedWebhook", "WebhookDelivery", "WebhookReceiver", "verify_webhook",
    "estimate_credits", "validate_request", "RemoveBGVideoError", "AuthenticationError", "InsufficientCreditsError",
    "NotFoundError", "RateLimitError", "InvalidRequestError", "ConflictError", "ServerError", "APIConnectionError",
    "OutcomeUnknownError", "ValidationError", "JobFailedError", "WaitTimeoutError", "CancelledError", "DownloadError",
    "WebhookVerificationError", "UnexpectedResponseError", "SDKBugError", "__version__",
    # The keyword arguments of each method, as TypedDicts generated from the Rust types.
    "ClientSettings", "CallOptions", "HealthParams", "UploadParams", "CreateJobParams", "StartJobParams",
    "GetJobParams", "ListJobsParams", "UsageSummaryParams", "UsageEventsParams", "LegacyDownloadParams",
    "WaitParams", "DownloadParams", "RunParams",
    # Batches: a manifest or items, resumable, every transition in a ledger.
    "Batch", "BatchItemResult", "BatchOutput", "BatchProgress", "BatchSummary", "BatchStatus", "BatchEvent",
    "BatchReport", "check_manifest",
]


def __getattr__(name: str) -> Any:
    # asyncio costs tens of milliseconds to import: load the async client only when used.
    if name == "AsyncClient":
        from ._aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module 'removebgvideo' has no attribute {name!r}")


def estimate_credits(model: str, duration_seconds: float) -> int:
    """Credits for ``duration_seconds`` of video with ``model``, at the published rates
    (billed per second, rounded up)."""
    return int(_native.estimate_credits(model, float(duration_seconds)))


def validate_request(type_name: str, body: Mapping[str, Any]) -> List[Problem]:
    """Every problem of a request body by the SDK's rules (the same as Rust's and Node's):
    ``type_name`` is ``CreateJobRequest``, ``StartJobRequest``, ``ListJobsQuery``,
    ``UsageSummaryQuery``, ``UsageEventsQuery`` or ``UploadFile``. Warnings are included."""
    problems: List[Dict[str, Any]] = json.loads(_native.validate_request(type_name, json.dumps(dict(body))))
    return [Problem.from_dict(p) for p in problems]

