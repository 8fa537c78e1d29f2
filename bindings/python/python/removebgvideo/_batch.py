"""``Batch``: many videos from a manifest (or a list of items), every transition in a ledger,
safe to kill at any moment and resumed by running it again.

This module only converts and moves results between threads: reading the manifest, the
ledger, the idempotency keys, the in-flight ceiling, the budget, restarts and downloads are
Rust's (``removebgvideo_batch``), the same for the CLI, Python and Node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import queue
import sys
import threading
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import _native
from ._client import CancelToken, Client

__all__ = ["Batch", "BatchItemResult", "BatchOutput", "BatchProgress", "BatchSummary", "BatchStatus",
           "BatchEvent", "BatchReport", "check_manifest"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclasses.dataclass(frozen=True)
class BatchOutput:
    """An item's output in place: its path, size and SHA-256."""

    path: str
    size: Optional[int]
    sha256: Optional[str]


@dataclasses.dataclass(frozen=True)
class BatchItemResult:
    """One item as ``results.jsonl`` / ``errors.jsonl`` has it.

    ``outcome`` is ``completed``, ``failed``, ``unknown`` (its create's outcome is unknown and the
    server is not known to honour idempotency keys: parked, never re-created blindly), ``error``
    (refused without a job), ``held`` (its estimate would pass the budget) or ``in_progress``
    (the run stopped first; running again resumes it)."""

    key: str
    outcome: str
    phase: str
    job_id: Optional[str]
    job_status: Optional[str]
    video_url: Optional[str]
    file: Optional[str]
    model: str
    output_format: str
    context: Dict[str, Any]
    generation: int
    credits_estimated: Optional[float]
    credits_charged: Optional[float]
    output: Optional[BatchOutput]
    #: The last error: ``code``, ``message``, ``request_id``.
    error: Optional[Dict[str, Any]]

    @property
    def ok(self) -> bool:
        """Whether the item completed with its output in place."""
        return self.outcome == "completed"

    @classmethod
    def _from(cls, data: Mapping[str, Any]) -> "BatchItemResult":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        output = data.get("output")
        values["output"] = BatchOutput(**output) if output else None
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class BatchProgress:
    """Where a running batch stands (given to ``on_progress`` at most every 100 ms)."""

    total: int
    done: int
    failed: int
    unknown: int
    errors: int
    held: int
    in_flight: int
    planned: int
    #: Whose create is under way (or was, when a run stopped: a resume sends it again).
    creating: int
    credits_committed: float
    budget_credits: Optional[float]
    #: The in-flight ceiling now (halved while the server answers 429).
    ceiling: int

    @property
    def finished(self) -> int:
        """Items that need nothing more from this run."""
        return self.done + self.failed + self.unknown + self.errors + self.held


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    """How a run ended: ``complete`` when every item completed."""

    batch: str
    progress: BatchProgress
    complete: bool
    cancelled: bool
    results: str
    errors: str
    seconds: float
    #: What the ledger cost the run: ``commits``, ``commit_p50_us``, ``commit_p99_us``,
    #: ``groups``, ``reads``, ``total_ms``, ``cpu_ms`` and more.
    ledger: Dict[str, Any] = dataclasses.field(default_factory=dict)


def _known(cls: Any, data: Mapping[str, Any]) -> Dict[str, Any]:
    """The fields of ``cls`` in ``data``: a newer native side may send more."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclasses.dataclass(frozen=True)
class BatchStatus:
    """Items per phase and the credits of a batch, from its ledger."""

    batch: str
    total: int
    phases: Dict[str, int]
    credits: Dict[str, float]
    #: Each worker's share (each run's, on a SQLite file): ``worker`` (``host:pid:tag``),
    #: ``finished``, ``takeovers``, ``events`` and ``leases`` (items it holds now).
    workers: List[Dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class BatchEvent:
    """One entry of an item's log: a transition, an attempt, a retry or an error."""

    seq: int
    at: int
    kind: str
    phase_from: Optional[str]
    phase_to: Optional[str]
    status_from: Optional[str]
    status_to: Optional[str]
    request_id: Optional[str]
    http_status: Optional[int]
    attempt: Optional[int]
    detail: Optional[Dict[str, Any]]
    #: The worker that wrote it (``host:pid:tag``).
    worker: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class BatchReport:
    """The SLA baseline per model, and the ledger's credits against the API's usage."""

    markdown: str
    html: str
    #: The figures: ``models`` (count, p50/p95 seconds, credits per video minute, failure codes),
    #: ``estimate_gap`` and ``usage``.
    data: Dict[str, Any]


def check_manifest(text: str, format: str = "jsonl") -> List[str]:
    """Checks a manifest's text (``csv`` or ``jsonl``) without sending or storing anything:
    its items' keys, or ``ValidationError`` naming every bad row (``/<line>/<column>``)."""
    return list(json.loads(_native.check_manifest(text, format))["keys"])


_DONE = object()


class Batch:
    """Runs a manifest (a ``.csv`` or ``.jsonl`` path) or ``items`` (dicts with the manifest's
    columns: ``video_url`` or ``file``, ``key``, ``model``, ``output_format``, ``background``,
    ``text_prompt``, ``metadata``, ``output``).

    Iterate it (``for result in batch`` or ``async for result in batch``) to run it and get each
    item's :class:`BatchItemResult` as it ends; every item comes once per run. Running the same
    batch again (same manifest or items, same ``out``) resumes it: no job is made twice. Leaving
    the loop early, Ctrl-C or :meth:`cancel` stops new work and leaves everything resumable.

    ``ledger``: the ledger file (``out/ledger.sqlite``), or a ``postgresql://`` URL: one ledger
    that workers on many machines share, each running the items it claims (``lease``: seconds
    a claim lasts unless its heartbeat renews it, 30). ``max_requests_per_second``: the API key's
    ceiling; on a shared ledger it is split between every worker that uses the key, and a 429
    any worker gets pauses them all.

    ``on_progress`` receives :class:`BatchProgress`. ``progress_bar``: a tqdm bar (``None``: when
    tqdm is installed and stderr is a terminal).
    """

    def __init__(
        self,
        manifest: Optional[PathLike] = None,
        *,
        items: Optional[Sequence[Mapping[str, Any]]] = None,
        out: PathLike = "out",
        ledger: Optional[PathLike] = None,
        batch: Optional[str] = None,
        client: Optional[Client] = None,
        max_in_flight: Optional[int] = None,
        budget_credits: Optional[float] = None,
        restart_failed: Optional[int] = None,
        recreate_unknown: bool = False,
        durability: Optional[str] = None,
        timeout: Optional[float] = None,
        lease: Optional[float] = None,
        max_requests_per_second: Optional[float] = None,
        on_progress: Optional[Callable[[BatchProgress], None]] = None,
        progress_bar: Optional[bool] = None,
    ) -> None:
        self._args: Dict[str, Any] = {
            "manifest": os.fspath(manifest) if manifest is not None else None,
            "items": [dict(item) for item in items] if items is not None else None,
            "out": os.fspath(out),
            "ledger": os.fspath(ledger) if ledger is not None else None,
            "batch": batch,
            "max_in_flight": max_in_flight,
            "budget_credits": budget_credits,
            "restart_failed": restart_failed,
            "recreate_unknown": recreate_unknown,
            "durability": durability,
            "timeout": timeout,
            "lease": lease,
            "max_requests_per_second": max_requests_per_second,
        }
        self._client = client
        self._on_progress = on_progress
        self._progress_bar = progress_bar
        self._cancel = CancelToken()
        #: The summary of the last run, once it ended.
        self.summary: Optional[BatchSummary] = None

    def _json(self) -> str:
        return json.dumps({k: v for k, v in self._args.items() if v is not None and v is not False})

    def _native_client(self) -> Any:
        if self._client is None:
            self._client = Client()
        return self._client._native

    def cancel(self) -> None:
        """Stops starting new work and ends the calls under way; the batch stays resumable."""
        self._cancel.cancel()

    def _bar(self) -> Any:
        wanted = self._progress_bar
        if wanted is False:
            return None
        try:
            from tqdm import tqdm  # type: ignore[import-untyped]
        except ImportError:
            return None
        if wanted is None and not sys.stderr.isatty():
            return None
        return tqdm(unit="item", desc="batch")

    def _progress_handler(self, bar: Any) -> Optional[Callable[[str], None]]:
        if self._on_progress is None and bar is None:
            return None
        user = self._on_progress

        def handle(raw: str) -> None:
            progress = BatchProgress(**_known(BatchProgress, json.loads(raw)))
            if bar is not None:
                bar.total = progress.total
                bar.n = progress.finished
                bar.set_postfix(done=progress.done, failed=progress.failed, in_flight=progress.in_flight,
                                credits=progress.credits_committed, refresh=False)
                bar.refresh()
            if user is not None:
                user(progress)

        return handle

    def _start(self, put: Callable[[Any], None]) -> threading.Thread:
        """Runs the batch on a thread of its own; each result, then the end (or the error), goes
        through ``put``."""
        native = self._native_client()
        args = self._json()
        bar = self._bar()
        progress = self._progress_handler(bar)
        self._cancel = CancelToken() if self._cancel.cancelled else self._cancel

        def work() -> None:
            try:
                raw = native.batch_run(args, lambda line: put(BatchItemResult._from(json.loads(line))),
                                       progress, self._cancel._native)
                data = json.loads(raw)
                data["progress"] = BatchProgress(**_known(BatchProgress, data["progress"]))
                self.summary = BatchSummary(**_known(BatchSummary, data))
                put(_DONE)
            except BaseException as error:  # handed to the consumer, never lost on this thread
                put(error)
            finally:
                if bar is not None:
                    bar.close()

        thread = threading.Thread(target=work, name="removebgvideo-batch", daemon=True)
        thread.start()
        return thread

    def __iter__(self) -> Iterator[BatchItemResult]:
        results: "queue.Queue[Any]" = queue.Queue()
        thread = self._start(results.put)
        try:
            while True:
                try:
                    # A timeout keeps Ctrl-C deliverable on the main thread.
                    got = results.get(timeout=0.2)
                except queue.Empty:
                    continue
                if got is _DONE:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            if thread.is_alive():
                self._cancel.cancel()
                thread.join()

    async def __aiter__(self) -> AsyncIterator[BatchItemResult]:
        loop = asyncio.get_running_loop()
        results: "asyncio.Queue[Any]" = asyncio.Queue()
        thread = self._start(lambda got: loop.call_soon_threadsafe(results.put_nowait, got))
        try:
            while True:
                got = await results.get()
                if got is _DONE:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            if thread.is_alive():
                self._cancel.cancel()
                await asyncio.get_running_loop().run_in_executor(None, thread.join)

    def run(self) -> BatchSummary:
        """Runs the batch to its end (or a stop) and returns the summary."""
        for _ in self:
            pass
        assert self.summary is not None
        return self.summary

    async def arun(self) -> BatchSummary:
        """``run`` for asyncio."""
        async for _ in self:
            pass
        assert self.summary is not None
        return self.summary

    def status(self) -> BatchStatus:
        """Items per phase and the credits, from the ledger."""
        return BatchStatus(**_known(BatchStatus, json.loads(_native.batch_status(self._json()))))

    def events(self, key: str) -> List[BatchEvent]:
        """The log of the item ``key``, oldest first."""
        return [BatchEvent(**_known(BatchEvent, event)) for event in json.loads(_native.batch_events(self._json(), key))]

    def report(self, *, usage: bool = True) -> BatchReport:
        """The SLA baseline per model; with ``usage``, the ledger's credits against the API's
        usage summary and events (one request each)."""
        raw = self._native_client().batch_report(self._json()) if usage else _native.batch_report(self._json())
        data = json.loads(raw)
        return BatchReport(markdown=data["markdown"], html=data["html"], data=data["report"])
