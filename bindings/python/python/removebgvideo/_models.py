"""Result types of the RemoveBGVideo API, generated from the JSON Schema by `cargo xtask codegen`.

Do not edit: change the Rust types in removebgvideo-core and regenerate. Unknown fields
in answers are ignored; unknown enum values are kept as plain strings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

__all__ = ["Problem", "Job", "JobAccepted", "JobList", "UploadResult", "UsageSummary", "UsageEvent", "UsageEvents", "LegacyDownload", "Health", "Event"]


class _Model:
    """Shared behaviour: build from a dict, convert back to one."""

    _nested: Dict[str, str] = {}
    _renamed: Dict[str, str] = {}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Any:
        """Builds an instance from an API answer, ignoring unknown fields."""
        known = cls.__dict__.get("_known")
        if known is None:  # once per class: every answer of a kind has the same fields
            known = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            setattr(cls, "_known", known)
        values: Dict[str, Any] = {}
        for key, value in data.items():
            key = cls._renamed.get(key, key)
            if key not in known:
                continue
            nested_name = cls._nested.get(key)
            nested = globals().get(nested_name) if nested_name else None
            if nested is not None and isinstance(value, dict):
                value = nested.from_dict(value)
            elif nested is not None and isinstance(value, list):
                value = [nested.from_dict(v) if isinstance(v, dict) else v for v in value]
            values[key] = value
        return cls(**values)

    def to_dict(self) -> Dict[str, Any]:
        """The value as plain dicts and lists, as the API writes it."""
        wire = {python: wire for wire, python in self._renamed.items()}
        return {wire.get(k, k): v for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]


@dataclasses.dataclass
class Problem(_Model):
    """One thing wrong with a request."""

    #: Stable code of the rule that was broken.
    code: str
    #: A sentence that names the field and the rule.
    message: str
    #: JSON Pointer (RFC 6901) to the field, e.g. `/bg_color/0`; empty for the whole request.
    path: str
    #: `error` blocks the request; `warning` is logged and the request is sent.
    severity: str


@dataclasses.dataclass
class Job(_Model):
    """A job, as `GET /v1/jobs/{job_id}` returns it. Unknown fields are ignored."""

    #: The job id (some pages call it `job_id`; both are read).
    id: str
    #: The state of the job.
    status: str
    #: The credit charge status.
    billing_status: Optional[str] = None
    #: When the job was created (UTC, ISO 8601).
    created_at: Optional[str] = None
    #: Credits charged for this job (sent by the sandbox; the public API may omit it).
    credits_used: Optional[float] = None
    #: The duration of the input video in seconds, once known.
    duration_seconds: Optional[float] = None
    #: Why the job failed (a string; an object with a `message` is read as that message).
    error: Optional[str] = None
    #: The model (sent by the sandbox; the public API may omit it).
    model: Optional[str] = None
    #: The output format (sent by the sandbox; the public API may omit it).
    output_format: Optional[str] = None
    #: The result, once completed. Time-bound: fetch the job again when it has expired.
    output_url: Optional[str] = None
    #: Processing progress, 0 to 100.
    progress: Optional[float] = None
    #: Per-event webhook delivery state (sent or failed); the shape is not documented, so it is kept as the server sent it.
    webhook_events: Optional[Any] = None
    #: The webhook receiving this job's events.
    webhook_url: Optional[str] = None
    #: The request id of the response this was read from.
    request_id: Optional[str] = None


@dataclasses.dataclass
class JobAccepted(_Model):
    """The answer to create and start: the job id and its status."""

    #: The job id.
    id: str
    #: The status after the call (`created` for a draft, `processing` or `pending` once started).
    status: str
    #: A sentence such as "Job started".
    message: Optional[str] = None
    #: Always true on success.
    success: Optional[bool] = None
    #: The request id of the response this was read from.
    request_id: Optional[str] = None


@dataclasses.dataclass
class JobList(_Model):
    """A page of jobs from `GET /v1/jobs`, newest first."""

    _nested = {"jobs": "Job"}

    #: The jobs of this page (also read from `data`).
    jobs: List[Job]
    #: The page size used.
    limit: Optional[int] = None
    #: The offset used.
    offset: Optional[int] = None
    #: How many jobs match in all, when the server says.
    total: Optional[int] = None


@dataclasses.dataclass
class UploadResult(_Model):
    """The answer to `POST /v1/uploads`."""

    #: The id of the stored video.
    video_id: str
    #: The URL to create a job from.
    video_url: str
    #: The stored file name.
    filename: Optional[str] = None
    #: The stored size in bytes.
    size: Optional[int] = None
    #: Always true on success.
    success: Optional[bool] = None


@dataclasses.dataclass
class UsageSummary(_Model):
    """The answer to `GET /v1/usage/summary`."""

    #: Jobs completed in the window.
    completed_jobs: Optional[int] = None
    #: Credits left on the key (sent by the sandbox; the public API may omit it).
    credits_remaining: Optional[float] = None
    #: Credits charged in the window.
    credits_used: Optional[float] = None
    #: The window, in days, when the server says.
    days: Optional[int] = None
    #: Jobs failed in the window (sent by the sandbox; the public API may omit it).
    failed_jobs: Optional[int] = None
    #: Jobs created in the window.
    total_jobs: Optional[int] = None


@dataclasses.dataclass
class UsageEvent(_Model):
    """One entry of `GET /v1/usage/events`. The fields are not documented: all are optional."""

    #: When it happened (UTC, ISO 8601).
    created_at: Optional[str] = None
    #: Credits charged (positive) or refunded (negative).
    credits: Optional[float] = None
    #: What happened, for example `job.charged` (also read from `type`).
    event: Optional[str] = None
    #: The event id.
    id: Optional[str] = None
    #: The job concerned.
    job_id: Optional[str] = None


@dataclasses.dataclass
class UsageEvents(_Model):
    """The answer to `GET /v1/usage/events`."""

    _nested = {"events": "UsageEvent"}

    #: Newest first (also read from `data`).
    events: List[UsageEvent]


@dataclasses.dataclass
class LegacyDownload(_Model):
    """The answer to the legacy `GET /api/download/{job_id}`."""

    #: Where to fetch the output (time-bound).
    download_url: str
    #: The output format.
    output_format: str
    #: Always true on success.
    success: Optional[bool] = None


@dataclasses.dataclass
class Health(_Model):
    """The answer to `GET /health`."""

    #: `ok` when healthy.
    status: Optional[str] = None


@dataclasses.dataclass
class Event(_Model):
    """Something worth telling the caller while a call, a wait, an upload or a download runs."""

    _renamed = {"from": "from_"}

    type: str
    #: The status before; absent on the first observation.
    from_: Optional[str] = None
    #: The job.
    job_id: Optional[str] = None
    #: The request id of the response that showed it.
    request_id: Optional[str] = None
    #: The status now.
    to: Optional[str] = None
    #: What the move means (`illegal` moves are reported, not accepted).
    verdict: Optional[str] = None
    #: 0 to 100.
    progress: Optional[float] = None
    #: Which retry this is (1 for the first).
    attempt: Optional[int] = None
    #: The pause before it, in milliseconds.
    delay_ms: Optional[int] = None
    #: Retries allowed.
    max_retries: Optional[int] = None
    #: The operation, as named in the OpenAPI document (`create_job`, `get_job`, ...).
    operation: Optional[str] = None
    #: Why: `HTTP 503`, `connection failed`, `timed out`, ...
    reason: Optional[str] = None
    #: Sent.
    bytes_done: Optional[int] = None
    #: The file size.
    bytes_total: Optional[int] = None
