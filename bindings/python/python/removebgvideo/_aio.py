"""``AsyncClient``: the same methods as coroutines, on the client's engine. A call is handed
to the engine (one scheduler thread and a few HTTP workers for every call of the client) and
its future is completed from there with ``loop.call_soon_threadsafe``: no thread pool, no cap
on calls in flight, and ``asyncio.gather`` of ten thousand waits costs ten thousand futures.
Cancelling the awaiting task cancels the call (a wait stops polling at once).
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
import warnings
import weakref
from typing import Any, AsyncIterator, Callable, Coroutine, Dict, Iterable, List, Optional, Tuple, TypeVar

from . import _native
from ._client import CancelToken, Client, Download, PollPolicy, RunResult, WaitResult, _Request, _wait_operation, _wait_options, _wire
from ._webhooks import HeadersLike, WebhookDelivery, WebhookReceiver
from ._models import Health, Job, JobAccepted, JobList, LegacyDownload, UploadResult, UsageEvents, UsageSummary

__all__ = ["AsyncClient"]

T = TypeVar("T")


#: How long one batch of hand-overs (calls to the engine, or outcomes back to futures) may
#: hold the event loop: ten thousand waits made by one ``gather`` must not stall it.
_BUDGET_SECONDS = 0.004


class _Channel:
    """One event loop's traffic with the engine: calls made on the loop are handed to the
    engine a few milliseconds' worth at a time, and what the engine sends back (each call's
    events, then its outcome, in order) is settled on the loop the same way."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._loop = loop
        self._outbox: "collections.deque[Tuple[Any, ...]]" = collections.deque()
        self._inbox: "collections.deque[Tuple[Callable[..., None], Tuple[Any, ...]]]" = collections.deque()
        self._inbox_lock = threading.Lock()
        self._inbox_scheduled = False

    def send(self, submit: Callable[..., None], *args: Any) -> None:
        """Queues a hand-over to the engine (on the loop's thread)."""
        self._outbox.append((submit, args))
        if len(self._outbox) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        until = time.monotonic() + _BUDGET_SECONDS
        while self._outbox:
            submit, args = self._outbox.popleft()
            submit(*args)
            if time.monotonic() >= until:
                break
        if self._outbox:
            self._loop.call_soon(self._flush)

    def receiver(self, work: Callable[..., None]) -> Callable[..., None]:
        """``work`` as a callable for the engine's threads: queued, then run on the loop."""

        def receive(*args: Any) -> None:
            self.queue(work, args)

        return receive

    def queue(self, work: Callable[..., None], args: Tuple[Any, ...]) -> None:
        """Runs ``work(*args)`` on the loop, in order (from the engine's threads)."""
        with self._inbox_lock:
            self._inbox.append((work, args))
            if self._inbox_scheduled:
                return
            self._inbox_scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._settle_inbox)
        except RuntimeError:  # the loop has closed: nobody awaits the outcome any more
            pass

    def _settle_inbox(self) -> None:
        until = time.monotonic() + _BUDGET_SECONDS
        while True:
            with self._inbox_lock:
                if not self._inbox:
                    self._inbox_scheduled = False
                    return
                work, args = self._inbox.popleft()
            work(*args)
            if time.monotonic() >= until:
                self._loop.call_soon(self._settle_inbox)
                return


class _Submitting(Client):
    """The client's methods, each handing its call to the engine and returning an awaitable.
    It shares the blocking client's native client (one engine, one rate gate, one budget)."""

    def __init__(self, sync: Client) -> None:  # noqa: D107 - shares `sync`, builds nothing
        self._settings = sync._settings
        self._native = sync._native
        self._channels: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Channel]" = weakref.WeakKeyDictionary()
        self._last: "Optional[Tuple[weakref.ref[asyncio.AbstractEventLoop], _Channel]]" = None

    def _channel(self) -> _Channel:
        loop = asyncio.get_running_loop()
        # The loop of the last call first: ten thousand calls on one loop look it up once.
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        channel = self._channels.get(loop)
        if channel is None:
            channel = self._channels[loop] = _Channel(loop)
        self._last = (weakref.ref(loop), channel)
        return channel

    def _execute(self, request: _Request, cancel: Optional[CancelToken], convert: Callable[[Any], T]) -> Any:
        # Only what a call must do at once happens here (a future, a queue entry): a `gather` of
        # ten thousand calls runs this ten thousand times in one step of the loop. The JSON, the
        # cancel token and the hand-over are the channel's budgeted flush's.
        channel = self._channel()
        future = _Call(channel, convert)
        channel.send(self._hand_over, request, future, cancel)
        return future

    def _hand_over(self, request: _Request, future: "_Call", cancel: Optional[CancelToken]) -> None:
        if future.done():  # cancelled before it was handed over
            return
        try:
            operation_json, options_json, callback = _wire(*request)
        except Exception as error:  # a bad argument JSON cannot carry: the call's error
            future.set_exception(error)
            return
        token = future._handed_over(cancel)
        on_event = future._channel.receiver(callback) if callback is not None else None
        try:
            # The future itself receives the outcome (see `_Call.__call__`).
            self._native.submit(operation_json, options_json, future, on_event, token)
        except Exception as error:  # a bad argument the native side refused at once
            future.set_exception(error)

    def _submit_waits_async(self, job_ids: List[str], deliverer: Callable[[str], Callable[[str, Any], None]],
                            timeout: Optional[float], unbounded: bool, poll_policy: Optional[PollPolicy],
                            headers: Optional[Dict[str, str]]) -> CancelToken:
        """Like ``Client._submit_waits``, each hand-over through the loop's channel."""
        channel = self._channel()
        token = CancelToken()
        options = _wait_options(headers)
        for job_id in job_ids:
            operation = _wait_operation(job_id, timeout, unbounded, poll_policy)
            channel.send(self._native.submit, operation, options, channel.receiver(deliverer(job_id)), None,
                         token._native)
        return token


class _Call(asyncio.Future):  # type: ignore[type-arg]
    """A call's outcome: a future (so `asyncio.gather` and `asyncio.wait` take it as it is,
    without a task per call), and a coroutine too (so `asyncio.create_task`, a `TaskGroup` and
    `await` work as with any `async def`). Cancelling it cancels the call.

    It is also what the engine delivers the outcome to, and it holds its own cancel token: a
    pending call is this one object (and a native token), not a web of callbacks, which keeps
    the garbage collector's passes short with ten thousand calls pending."""

    __slots__ = ("_steps", "_channel", "_convert", "_token")

    def __init__(self, channel: _Channel, convert: Callable[[Any], Any]) -> None:
        super().__init__(loop=channel.loop)
        self._steps: Any = None
        self._channel = channel
        self._convert = convert
        self._token: Any = None

    def _handed_over(self, cancel: Optional[CancelToken]) -> Any:
        """The native cancel token of the call, made as it is handed to the engine."""
        self._token = cancel._native if cancel is not None else _native.NativeCancel()
        return self._token

    def __call__(self, kind: str, value: Any) -> None:
        """The outcome, from one of the engine's threads: settled on the loop, in order."""
        self._channel.queue(self._settle, (kind, value))

    def _settle(self, kind: str, value: Any) -> None:
        if self.done():
            return
        if kind == "result":
            try:
                self.set_result(self._convert(json.loads(value)))
            except Exception as error:  # a conversion bug must still settle the future
                self.set_exception(error)
        else:
            self.set_exception(value)

    def cancel(self, msg: Any = None) -> bool:
        cancelled = super().cancel(msg)
        if cancelled and self._token is not None:
            self._token.cancel()
        return cancelled

    def send(self, value: Any) -> Any:
        if self._steps is None:
            self._steps = self.__await__()
        return self._steps.send(value)

    def throw(self, *error: Any) -> Any:
        if self._steps is None:
            self._steps = self.__await__()
        return self._steps.throw(*error)

    def close(self) -> None:
        if self._steps is not None:
            self._steps.close()


class AsyncClient:
    """Asynchronous client: ``await client.wait(job_id)``; takes the same settings as ``Client``.

    Every call runs on the client's engine, so ``asyncio.gather`` of many waits needs no thread
    per wait and has no concurrency cap; the event loop never blocks.
    """

    def __init__(self, api_key: Optional[str] = None, *, max_concurrency: Optional[int] = None,
                 **settings: Any) -> None:
        if max_concurrency is not None:
            warnings.warn("AsyncClient(max_concurrency=...) no longer does anything: calls run on the client's "
                          "engine, without a thread pool or a cap", DeprecationWarning, stacklevel=2)
        self._client = Client(api_key, **settings)
        self._calls = _Submitting(self._client)

    @property
    def sync(self) -> Client:
        """The blocking client underneath (the same engine, rate gate and retry budget)."""
        return self._client

    def __repr__(self) -> str:
        return "Async" + repr(self._client)

    def use_webhooks(self, url: str, *, secret: str, tolerance: Optional[float] = None,
                     fallback: Optional[float] = None) -> None:
        """As ``Client.use_webhooks`` (no I/O: not a coroutine)."""
        self._client.use_webhooks(url, secret=secret, tolerance=tolerance, fallback=fallback)

    def handle_webhook(self, body: bytes, headers: "HeadersLike") -> "WebhookDelivery":
        """As ``Client.handle_webhook``: call it from an ``async def`` route (no I/O, never blocks
        the loop; not a coroutine)."""
        return self._client.handle_webhook(body, headers)

    def listen_for_webhooks(self, *, secret: str, host: Optional[str] = None, port: Optional[int] = None,
                            path: Optional[str] = None, public_url: Optional[str] = None,
                            tolerance: Optional[float] = None, fallback: Optional[float] = None) -> "WebhookReceiver":
        """As ``Client.listen_for_webhooks`` (the receiver runs on its own thread)."""
        return self._client.listen_for_webhooks(secret=secret, host=host, port=port, path=path, public_url=public_url,
                                                tolerance=tolerance, fallback=fallback)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release explicitly (the engine stops with the client); for symmetry."""

    def health(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, Health]":
        """See ``Client.health``; await it (or gather it, or make it a task)."""
        return self._calls.health(*args, **kwargs)  # type: ignore[no-any-return]

    def upload(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, UploadResult]":
        """See ``Client.upload``; await it (or gather it, or make it a task)."""
        return self._calls.upload(*args, **kwargs)  # type: ignore[no-any-return]

    def create_job(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, JobAccepted]":
        """See ``Client.create_job``; await it (or gather it, or make it a task)."""
        return self._calls.create_job(*args, **kwargs)  # type: ignore[no-any-return]

    def start_job(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, JobAccepted]":
        """See ``Client.start_job``; await it (or gather it, or make it a task)."""
        return self._calls.start_job(*args, **kwargs)  # type: ignore[no-any-return]

    def get_job(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, Job]":
        """See ``Client.get_job``; await it (or gather it, or make it a task)."""
        return self._calls.get_job(*args, **kwargs)  # type: ignore[no-any-return]

    def list_jobs(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, JobList]":
        """See ``Client.list_jobs``; await it (or gather it, or make it a task)."""
        return self._calls.list_jobs(*args, **kwargs)  # type: ignore[no-any-return]

    def usage_summary(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, UsageSummary]":
        """See ``Client.usage_summary``; await it (or gather it, or make it a task)."""
        return self._calls.usage_summary(*args, **kwargs)  # type: ignore[no-any-return]

    def usage_events(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, UsageEvents]":
        """See ``Client.usage_events``; await it (or gather it, or make it a task)."""
        return self._calls.usage_events(*args, **kwargs)  # type: ignore[no-any-return]

    def legacy_download(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, LegacyDownload]":
        """See ``Client.legacy_download``; await it (or gather it, or make it a task)."""
        return self._calls.legacy_download(*args, **kwargs)  # type: ignore[no-any-return]

    def wait(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, Job]":
        """See ``Client.wait``; await it (or gather it, or make it a task)."""
        return self._calls.wait(*args, **kwargs)  # type: ignore[no-any-return]

    def download(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, Download]":
        """See ``Client.download``; await it (or gather it, or make it a task)."""
        return self._calls.download(*args, **kwargs)  # type: ignore[no-any-return]

    def run(self, *args: Any, **kwargs: Any) -> "Coroutine[Any, Any, RunResult]":
        """See ``Client.run``; await it (or gather it, or make it a task)."""
        return self._calls.run(*args, **kwargs)  # type: ignore[no-any-return]

    async def as_completed(self, job_ids: Iterable[str], *, timeout: Optional[float] = None, unbounded: bool = False,
                           poll_policy: Optional[PollPolicy] = None,
                           headers: Optional[Dict[str, str]] = None) -> AsyncIterator[WaitResult]:
        """``async for result in client.as_completed(job_ids)``: waits for every job at once and
        yields a ``WaitResult`` for each as it ends (see ``Client.as_completed``); leaving the
        loop early cancels the rest."""
        results: "asyncio.Queue[WaitResult]" = asyncio.Queue()
        ids = list(job_ids)

        def deliverer(job_id: str) -> Callable[[str, Any], None]:
            return lambda kind, value: results.put_nowait(WaitResult._delivered(job_id, kind, value))

        token = self._calls._submit_waits_async(ids, deliverer, timeout, unbounded, poll_policy, headers)
        try:
            for _ in ids:
                yield await results.get()
        finally:
            token.cancel()
