"""``AsyncClient``: the same methods as coroutines, on the client's engine. A call is handed
to the engine (one scheduler thread and a few HTTP workers for every call of the client) and
its future is completed from there with ``loop.call_soon_threadsafe``: no thread pool, no cap
on calls in flight, and ``asyncio.gather`` of ten thousand waits costs ten thousand futures.
Cancelling the awaiting task cancels the call (a wait stops polling at once).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any, AsyncIterator, Callable, Dict, Iterable, Optional, TypeVar

from ._client import CancelToken, Client, Download, PollPolicy, RunResult, WaitResult
from ._models import Health, Job, JobAccepted, JobList, LegacyDownload, UploadResult, UsageEvents, UsageSummary

__all__ = ["AsyncClient"]

T = TypeVar("T")


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


def _on_loop(loop: asyncio.AbstractEventLoop, work: Callable[..., None]) -> Callable[..., None]:
    """``work`` as a callable for the engine's threads: it runs on the loop, unless the loop
    has closed (nobody awaits the outcome any more)."""

    def hop(*args: Any) -> None:
        try:
            loop.call_soon_threadsafe(work, *args)
        except RuntimeError:
            pass

    return hop


class _Submitting(Client):
    """The client's methods, each handing its call to the engine and returning an awaitable.
    It shares the blocking client's native client (one engine, one rate gate, one budget)."""

    def __init__(self, sync: Client) -> None:  # noqa: D107 - shares `sync`, builds nothing
        self._settings = sync._settings
        self._native = sync._native

    def _execute(self, operation_json: str, options_json: str, callback: Optional[Callable[[str], None]],
                 cancel: Optional[CancelToken], convert: Callable[[Any], T]) -> Any:
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[T]" = loop.create_future()
        token = cancel or CancelToken()
        deliver = _on_loop(loop, lambda kind, value: _settle(future, kind, value, convert))
        on_event = _on_loop(loop, callback) if callback is not None else None
        self._native.submit(operation_json, options_json, deliver, on_event, token._native)
        return _awaited(future, token)


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
        loop = asyncio.get_running_loop()
        results: "asyncio.Queue[WaitResult]" = asyncio.Queue()
        ids = list(job_ids)

        def deliverer(job_id: str) -> Callable[[str, Any], None]:
            return _on_loop(loop, lambda kind, value: results.put_nowait(WaitResult._delivered(job_id, kind, value)))

        token = self._client._submit_waits(ids, deliverer, timeout, unbounded, poll_policy, headers)
        try:
            for _ in ids:
                yield await results.get()
        finally:
            token.cancel()
