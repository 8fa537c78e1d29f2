"""Many jobs waited at once on one asyncio loop: every job of a ``create-jobs`` file.

Why: a service with thousands of jobs in flight pays for each one it waits on, in threads,
memory, CPU and requests, and its event loop must stay responsive meanwhile. Two flows wait
for the same kind of jobs (each run gets its own, freshly created):

- ``sdk``: ``asyncio.gather`` of ``removebgvideo.AsyncClient.wait`` (the SDK's default poll
  policy). A failed job raises ``JobFailedError``, which counts as the job's end ``failed``.
- ``httpx``: what a careful user writes without the SDK: one ``httpx.AsyncClient``, a read of
  each job at once and then every 2 s until it is completed or failed, at most
  ``--concurrency`` requests in flight (an ``asyncio.Semaphore``, and as many pooled
  connections), a 429 waited out for its ``Retry-After``.

Each flow is one ``asyncio.gather`` of one awaitable per job, as its user writes it (the SDK's
waits are futures, which gather takes as they are; the httpx flow's coroutines become tasks).

Measured over the waiting only (from building the client to the last job's end): wall seconds
and the process's CPU seconds (getrusage RUSAGE_SELF, user + system, native threads
included). ``start_ms`` is how long making the N awaitables and the ``gather`` call hold the
loop, in one go (the caller's own loop, which grows with N in any flow). From then on, while
the waits run, a probe on the loop re-arms itself with ``loop.call_later`` every 10 ms: its
worst lateness is the loop's longest stall, and each firing reads ``Threads:`` of
``/proc/self/status`` (the kernel keeps no peak of threads). Peak RSS is ru_maxrss. Prints one
JSON object with every job's end in the file's order: ``completed``, ``failed``, ``error:
...`` for a wait that ended otherwise, ``timeout`` for one not ended in ``--timeout`` s.

    python many.py --mode sdk|httpx --base-url URL --key KEY --jobs-file FILE
        [--timeout S] [--poll-seconds 2] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from typing import Awaitable, Callable, List, Optional

import httpx

import removebgvideo

PROBE_SECONDS = 0.01
TERMINAL = ("completed", "failed")


def threads_now() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


class Probe:
    """A 10 ms timer on the loop: the worst lateness, and the most threads seen."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.worst = 0.0
        self.peak_threads = threads_now()
        self.handle: Optional[asyncio.TimerHandle] = None
        self.due = 0.0

    def start(self) -> None:
        self.due = self.loop.time() + PROBE_SECONDS
        self.handle = self.loop.call_later(PROBE_SECONDS, self.fire)

    def restart(self) -> None:
        """Measures from now on (the start, held by the caller's own loop, is measured apart)."""
        if self.handle is not None:
            self.handle.cancel()
        self.peak_threads = max(self.peak_threads, threads_now())
        self.worst = 0.0
        self.start()

    def fire(self) -> None:
        now = self.loop.time()
        self.worst = max(self.worst, now - self.due)
        self.peak_threads = max(self.peak_threads, threads_now())
        self.due = now + PROBE_SECONDS
        self.handle = self.loop.call_later(PROBE_SECONDS, self.fire)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.peak_threads = max(self.peak_threads, threads_now())


def describe(error: BaseException) -> str:
    code = getattr(error, "code", None)
    return f"error: {code or type(error).__name__}: {error}"


def sdk_flow(base_url: str, key: str, timeout: float, **_: object) -> Callable[[str], Awaitable[object]]:
    client = removebgvideo.AsyncClient(api_key=key, base_url=base_url)
    return lambda job_id: client.wait(job_id, timeout=timeout)


def sdk_end(outcome: object) -> str:
    if isinstance(outcome, removebgvideo.JobFailedError):
        return "failed"
    if isinstance(outcome, BaseException):
        return describe(outcome)
    return outcome.status  # type: ignore[attr-defined,no-any-return]


def httpx_flow(base_url: str, key: str, timeout: float, poll_seconds: float, concurrency: int) -> Callable[[str], Awaitable[object]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers={"X-Api-Key": key}, limits=limits, timeout=30.0)
    in_flight = asyncio.Semaphore(concurrency)
    deadline = time.monotonic() + timeout

    async def one(job_id: str) -> str:
        while True:
            async with in_flight:
                response = await client.get(f"/v1/jobs/{job_id}")
            if response.status_code == 429:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            status = response.json()["status"]
            if status in TERMINAL:
                return status
            if time.monotonic() >= deadline:
                return "timeout"
            await asyncio.sleep(poll_seconds)

    return one


def httpx_end(outcome: object) -> str:
    return describe(outcome) if isinstance(outcome, BaseException) else str(outcome)


async def wait_all(args: argparse.Namespace, job_ids: List[str]) -> dict:
    loop = asyncio.get_running_loop()
    probe = Probe(loop)
    probe.start()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    make, end = (sdk_flow, sdk_end) if args.mode == "sdk" else (httpx_flow, httpx_end)
    one = make(args.base_url, args.key, timeout=args.timeout, poll_seconds=args.poll_seconds, concurrency=args.concurrency)
    making = time.perf_counter()
    # What `gather` does with each awaitable (a future as it is, a coroutine as a task), done
    # here so the probe can stop with the last wait: gathering ten thousand results into one
    # list (and this harness's tally) is not a stall while the waits run.
    children = [asyncio.ensure_future(one(job_id)) for job_id in job_ids]
    left = [len(children)]

    def one_ended(_: object) -> None:
        left[0] -= 1
        if left[0] == 0:
            probe.stop()

    # Before `gather` adds its own, so the last wait's end stops the probe first.
    for child in children:
        child.add_done_callback(one_ended)
    every = asyncio.gather(*children, return_exceptions=True)
    start_ms = (time.perf_counter() - making) * 1000
    probe.restart()
    # The waits have their own limit; this one catches a flow that overruns it.
    try:
        outcomes = await asyncio.wait_for(every, timeout=args.timeout + 30)
        ends = [end(outcome) for outcome in outcomes]
    except asyncio.TimeoutError:
        ends = ["timeout"] * len(job_ids)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    probe.stop()
    cpu = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "language": "python",
        "flow": "removebgvideo AsyncClient.wait" if args.mode == "sdk" else f"asyncio + httpx.AsyncClient, {args.poll_seconds:g} s polls, {args.concurrency} in flight",
        "jobs": len(job_ids),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_s_per_job": round(cpu / len(job_ids), 6),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "peak_threads": probe.peak_threads,
        "start_ms": round(start_ms, 1),
        "stall_max_ms": round(probe.worst * 1000, 1),
        "statuses": ends,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["sdk", "httpx"], required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--jobs-file", required=True)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    if args.timeout <= 0 or args.poll_seconds <= 0 or args.concurrency < 1:
        parser.error("--timeout and --poll-seconds must be above 0, --concurrency at least 1")
    with open(args.jobs_file) as jobs:
        job_ids = [line.split()[0] for line in jobs if line.strip()]
    if not job_ids:
        parser.error(f"{args.jobs_file} lists no jobs")
    print(json.dumps(asyncio.run(wait_all(args, job_ids))))


if __name__ == "__main__":
    main()
