"""``AsyncClient``: coroutines that never block the loop, many waits at once, cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

import removebgvideo
from removebgvideo import PollPolicy
from removebgvideo.testing import Sandbox

from conftest import VIDEO

FAST_POLL = PollPolicy(initial_interval=0.02, max_interval=0.2, min_interval=0.01)


def test_gather_of_many_waits(sandbox: Sandbox) -> None:
    async def main() -> list[str]:
        async with removebgvideo.AsyncClient(sandbox.demo_key, base_url=sandbox.base_url, poll_policy=FAST_POLL) as client:
            jobs = await asyncio.gather(*(client.create_job(f"{VIDEO}?duration={100 + i}") for i in range(40)))
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.001)

            beat = asyncio.create_task(ticker())
            done = await asyncio.gather(*(client.wait(j.id) for j in jobs))
            beat.cancel()
            assert ticks > 10, "the event loop kept running"
            return [j.status for j in done]

    assert asyncio.run(main()) == ["completed"] * 40


def test_cancelling_a_wait_stops_polling_promptly(sandbox: Sandbox) -> None:
    async def main() -> None:
        client = removebgvideo.AsyncClient(sandbox.demo_key, base_url=sandbox.base_url)
        stuck = await client.create_job(f"{VIDEO}?scenario=stuck")
        path = f"/v1/jobs/{stuck.id}"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.wait(stuck.id), timeout=0.3)
        await asyncio.sleep(0.3)
        polls_after = len([r for r in sandbox.request_log() if r["path"] == path])
        await asyncio.sleep(1.5)
        assert len([r for r in sandbox.request_log() if r["path"] == path]) == polls_after, "no polling after cancellation"
        await client.aclose()

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 5
