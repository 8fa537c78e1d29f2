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


def _threads() -> int:
    """OS threads of this process now."""
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("Threads:")).split()[1])


def test_hundreds_of_waits_take_no_thread_each(sandbox: Sandbox) -> None:
    async def main() -> tuple[int, int, list[str]]:
        client = removebgvideo.AsyncClient(sandbox.demo_key, base_url=sandbox.base_url, poll_policy=FAST_POLL)
        jobs = await asyncio.gather(*(client.create_job(f"{VIDEO}?duration={20 + i % 50}&n={i}") for i in range(300)))
        before = _threads()
        peak = before

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, _threads())
                await asyncio.sleep(0.002)

        sampler = asyncio.create_task(sample())
        done = await asyncio.gather(*(client.wait(j.id) for j in jobs))
        sampler.cancel()
        return before, peak, [j.status for j in done]

    before, peak, statuses = asyncio.run(main())
    assert statuses == ["completed"] * 300
    assert peak <= before + 1, f"300 waits on the engine's threads: {before} threads before, {peak} at most"


def test_as_completed_yields_every_job_as_it_ends(sandbox: Sandbox) -> None:
    client = removebgvideo.Client(sandbox.demo_key, base_url=sandbox.base_url, poll_policy=FAST_POLL)
    truth = {}
    for i in range(30):
        failing = i % 5 == 0
        url = f"{VIDEO}?scenario=fail&n={i}" if failing else f"{VIDEO}?duration={10 + i}"
        truth[client.create_job(url).id] = "failed" if failing else "completed"
    seen = {}
    for result in client.as_completed(truth):
        assert result.job is not None
        seen[result.job_id] = result.job.status
        if result.ok:
            assert result.result().id == result.job_id
        else:
            assert isinstance(result.error, removebgvideo.JobFailedError)
            with pytest.raises(removebgvideo.JobFailedError):
                result.result()
    assert seen == truth


def test_async_for_over_as_completed(sandbox: Sandbox) -> None:
    async def main() -> dict[str, str]:
        client = removebgvideo.AsyncClient(sandbox.demo_key, base_url=sandbox.base_url, poll_policy=FAST_POLL)
        jobs = await asyncio.gather(*(client.create_job(f"{VIDEO}?duration={10 + i}") for i in range(20)))
        missing = "job_0000000000"
        ended = {}
        async for result in client.as_completed([j.id for j in jobs] + [missing]):
            ended[result.job_id] = result.job.status if result.job else type(result.error).__name__
        return ended

    ended = asyncio.run(main())
    assert list(ended.values()).count("completed") == 20
    assert ended["job_0000000000"] == "NotFoundError"


def test_a_process_exits_cleanly_with_waits_still_under_way(sandbox: Sandbox) -> None:
    """Engine threads still delivering as the interpreter stops must not abort the process."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import asyncio, logging, removebgvideo
        logging.basicConfig(level=logging.INFO)
        async def main():
            client = removebgvideo.AsyncClient({sandbox.demo_key!r}, base_url={sandbox.base_url!r},
                                               poll_policy=removebgvideo.PollPolicy(initial_interval=0.01, min_interval=0.01, max_interval=0.02))
            jobs = await asyncio.gather(*(client.create_job({VIDEO!r} + "?scenario=stuck&n=%d" % i) for i in range(50)))
            waits = [asyncio.ensure_future(client.wait(j.id)) for j in jobs]
            await asyncio.sleep(0.2)
            print("leaving with", sum(not w.done() for w in waits), "waits under way", flush=True)
        asyncio.run(main())
    """)
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "leaving with 50 waits under way" in done.stdout


def test_a_call_is_a_future_for_gather_and_a_coroutine_for_tasks(sandbox: Sandbox) -> None:
    async def main() -> None:
        client = removebgvideo.AsyncClient(sandbox.demo_key, base_url=sandbox.base_url, poll_policy=FAST_POLL)
        job = await client.create_job(f"{VIDEO}?duration=5")
        call = client.wait(job.id)
        assert asyncio.isfuture(call) and asyncio.iscoroutine(call)
        task = asyncio.create_task(client.get_job(job.id))
        done, read = await asyncio.gather(call, task)
        assert done.status == "completed" and read.id == job.id
        async with asyncio.TaskGroup() as group:
            grouped = group.create_task(client.get_job(job.id))
        assert grouped.result().id == job.id

    asyncio.run(main())


def test_ten_thousand_calls_made_at_once_all_settle(sandbox: Sandbox) -> None:
    """Calls queued faster than they are handed over (a few milliseconds' worth per turn of the
    loop) all reach the engine and all settle, each with its own outcome."""
    async def main() -> list[object]:
        client = removebgvideo.AsyncClient(sandbox.demo_key, base_url=sandbox.base_url)
        calls = [client.get_job("job_0000000000") for _ in range(10_000)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    assert len(results) == 10_000
    assert all(isinstance(r, removebgvideo.NotFoundError) for r in results)
