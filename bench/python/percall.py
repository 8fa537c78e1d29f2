"""Per-call overhead of reading one job: GET /v1/jobs/{id} and parsing the JSON.

Why: a client that polls or lists jobs pays this cost on every call, so it shows what the
Rust-backed ``removebgvideo.Client`` costs per call next to the ways Python code usually talks
HTTP: ``requests.get`` with no session (as the official Python SDK does: a new connection each
call), a ``requests.Session`` and an ``httpx.Client`` (both keep connections alive).

Each contender reads the same job N times in a tight sequential loop, after a warm-up of
min(N, 50) calls. Rounds interleave the contenders so machine noise hits all of them alike;
each round records the mean microseconds per call, and the median over rounds is reported.
Every call checks that the answer carries the requested job id, so a broken contender cannot
look fast. Prints one JSON object on stdout.

    python percall.py --base-url URL --key KEY --job-id ID --calls N --rounds R
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable, Dict, List, Tuple

import httpx
import requests

import removebgvideo


def check(job_id: str, got: Any) -> None:
    if got != job_id:
        raise RuntimeError(f"expected job {job_id!r}, got {got!r}")


def contenders(base_url: str, key: str, job_id: str) -> List[Tuple[str, Callable[[], None]]]:
    url = f"{base_url.rstrip('/')}/v1/jobs/{job_id}"
    headers = {"X-Api-Key": key, "Accept": "application/json"}
    client = removebgvideo.Client(api_key=key, base_url=base_url)
    session = requests.Session()
    httpx_client = httpx.Client()

    def sdk() -> None:
        check(job_id, client.get_job(job_id).id)

    def requests_plain() -> None:
        response = requests.get(url, headers=headers)
        response.raise_for_status()
        check(job_id, response.json()["id"])

    def requests_session() -> None:
        response = session.get(url, headers=headers)
        response.raise_for_status()
        check(job_id, response.json()["id"])

    def httpx_plain() -> None:
        response = httpx_client.get(url, headers=headers)
        response.raise_for_status()
        check(job_id, response.json()["id"])

    return [
        ("removebgvideo", sdk),
        ("requests (no session)", requests_plain),
        ("requests.Session", requests_session),
        ("httpx.Client", httpx_plain),
    ]


def mean_us(call: Callable[[], None], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - start) / calls / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be at least 1")

    named = contenders(args.base_url, args.key, args.job_id)
    for _, call in named:
        for _ in range(min(args.calls, 50)):
            call()
    rounds: Dict[str, List[float]] = {name: [] for name, _ in named}
    for _ in range(args.rounds):
        for name, call in named:
            rounds[name].append(round(mean_us(call, args.calls), 1))

    print(json.dumps({
        "language": "python",
        "calls": args.calls,
        "rounds": args.rounds,
        "contenders": [
            {"name": name, "median_us": round(statistics.median(values), 1), "rounds_us": values}
            for name, values in rounds.items()
        ],
    }))


if __name__ == "__main__":
    main()
