"""``AsyncClient``: the same methods as coroutines, run on worker threads so the event loop
never blocks. Cancelling the awaiting task cancels the call (a wait stops polling at once).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from typing import Any, Callable, Optional, TypeVar

from ._client import CancelToken, Client, Download, RunResult
from ._models import Health, Job, JobAccepted, JobList, LegacyDownload, UploadResult, UsageEvents, UsageSummary

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """Asynchronous client: ``await client.wait(job_id)``; takes the same settings as ``Client``.

    ``max_concurrency`` bounds the calls in flight at once (each waits on its own thread with
    the GIL released), so ``asyncio.gather`` of many waits runs them side by side.
    """

    def __init__(self, api_key: Optional[str] = None, *, max_concurrency: int = 64, **settings: Any) -> None:
        self._client = Client(api_key, **settings)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="removebgvideo")

    @property
    def sync(self) -> Client:
        """The blocking client underneath."""
        return self._client

    def __repr__(self) -> str:
        return "Async" + repr(self._client)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stops the worker threads once their calls end."""
        self._pool.shutdown(wait=False)

    async def _run(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        token = kwargs.pop("cancel", None) or CancelToken()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, functools.partial(method, *args, cancel=token, **kwargs))
        try:
            return await future
        except asyncio.CancelledError:
            token.cancel()
            raise

    async def health(self, *args: Any, **kwargs: Any) -> Health:
        """See ``Client.health``."""
        return await self._run(self._client.health, *args, **kwargs)

    async def upload(self, *args: Any, **kwargs: Any) -> UploadResult:
        """See ``Client.upload``."""
        return await self._run(self._client.upload, *args, **kwargs)

    async def create_job(self, *args: Any, **kwargs: Any) -> JobAccepted:
        """See ``Client.create_job``."""
        return await self._run(self._client.create_job, *args, **kwargs)

    async def start_job(self, *args: Any, **kwargs: Any) -> JobAccepted:
        """See ``Client.start_job``."""
        return await self._run(self._client.start_job, *args, **kwargs)

    async def get_job(self, *args: Any, **kwargs: Any) -> Job:
        """See ``Client.get_job``."""
        return await self._run(self._client.get_job, *args, **kwargs)

    async def list_jobs(self, *args: Any, **kwargs: Any) -> JobList:
        """See ``Client.list_jobs``."""
        return await self._run(self._client.list_jobs, *args, **kwargs)

    async def usage_summary(self, *args: Any, **kwargs: Any) -> UsageSummary:
        """See ``Client.usage_summary``."""
        return await self._run(self._client.usage_summary, *args, **kwargs)

    async def usage_events(self, *args: Any, **kwargs: Any) -> UsageEvents:
        """See ``Client.usage_events``."""
        return await self._run(self._client.usage_events, *args, **kwargs)

    async def legacy_download(self, *args: Any, **kwargs: Any) -> LegacyDownload:
        """See ``Client.legacy_download``."""
        return await self._run(self._client.legacy_download, *args, **kwargs)

    async def wait(self, *args: Any, **kwargs: Any) -> Job:
        """See ``Client.wait``."""
        return await self._run(self._client.wait, *args, **kwargs)

    async def download(self, *args: Any, **kwargs: Any) -> Download:
        """See ``Client.download``."""
        return await self._run(self._client.download, *args, **kwargs)

    async def run(self, *args: Any, **kwargs: Any) -> RunResult:
        """See ``Client.run``."""
        return await self._run(self._client.run, *args, **kwargs)
