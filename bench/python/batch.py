"""A batch of jobs end to end: create (draft) -> start -> wait until completed, on T threads.

Why: a batch spends most of its time waiting, so what it costs the caller is CPU time and
memory while it waits, and how many requests it sends. Two flows run the same jobs:

- ``sdk``: one shared ``removebgvideo.Client`` (create_job, start_job, wait with the SDK's
  default poll policy, which aims at the completion the job's progress projects).
- ``requests``: the official Python SDK's way: module-level ``requests.post``/``requests.get``
  (no session, a new connection per call), JSON bodies, a GET every 2 s with
  ``time.sleep(2)`` until the job is completed or failed, 600 s timeout.

Jobs are created with ``auto_start`` false so that the explicit start is valid. Every job must
end ``completed``. Measures, from building the client to the last job's end: wall seconds and
CPU seconds of the whole process (getrusage RUSAGE_SELF user + system, native threads
included; interpreter start-up and imports are left out). Peak RSS is the process's
(ru_maxrss). Prints one JSON object.

    python batch.py --mode sdk|requests --base-url URL --key KEY --jobs N --threads T --video-url URL
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import requests

import removebgvideo

POLL_SECONDS = 2.0
TIMEOUT_SECONDS = 600.0


def sdk_flow(base_url: str, key: str, video_url: str) -> Callable[[int], str]:
    client = removebgvideo.Client(api_key=key, base_url=base_url)

    def one(_: int) -> str:
        job_id = client.create_job(video_url, auto_start=False).id
        client.start_job(job_id)
        return client.wait(job_id).status

    return one


def requests_flow(base_url: str, key: str, video_url: str) -> Callable[[int], str]:
    base = base_url.rstrip("/")
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}

    def one(_: int) -> str:
        created = requests.post(f"{base}/v1/jobs", json={"video_url": video_url, "auto_start": False}, headers=headers)
        created.raise_for_status()
        job_id = created.json()["id"]
        started = requests.post(f"{base}/v1/jobs/{job_id}/start", json={}, headers=headers)
        started.raise_for_status()
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            response = requests.get(f"{base}/v1/jobs/{job_id}", headers=headers)
            response.raise_for_status()
            status = response.json()["status"]
            if status in ("completed", "failed"):
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {status} after {TIMEOUT_SECONDS:.0f} s")
            time.sleep(POLL_SECONDS)

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["sdk", "requests"], required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--video-url", required=True)
    args = parser.parse_args()
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be at least 1")

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    make = sdk_flow if args.mode == "sdk" else requests_flow
    one = make(args.base_url, args.key, args.video_url)
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        statuses = list(pool.map(one, range(args.jobs)))  # re-raises the first failure
    wall = time.perf_counter() - start

    completed = statuses.count("completed")
    if completed != args.jobs:
        raise RuntimeError(f"{args.jobs - completed} of {args.jobs} jobs did not complete: {statuses}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
    print(json.dumps({
        "language": "python",
        "flow": "removebgvideo" if args.mode == "sdk" else "requests (official SDK style)",
        "jobs": args.jobs,
        "threads": args.threads,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_s_per_job": round(cpu / args.jobs, 4),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "completed": completed,
    }))


if __name__ == "__main__":
    main()
