"""``Client``: every endpoint of the RemoveBGVideo API, on the Rust client.

This module only converts: keyword arguments to the native call's JSON, answers to typed
results. Retries, backoff, idempotency, validation, polling and downloads are Rust's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

from . import _native
from ._background import Background, BackgroundLike
from ._models import Event, Health, Job, JobAccepted, JobList, LegacyDownload, UploadResult, UsageEvents, UsageSummary, _Model
from ._units import to_ms as _ms
from ._webhooks import HeadersLike, WebhookDelivery, WebhookReceiver, _delivery, _header_pairs

__all__ = ["Client", "CancelToken", "Download", "RunResult", "WaitResult", "PollPolicy", "RetryPolicy", "ProgressCallback"]

T = TypeVar("T")

#: Receives progress events: status changes, progress, retries, bytes.
ProgressCallback = Callable[[Event], None]
PathLike = Union[str, "os.PathLike[str]"]


class CancelToken:
    """Cancels calls from another thread (or from asyncio): they stop at their next pause."""

    __slots__ = ("_native",)

    def __init__(self) -> None:
        self._native = _native.NativeCancel()

    def cancel(self) -> None:
        """Cancel every call using this token."""
        self._native.cancel()

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel`` was called."""
        return self._native.is_cancelled()


@dataclasses.dataclass
class PollPolicy(_Model):
    """The polling schedule of waits, in seconds. Fields left as ``None`` keep the SDK's
    defaults (1 s, x1.5, cap 10 s, +-20 % jitter, at least 0.5 s, hints up to 60 s; once the
    job's progress projects its completion, polls aim just past it, at most 30 s apart)."""

    initial_interval: Optional[float] = None
    factor: Optional[float] = None
    max_interval: Optional[float] = None
    jitter: Optional[float] = None
    min_interval: Optional[float] = None
    max_hint: Optional[float] = None
    #: Aim polls at the completion the job's progress projects (default True).
    progress_eta: Optional[bool] = None
    #: The longest wait towards a projected completion (default 30 s).
    max_eta_interval: Optional[float] = None
    #: How long after the projected completion a poll lands (default 0.1 s).
    eta_margin: Optional[float] = None

    def _wire(self) -> Dict[str, Any]:
        return _policy_wire(self, unitless={"factor", "jitter", "progress_eta"})


@dataclasses.dataclass
class RetryPolicy(_Model):
    """How each request is retried, in seconds. Fields left as ``None`` keep the SDK's
    defaults (2 retries, 0.5 s doubling to 8 s, the documented 429 table, hints up to 60 s)."""

    max_retries: Optional[int] = None
    base_delay: Optional[float] = None
    max_delay: Optional[float] = None
    rate_limit_base_delay: Optional[float] = None
    rate_limit_max_delay: Optional[float] = None
    max_retry_after: Optional[float] = None

    def _wire(self) -> Dict[str, Any]:
        return _policy_wire(self, unitless={"max_retries"})


def _policy_wire(policy: Any, unitless: "set[str]") -> Dict[str, Any]:
    """The fields the caller set; durations in milliseconds (``initial_interval_ms``), as the
    native side reads them."""
    return {(k if k in unitless else k + "_ms"): (v if k in unitless else _ms(v))
            for k, v in dataclasses.asdict(policy).items() if v is not None}


@dataclasses.dataclass
class Download(_Model):
    """A finished download."""

    #: Where the output is.
    path: str
    #: Its size in bytes.
    bytes: int
    #: The job, as last read.
    job: Job
    _nested = {"job": "Job"}


@dataclasses.dataclass
class RunResult(_Model):
    """What ``run`` produced."""

    #: The completed job.
    job: Job
    #: The upload, when the source was a file.
    upload: Optional[UploadResult] = None
    #: The downloaded output, when ``output`` was given.
    output: Optional[Download] = None

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RunResult":
        return cls(
            job=Job.from_dict(data["job"]),
            upload=UploadResult.from_dict(data["upload"]) if data.get("upload") else None,
            output=_download(data["output"]) if data.get("output") else None,
        )


@dataclasses.dataclass
class WaitResult:
    """How one job's wait ended, as ``as_completed`` yields it: ``job`` when it completed or
    failed (a failed job has ``status == "failed"`` and ``error`` set), ``error`` when the wait
    ended otherwise (``WaitTimeoutError``, ``NotFoundError``, ...; ``JobFailedError`` too, with
    its job)."""

    #: The job waited for.
    job_id: str
    #: The job as last read, when one was.
    job: Optional[Job] = None
    #: What ended the wait, unless the job completed.
    error: Optional[Exception] = None

    @property
    def ok(self) -> bool:
        """Whether the job completed."""
        return self.error is None

    def result(self) -> Job:
        """The completed job; raises what ended the wait otherwise."""
        if self.error is not None:
            raise self.error
        assert self.job is not None
        return self.job

    @classmethod
    def _delivered(cls, job_id: str, kind: str, value: Any) -> "WaitResult":
        if kind == "result":
            return cls(job_id=job_id, job=Job.from_dict(json.loads(value)))
        return cls(job_id=job_id, job=getattr(value, "job", None), error=value)


def _download(data: Dict[str, Any]) -> Download:
    return Download(path=data["path"], bytes=data["bytes"], job=Job.from_dict(data["job"]))


def _background(value: Optional[BackgroundLike]) -> Any:
    if value is None:
        return None
    if isinstance(value, Background):
        value = value.spec
    return list(value) if isinstance(value, tuple) else value


def _compact(values: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class Client:
    """The RemoveBGVideo client.

    Safe to share between threads, usable as a context manager, and picklable (its settings
    travel, so it ships to multiprocessing, Ray or Dask workers). Every blocking call releases
    the GIL. Settings left as ``None`` take the SDK's defaults: the key from
    ``REMOVEBGVIDEO_API_KEY``, ``https://api.removebgvideo.com``, 2 retries, 60 s per request,
    30 minutes per wait.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        max_retries: Optional[int] = None,
        timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        transfer_idle_timeout: Optional[float] = None,
        wait_timeout: Optional[float] = None,
        user_agent: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        idempotency: Optional[str] = None,
        poll_policy: Optional[PollPolicy] = None,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        self._settings: Dict[str, Any] = dict(
            api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout,
            connect_timeout=connect_timeout, transfer_idle_timeout=transfer_idle_timeout,
            wait_timeout=wait_timeout, user_agent=user_agent, headers=dict(headers or {}),
            idempotency=idempotency, poll_policy=poll_policy, retry_policy=retry_policy,
        )
        durations = ("timeout", "connect_timeout", "transfer_idle_timeout", "wait_timeout")
        wire = _compact({(k + "_ms" if k in durations else k): (_ms(v) if k in durations else v)
                         for k, v in self._settings.items() if k not in ("poll_policy", "retry_policy", "headers")})
        wire["headers"] = sorted(self._settings["headers"].items())
        if poll_policy is not None:
            wire["poll_policy"] = poll_policy._wire()
        if retry_policy is not None:
            wire["retry_policy"] = retry_policy._wire()
        self._native = _native.NativeClient(json.dumps(wire))

    def __reduce__(self) -> Tuple[Any, ...]:
        settings = dict(self._settings)
        return (_restore, (settings,))

    def __repr__(self) -> str:
        described = json.loads(self._native.describe())
        return f"Client(base_url={described['base_url']!r}, max_retries={described['max_retries']}, api_key='[redacted]')"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release explicitly (connections close with the client); for symmetry."""

    def use_webhooks(self, url: str, *, secret: str, tolerance: Optional[float] = None,
                     fallback: Optional[float] = None) -> None:
        """Sends this client's jobs' events to ``url`` (your route, or a tunnel's public URL) and
        makes its waits hybrid: a wait ends on a verified delivery, confirmed by one read of the
        job, and polls only every ``fallback`` seconds (30 s) once a delivery came. Hand each
        delivery to ``handle_webhook``. ``tolerance``: how far a delivery's signing time may be
        from now, in seconds (300 s)."""
        self._native.use_webhooks(json.dumps(_compact(dict(url=url, secret=secret, tolerance_ms=_ms(tolerance),
                                                           fallback_ms=_ms(fallback)))))

    def handle_webhook(self, body: bytes, headers: "HeadersLike") -> "WebhookDelivery":
        """Takes one delivery from any framework (WSGI or ASGI): the raw ``body`` bytes exactly as
        received, and its headers. Verified, dropped if a duplicate, else handed to the waits of
        its job; returns the typed event. Answer 2xx when it returns, 400 when it raises
        ``WebhookVerificationError`` (forged, stale, or not an event). No I/O: safe to call from
        an ``async def`` route."""
        pairs = _header_pairs(headers)
        return _delivery(json.loads(self._native.handle_webhook(bytes(body), json.dumps(pairs))))

    def listen_for_webhooks(self, *, secret: str, host: Optional[str] = None, port: Optional[int] = None,
                            path: Optional[str] = None, public_url: Optional[str] = None,
                            tolerance: Optional[float] = None, fallback: Optional[float] = None) -> "WebhookReceiver":
        """Starts a receiver of the SDK's own (``127.0.0.1`` on a port the OS picks unless told)
        and sends this client's jobs' events to it, or to ``public_url`` (a tunnel or gateway
        forwarding to it); waits become hybrid as with ``use_webhooks``."""
        wire = _compact(dict(secret=secret, host=host, port=port, path=path, public_url=public_url,
                             tolerance_ms=_ms(tolerance), fallback_ms=_ms(fallback)))
        return WebhookReceiver(self._native.listen_for_webhooks(json.dumps(wire)))

    def _call(self, operation: str, args: Dict[str, Any], convert: Callable[[Any], T], *,
              on_progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
              **options: Any) -> T:
        return self._execute((operation, args, on_progress, options), cancel, convert)

    def _execute(self, request: "_Request", cancel: Optional[CancelToken], convert: Callable[[Any], T]) -> T:
        """Runs a call on this thread, the GIL released (``AsyncClient`` hands it to the engine)."""
        operation_json, options_json, callback = _wire(*request)
        result = self._native.call(operation_json, options_json, callback,
                                   cancel._native if cancel is not None else None)
        return convert(json.loads(result))

    def health(self, *, headers: Optional[Dict[str, str]] = None, cancel: Optional[CancelToken] = None) -> Health:
        """``GET /health``: whether the API answers."""
        return self._call("health", {}, Health.from_dict, cancel=cancel, headers=headers)

    def upload(self, path: PathLike, *, idempotency_key: Optional[str] = None, on_progress: Optional[ProgressCallback] = None,
               max_retries: Optional[int] = None, headers: Optional[Dict[str, str]] = None,
               cancel: Optional[CancelToken] = None) -> UploadResult:
        """Uploads a video file (mp4, mov, webm or avi, at most 500 MB), streamed from disk."""
        return self._call("upload", {"path": os.fspath(path)}, UploadResult.from_dict, on_progress=on_progress,
                          cancel=cancel, idempotency_key=idempotency_key, max_retries=max_retries, headers=headers)

    def create_job(self, video_url: str, *, model: Optional[str] = None, output_format: Optional[str] = None,
                   background: Optional[BackgroundLike] = None, text_prompt: Optional[str] = None,
                   webhook_url: Optional[str] = None, auto_start: Optional[bool] = None,
                   metadata: Optional[Dict[str, Any]] = None, idempotency_key: Optional[str] = None,
                   max_retries: Optional[int] = None, timeout: Optional[float] = None,
                   headers: Optional[Dict[str, str]] = None, cancel: Optional[CancelToken] = None) -> JobAccepted:
        """Creates a job from a video URL; it starts at once unless ``auto_start=False``."""
        args = dict(video_url=video_url, model=model, output_format=output_format, background=_background(background),
                    text_prompt=text_prompt, webhook_url=webhook_url, auto_start=auto_start, metadata=metadata)
        return self._call("create_job", args, JobAccepted.from_dict, cancel=cancel, idempotency_key=idempotency_key,
                          max_retries=max_retries, timeout=timeout, headers=headers)

    def start_job(self, job_id: str, *, model: Optional[str] = None, output_format: Optional[str] = None,
                  background: Optional[BackgroundLike] = None, text_prompt: Optional[str] = None,
                  webhook_url: Optional[str] = None, composition: Optional[Dict[str, Any]] = None,
                  preview_duration: Optional[float] = None, idempotency_key: Optional[str] = None,
                  max_retries: Optional[int] = None, timeout: Optional[float] = None,
                  headers: Optional[Dict[str, str]] = None, cancel: Optional[CancelToken] = None) -> JobAccepted:
        """Starts a draft job, or restarts a failed one."""
        args = dict(job_id=job_id, model=model, output_format=output_format, background=_background(background),
                    text_prompt=text_prompt, webhook_url=webhook_url, composition=composition, preview_duration=preview_duration)
        return self._call("start_job", args, JobAccepted.from_dict, cancel=cancel, idempotency_key=idempotency_key,
                          max_retries=max_retries, timeout=timeout, headers=headers)

    def get_job(self, job_id: str, *, max_retries: Optional[int] = None, timeout: Optional[float] = None,
                headers: Optional[Dict[str, str]] = None, cancel: Optional[CancelToken] = None) -> Job:
        """Reads a job."""
        return self._call("get_job", {"job_id": job_id}, Job.from_dict, cancel=cancel, max_retries=max_retries,
                          timeout=timeout, headers=headers)

    def list_jobs(self, *, limit: Optional[int] = None, offset: Optional[int] = None, status: Optional[str] = None,
                  headers: Optional[Dict[str, str]] = None, cancel: Optional[CancelToken] = None) -> JobList:
        """Lists the key's jobs, newest first."""
        return self._call("list_jobs", {"limit": limit, "offset": offset, "status": status}, JobList.from_dict,
                          cancel=cancel, headers=headers)

    def usage_summary(self, *, days: Optional[int] = None, headers: Optional[Dict[str, str]] = None,
                      cancel: Optional[CancelToken] = None) -> UsageSummary:
        """Usage totals over the last ``days`` (1 to 90)."""
        return self._call("usage_summary", {"days": days}, UsageSummary.from_dict, cancel=cancel, headers=headers)

    def usage_events(self, *, limit: Optional[int] = None, headers: Optional[Dict[str, str]] = None,
                     cancel: Optional[CancelToken] = None) -> UsageEvents:
        """Recent usage events (``limit`` 1 to 100)."""
        return self._call("usage_events", {"limit": limit}, UsageEvents.from_dict, cancel=cancel, headers=headers)

    def legacy_download(self, job_id: str, *, headers: Optional[Dict[str, str]] = None,
                        cancel: Optional[CancelToken] = None) -> LegacyDownload:
        """The legacy download route: the output URL of a completed job."""
        return self._call("legacy_download", {"job_id": job_id}, LegacyDownload.from_dict, cancel=cancel, headers=headers)

    def wait(self, job_id: str, *, timeout: Optional[float] = None, unbounded: bool = False,
             poll_policy: Optional[PollPolicy] = None, on_progress: Optional[ProgressCallback] = None,
             headers: Optional[Dict[str, str]] = None, cancel: Optional[CancelToken] = None) -> Job:
        """Waits until the job completes (returns it), fails (``JobFailedError``) or ``timeout``
        seconds pass (``WaitTimeoutError``; 30 minutes by default). Ctrl-C interrupts it."""
        args = _wait_args(job_id, timeout, unbounded, poll_policy)
        return self._call("wait", args, Job.from_dict, on_progress=on_progress, cancel=cancel, headers=headers)

    def as_completed(self, job_ids: Iterable[str], *, timeout: Optional[float] = None, unbounded: bool = False,
                     poll_policy: Optional[PollPolicy] = None,
                     headers: Optional[Dict[str, str]] = None) -> Iterator[WaitResult]:
        """Waits for every job at once and yields a ``WaitResult`` for each as it ends, first
        ended first. The waits run on the client's engine (a few threads, whatever the number
        of jobs), each as ``wait`` would; leaving the loop early cancels the rest."""
        results: "queue.SimpleQueue[WaitResult]" = queue.SimpleQueue()
        ids = list(job_ids)
        token = self._submit_waits(ids, lambda job_id: (lambda kind, value: results.put(
            WaitResult._delivered(job_id, kind, value))), timeout, unbounded, poll_policy, headers)
        try:
            for _ in ids:
                yield results.get()
        finally:
            token.cancel()

    def _submit_waits(self, job_ids: List[str], deliverer: Callable[[str], Callable[[str, Any], None]],
                      timeout: Optional[float], unbounded: bool, poll_policy: Optional[PollPolicy],
                      headers: Optional[Dict[str, str]]) -> CancelToken:
        """Hands a wait for each job to the engine; ``deliverer(job_id)`` receives its end."""
        token = CancelToken()
        options = _wait_options(headers)
        for job_id in job_ids:
            operation = _wait_operation(job_id, timeout, unbounded, poll_policy)
            self._native.submit(operation, options, deliverer(job_id), None, token._native)
        return token

    def download(self, job: Union[str, Job, None] = None, path: Optional[PathLike] = None, *,
                 job_id: Optional[str] = None, overwrite: bool = False,
                 on_progress: Optional[ProgressCallback] = None, headers: Optional[Dict[str, str]] = None,
                 cancel: Optional[CancelToken] = None) -> Download:
        """Downloads a completed job's output to ``path``: resumable, length-checked, atomic.
        ``job`` is the job as read (which saves a request) or its id; ``job_id=`` works too."""
        args: Dict[str, Any] = {"job_id": job_id, "path": os.fspath(path) if path is not None else None,
                                "overwrite": overwrite or None}
        if isinstance(job, Job):
            args["job"] = {k: v for k, v in job.to_dict().items() if v is not None}
        elif job is not None and job_id is not None:
            raise TypeError("download() takes the job (or its id) or job_id=, not both")
        elif job is not None:
            args["job_id"] = job
        return self._call("download", args, _download, on_progress=on_progress, cancel=cancel, headers=headers)

    def run(self, video_url: Optional[str] = None, *, file: Optional[PathLike] = None, output: Optional[PathLike] = None,
            overwrite: bool = False, model: Optional[str] = None, output_format: Optional[str] = None,
            background: Optional[BackgroundLike] = None, text_prompt: Optional[str] = None,
            webhook_url: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None,
            timeout: Optional[float] = None, unbounded: bool = False, poll_policy: Optional[PollPolicy] = None,
            on_progress: Optional[ProgressCallback] = None,
            headers: Optional[Dict[str, str]] = None, cancel: Optional[CancelToken] = None) -> RunResult:
        """The whole flow under one deadline: upload (``file``) or ``video_url``, create, wait,
        and download to ``output`` when given."""
        args = dict(video_url=video_url, file=os.fspath(file) if file is not None else None,
                    output=os.fspath(output) if output is not None else None, model=model,
                    output_format=output_format, background=_background(background), text_prompt=text_prompt,
                    webhook_url=webhook_url, metadata=metadata, timeout_ms=_ms(timeout), overwrite=overwrite or None,
                    unbounded=unbounded or None, poll_policy=poll_policy._wire() if poll_policy else None)
        return self._call("run", args, RunResult.from_dict, on_progress=on_progress, cancel=cancel, headers=headers)


def _wait_args(job_id: str, timeout: Optional[float], unbounded: bool, poll_policy: Optional[PollPolicy]) -> Dict[str, Any]:
    return dict(job_id=job_id, timeout_ms=_ms(timeout), unbounded=unbounded or None,
                poll_policy=poll_policy._wire() if poll_policy else None)


#: A call as a method gives it: operation, arguments, progress callback, options.
_Request = Tuple[str, Dict[str, Any], Optional[ProgressCallback], Dict[str, Any]]


def _wire(operation: str, args: Dict[str, Any], on_progress: Optional[ProgressCallback],
          options: Dict[str, Any]) -> Tuple[str, str, Optional[Callable[[str], None]]]:
    """A call's JSON for the native side, and its event callback."""
    callback = None
    if on_progress is not None:
        def callback(event_json: str, _user: ProgressCallback = on_progress) -> None:
            _user(Event.from_dict(json.loads(event_json)))
    if options.get("headers") is not None:
        options["headers"] = sorted(options["headers"].items())
    if "timeout" in options:
        options["timeout_ms"] = _ms(options.pop("timeout"))
    # `operation` first: the native side then names a mistake in the arguments by its path.
    operation_json = json.dumps({"operation": operation, "arguments": _compact(args)})
    return operation_json, json.dumps(_compact(options)), callback


def _wait_operation(job_id: str, timeout: Optional[float], unbounded: bool, poll_policy: Optional[PollPolicy]) -> str:
    return json.dumps({"operation": "wait", "arguments": _compact(_wait_args(job_id, timeout, unbounded, poll_policy))})


def _wait_options(headers: Optional[Dict[str, str]]) -> str:
    return json.dumps(_compact({"headers": sorted(headers.items()) if headers else None}))


def _restore(settings: Dict[str, Any]) -> Client:
    return Client(**settings)
