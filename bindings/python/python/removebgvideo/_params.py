"""Keyword arguments of the client, generated from the Rust types of the bridge
(`removebgvideo::bridge`) by `cargo xtask codegen`; do not edit. Durations are in seconds.

Each operation's ``TypedDict`` holds the keyword arguments of its ``Client`` method
(``client.create_job(**params)``); the per-call options (``CallOptions``) come on top.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Optional, TypedDict, Union

if TYPE_CHECKING:
    from ._background import BackgroundLike
    from ._client import PollPolicy, RetryPolicy
    from ._models import Job

__all__ = ["ClientSettings", "CallOptions", "HealthParams", "UploadParams", "CreateJobParams", "StartJobParams", "GetJobParams", "ListJobsParams", "UsageSummaryParams", "UsageEventsParams", "LegacyDownloadParams", "WaitParams", "DownloadParams", "RunParams"]

PathLike = Union[str, "os.PathLike[str]"]


class ClientSettings(TypedDict, total=False):
    """Keyword arguments of ``Client(...)``: Client settings; absent ones take the SDK's defaults (2 retries, 60 s per request, 30 minutes per wait)."""

    #: The API key; without one, `REMOVEBGVIDEO_API_KEY` is read.
    api_key: Optional[str]
    #: Default `https://api.removebgvideo.com`; plain http only to loopback hosts.
    base_url: Optional[str]
    #: The limit of connection setup (default 5 s). In seconds.
    connect_timeout: Optional[float]
    #: Headers sent with every request.
    headers: Optional[Dict[str, str]]
    #: Whether the server honours Idempotency-Key (detected by default).
    idempotency: Optional[str]
    #: Retries of each call (default 2).
    max_retries: Optional[int]
    #: The polling schedule of waits.
    poll_policy: Optional[PollPolicy]
    #: How each request is retried.
    retry_policy: Optional[RetryPolicy]
    #: The limit of one API call (default 60 s). In seconds.
    timeout: Optional[float]
    #: The idle limit of uploads and downloads (default 60 s). In seconds.
    transfer_idle_timeout: Optional[float]
    #: Text appended to the User-Agent (your application's name).
    user_agent: Optional[str]
    #: The default limit of waits and runs (default 30 minutes). In seconds.
    wait_timeout: Optional[float]


class CallOptions(TypedDict, total=False):
    """Per-call options: Options every call takes; all optional."""

    #: Extra headers for this call.
    headers: Optional[Dict[str, str]]
    #: The Idempotency-Key of a POST (a new one when absent); repeat a call whose outcome is unknown with the key its error carries.
    idempotency_key: Optional[str]
    #: Retries of this call, instead of the client's setting.
    max_retries: Optional[int]
    #: The limit of this call, instead of the client's. In seconds.
    timeout: Optional[float]


class HealthParams(TypedDict, total=False):
    """Keyword arguments of ``Client.health``: `GET /health`."""


class _UploadParamsRequired(TypedDict):
    #: The file: mp4, mov, webm or avi, at most 500 MB.
    path: PathLike


class UploadParams(_UploadParamsRequired, total=False):
    """Keyword arguments of ``Client.upload``: Uploads a video file, streamed from disk."""


class _CreateJobParamsRequired(TypedDict):
    #: The input video: an absolute http(s) URL, for example the one an upload returned.
    video_url: str


class CreateJobParams(_CreateJobParamsRequired, total=False):
    """Keyword arguments of ``Client.create_job``: Creates a job from a video URL."""

    #: Start processing at once (the default); false makes a draft that waits for start.
    auto_start: bool
    #: What replaces the background; transparent when absent.
    background: Optional[BackgroundLike]
    #: Your own data, returned as given.
    metadata: Optional[Dict[str, Any]]
    #: The model; `original` when absent.
    model: Optional[str]
    #: The output format; `webm` when absent.
    output_format: Optional[str]
    #: What to keep, in words; only the `pro` model uses it.
    text_prompt: Optional[str]
    #: URL that receives `job.started`, `job.completed` and `job.failed`.
    webhook_url: Optional[str]


class _StartJobParamsRequired(TypedDict):
    #: The job id.
    job_id: str


class StartJobParams(_StartJobParamsRequired, total=False):
    """Keyword arguments of ``Client.start_job``: Starts a draft job, or restarts a failed one."""

    #: Change the background.
    background: Optional[BackgroundLike]
    #: Placement of the foreground on an output canvas.
    composition: Optional[Dict[str, Any]]
    #: Change the model for this run.
    model: Optional[str]
    #: Change the output format.
    output_format: Optional[str]
    #: Process only this many seconds, as a preview (above 0, at most 60).
    preview_duration: Optional[float]
    #: What to keep, in words; only the `pro` model uses it.
    text_prompt: Optional[str]
    #: Change the webhook URL.
    webhook_url: Optional[str]


class _GetJobParamsRequired(TypedDict):
    #: The job id.
    job_id: str


class GetJobParams(_GetJobParamsRequired, total=False):
    """Keyword arguments of ``Client.get_job``: Reads a job."""


class ListJobsParams(TypedDict, total=False):
    """Keyword arguments of ``Client.list_jobs``: Lists the key's jobs, newest first."""

    #: Page size, 1 to 100.
    limit: Optional[int]
    #: How many jobs to skip.
    offset: Optional[int]
    #: Only jobs in this status.
    status: Optional[str]


class UsageSummaryParams(TypedDict, total=False):
    """Keyword arguments of ``Client.usage_summary``: Usage totals."""

    #: How many days back, 1 to 90.
    days: Optional[int]


class UsageEventsParams(TypedDict, total=False):
    """Keyword arguments of ``Client.usage_events``: Recent usage events."""

    #: How many events, 1 to 100.
    limit: Optional[int]


class _LegacyDownloadParamsRequired(TypedDict):
    #: The job id.
    job_id: str


class LegacyDownloadParams(_LegacyDownloadParamsRequired, total=False):
    """Keyword arguments of ``Client.legacy_download``: The legacy download route: the output URL of a completed job."""


class _WaitParamsRequired(TypedDict):
    #: The job id.
    job_id: str


class WaitParams(_WaitParamsRequired, total=False):
    """Keyword arguments of ``Client.wait``: Waits until the job completes, fails or the limit passes."""

    #: The polling schedule, instead of the client's.
    poll_policy: Optional[PollPolicy]
    #: Give up after this long (a wait timeout error); the client's default (30 minutes) when absent. In seconds.
    timeout: Optional[float]
    #: No limit: only a terminal status, an error or cancellation ends the wait.
    unbounded: bool


class _DownloadParamsRequired(TypedDict):
    #: Where to write the output.
    path: PathLike


class DownloadParams(_DownloadParamsRequired, total=False):
    """Keyword arguments of ``Client.download``: Downloads a completed job's output: resumable, length-checked, atomic."""

    #: The job, as read (or give its id).
    job: Optional[Job]
    #: The job id (or give `job`).
    job_id: Optional[str]
    #: Replace an existing file (default: refuse, so nothing is lost by accident).
    overwrite: bool


class RunParams(TypedDict, total=False):
    """Keyword arguments of ``Client.run``: The whole flow under one deadline: upload or URL, create, wait, download."""

    #: What replaces the background; transparent when absent.
    background: Optional[BackgroundLike]
    #: A local video file, uploaded first (or give the video's URL).
    file: Optional[PathLike]
    #: Your own data, returned as given.
    metadata: Optional[Dict[str, Any]]
    #: The model; `original` when absent.
    model: Optional[str]
    #: Where to write the output; no download when absent.
    output: Optional[PathLike]
    #: The output format; `webm` when absent.
    output_format: Optional[str]
    #: Replace an existing output file.
    overwrite: bool
    #: The polling schedule, instead of the client's.
    poll_policy: Optional[PollPolicy]
    #: What to keep, in words; only the `pro` model uses it.
    text_prompt: Optional[str]
    #: The limit of the whole flow (a wait timeout error); the client's default (30 minutes) when absent. In seconds.
    timeout: Optional[float]
    #: No limit on the whole flow.
    unbounded: bool
    #: The input video's URL (or give `file`).
    video_url: Optional[str]
    #: URL that receives the job's events.
    webhook_url: Optional[str]
