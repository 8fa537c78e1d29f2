"""A batch pipeline as users write it by hand today: asyncio + httpx, a JSON file of job ids.

Why: this is the loop our batch runner replaces. Each item: POST /v1/jobs, the job id saved
into a JSON file of every job id so far (rewritten whole, then renamed, after each create: the
usual way to make a re-run skip created jobs), a read every 2 s (the docs' advice) until the
job ends, then the output streamed to a file. C items at a time (an asyncio.Semaphore). No
retries, no idempotency key, no ledger of transitions: what it does not do is the point of
the comparison; what it costs is what is measured.

Measures, from building the client to the last item's end: wall seconds, CPU seconds of the
process (getrusage RUSAGE_SELF: user + system), peak RSS (ru_maxrss). Prints one JSON object.

    python pipeline.py --base-url URL --key KEY --items N --concurrency C --video-url URL --out DIR
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time

import httpx

POLL_SECONDS = 2.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def pipeline(args: argparse.Namespace) -> dict:
    os.makedirs(args.out, exist_ok=True)
    ids_path = os.path.join(args.out, "job_ids.json")
    job_ids: dict = {}
    joiner = "&" if "?" in args.video_url else "?"
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    headers = {"X-Api-Key": args.key}
    gate = asyncio.Semaphore(args.concurrency)
    completed = 0

    def save_ids() -> None:
        part = ids_path + ".part"
        with open(part, "w") as out:
            json.dump(job_ids, out)
        os.replace(part, ids_path)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        nonlocal completed
        key = f"item-{i}"
        async with gate:
            created = await client.post("/v1/jobs", json={"video_url": f"{args.video_url}{joiner}item={i}"})
            created.raise_for_status()
            job_id = created.json()["id"]
            job_ids[key] = job_id
            save_ids()
            while True:
                await asyncio.sleep(POLL_SECONDS)
                job = (await client.get(f"/v1/jobs/{job_id}")).json()
                if job["status"] in ("completed", "failed"):
                    break
            if job["status"] != "completed":
                return
            async with client.stream("GET", job["output_url"]) as response:
                response.raise_for_status()
                with open(os.path.join(args.out, f"{key}.webm"), "wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
            completed += 1

    async with httpx.AsyncClient(base_url=args.base_url, headers=headers, limits=limits, timeout=60) as client:
        await asyncio.gather(*(one(client, i) for i in range(args.items)))
    return {"completed": completed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--video-url", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    outcome = asyncio.run(pipeline(args))
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    if outcome["completed"] != args.items:
        raise SystemExit(f"only {outcome['completed']} of {args.items} items completed")
    print(json.dumps({
        "language": "python",
        "flow": "asyncio + httpx, JSON file of job ids (hand-written)",
        "items": args.items,
        "in_flight": args.concurrency,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_ms_per_job": cpu * 1000 / args.items,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
