"""An example that uses the API strictly; ``mypy --strict`` checks it against the package."""

from __future__ import annotations

import asyncio

import removebgvideo
from removebgvideo import Background, Client, Event, Job, JobAccepted


def on_progress(event: Event) -> None:
    if event.type == "progress" and event.progress is not None:
        print(f"{event.progress:.0f}%")


def process(client: Client, url: str) -> int:
    accepted: JobAccepted = client.create_job(url, model="human", background=Background.hex("#00b140"), output_format="mp4")
    try:
        job: Job = client.wait(accepted.id, timeout=600, on_progress=on_progress)
    except removebgvideo.JobFailedError as error:
        print(error.code, error.job.error if error.job else None)
        return 1
    except removebgvideo.WaitTimeoutError as error:
        print(error.request_id)
        return 2
    download = client.download(job, "out.mp4", overwrite=True)
    return download.bytes


async def many(urls: list[str]) -> list[str]:
    client = removebgvideo.AsyncClient()
    accepted = await asyncio.gather(*(client.create_job(u) for u in urls))
    jobs = await asyncio.gather(*(client.wait(a.id) for a in accepted))
    return [j.status for j in jobs]


def credits() -> int:
    return removebgvideo.estimate_credits("pro", 12.5)


def from_params(client: Client, url: str) -> str:
    # The generated TypedDicts type a method's keyword arguments: mypy checks the unpacking.
    params: removebgvideo.CreateJobParams = {"video_url": url, "model": "human", "auto_start": False}
    waiting: removebgvideo.WaitParams = {"job_id": client.create_job(**params).id, "timeout": 600.0}
    return client.wait(**waiting).status
