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
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar

from ._client import CancelToken, Client, Download, PollPolicy, RunResult, WaitResult, _wait_operation, _wait_options
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
            with self._inbox_lock:
                self._inbox.append((work, args))
                if self._inbox_scheduled:
                    return
                self._inbox_scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._settle_inbox)
            except RuntimeError:  # the loop has closed: nobody awaits the outcome any more
                pass

        return receive

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


def _settle(future: "asyncio.Future[Any]", kind: str, value: Any, convert: Callable[[Any], Any]) -> None:
    """Completes a call's future, on the loop's thread."""
    if future.done():
        return
    if kind == "result":
        try:
            future.set_result(convert(json.loads(value)))
        except Exception as error:  # a conversion bug must still settle the future
            future.set_exception(error)
    else:
        future.set_exception(value)


class _Submitting(Client):
    """The client's methods, each handing its call to the engine and returning an awaitable.
    It shares the blocking client's native client (one engine, one rate gate, one budget)."""

    def __init__(self, sync: Client) -> None:  # noqa: D107 - shares `sync`, builds nothing
        self._settings = sync._settings
        self._native = sync._native
        self._channels: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Channel]" = weakref.WeakKeyDictionary()

    def _channel(self) -> _Channel:
        loop = asyncio.get_running_loop()
        channel = self._channels.get(loop)
        if channel is None:
            channel = self._channels[loop] = _Channel(loop)
        return channel

    def _execute(self, operation_json: str, options_json: str, callback: Optional[Callable[[str], None]],
                 cancel: Optional[CancelToken], convert: Callable[[Any], T]) -> Any:
        channel = self._channel()
        future: "asyncio.Future[T]" = asyncio.get_running_loop().create_future()
        token = cancel or CancelToken()
        deliver = channel.receiver(lambda kind, value: _settle(future, kind, value, convert))
        on_event = channel.receiver(callback) if callback is not None else None
        channel.send(self._native.submit, operation_json, options_json, deliver, on_event, token._native)
        return _awaited(future, token)

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


async def _awaited(future: "asyncio.Future[T]", token: CancelToken) -> T:
    try:
        return await future
    except asyncio.CancelledError:
        token.cancel()
        raise


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

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release explicitly (the engine stops with the client); for symmetry."""

    async def health(self, *args: Any, **kwargs: Any) -> Health:
        """See ``Client.health``."""
        return await self._calls.health(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def upload(self, *args: Any, **kwargs: Any) -> UploadResult:
        """See ``Client.upload``."""
        return await self._calls.upload(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def create_job(self, *args: Any, **kwargs: Any) -> JobAccepted:
        """See ``Client.create_job``."""
        return await self._calls.create_job(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def start_job(self, *args: Any, **kwargs: Any) -> JobAccepted:
        """See ``Client.start_job``."""
        return await self._calls.start_job(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def get_job(self, *args: Any, **kwargs: Any) -> Job:
        """See ``Client.get_job``."""
        return await self._calls.get_job(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def list_jobs(self, *args: Any, **kwargs: Any) -> JobList:
        """See ``Client.list_jobs``."""
        return await self._calls.list_jobs(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def usage_summary(self, *args: Any, **kwargs: Any) -> UsageSummary:
        """See ``Client.usage_summary``."""
        return await self._calls.usage_summary(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def usage_events(self, *args: Any, **kwargs: Any) -> UsageEvents:
        """See ``Client.usage_events``."""
        return await self._calls.usage_events(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def legacy_download(self, *args: Any, **kwargs: Any) -> LegacyDownload:
        """See ``Client.legacy_download``."""
        return await self._calls.legacy_download(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def wait(self, *args: Any, **kwargs: Any) -> Job:
        """See ``Client.wait``."""
        return await self._calls.wait(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def download(self, *args: Any, **kwargs: Any) -> Download:
        """See ``Client.download``."""
        return await self._calls.download(*args, **kwargs)  # type: ignore[no-any-return, misc]

    async def run(self, *args: Any, **kwargs: Any) -> RunResult:
        """See ``Client.run``."""
        return await self._calls.run(*args, **kwargs)  # type: ignore[no-any-return, misc]

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
