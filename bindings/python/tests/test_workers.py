"""``Batch`` on a shared PostgreSQL ledger (a real server, started for these tests): one batch run
by several workers at once, and the Dask example, where each task runs one partition and a task
that runs twice makes no job."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import threading
from typing import Any, Dict, Iterator, List

import pytest

from removebgvideo import Batch, Client, PollPolicy
from removebgvideo.testing import Sandbox

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
REPO = pathlib.Path(__file__).resolve().parents[3]


def _testpg() -> str:
    """The test server's launcher: ``REMOVEBGVIDEO_TESTPG`` (set by ``cargo xtask ci``), else
    cargo's debug build."""
    return os.environ.get("REMOVEBGVIDEO_TESTPG") or str(REPO / "target" / "debug" / "removebgvideo-testpg")


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL server; stopped when its launcher's stdin closes."""
    launcher = subprocess.Popen([_testpg()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert launcher.stdout is not None and launcher.stdin is not None
    line = launcher.stdout.readline()
    assert line, f"{_testpg()} started no server (exit {launcher.wait()})"
    try:
        yield json.loads(line)["url"]
    finally:
        launcher.stdin.close()
        launcher.wait(timeout=60)


def _rows(n: int) -> List[Dict[str, Any]]:
    return [{"key": f"w-{i}", "video_url": f"https://example.com/w/{i}.mp4?duration=2", "model": "light"}
            for i in range(n)]


def _client(sandbox: Sandbox) -> Client:
    return sandbox.client(poll_policy=PollPolicy(initial_interval=0.02, max_interval=0.2, min_interval=0.01))


def _jobs_made(sandbox: Sandbox) -> int:
    total = sandbox.client().list_jobs(limit=1).total
    assert total is not None
    return total


def test_workers_share_one_batch_in_a_postgresql_ledger(postgres_url: str, tmp_path: pathlib.Path) -> None:
    with Sandbox(speed=1000) as sandbox:
        items = _rows(60)
        summaries: List[Any] = []

        def work(n: int) -> None:
            batch = Batch(items=items, ledger=postgres_url, batch="shared", out=tmp_path / f"w{n}",
                          client=_client(sandbox), max_in_flight=8, lease=5)
            summaries.append(batch.run())

        threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(summaries) == 3
        assert all(s.complete and s.progress.done == 60 for s in summaries)
        assert _jobs_made(sandbox) == 60, "each item made one job, whichever worker ran it"
        events = Batch(items=items, ledger=postgres_url, batch="shared", out=tmp_path / "w0").events("w-0")
        assert events[0].kind == "planned" and all(e.worker for e in events)


def test_the_dask_example_runs_partitions_and_a_second_run_makes_no_job(postgres_url: str, tmp_path: pathlib.Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dask.distributed")
    # The cluster's worker processes import the example by name, as they would an installed
    # module of the pipeline's own.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import dask_batch
    with Sandbox(speed=1000) as sandbox:
        items = _rows(40)
        settings = dict(ledger=postgres_url, batch="dask", out=str(tmp_path), api_key=sandbox.demo_key,
                        base_url=sandbox.base_url, n_partitions=4, n_workers=2)
        first = dask_batch.run_on_dask(items, **settings)
        assert len(first) == 4 and all(part["complete"] for part in first)
        assert _jobs_made(sandbox) == 40
        # Dask may run a task again: the same partitions once more make no job.
        again = dask_batch.run_on_dask(items, **settings)
        assert all(part["done"] == 40 for part in again)
        assert _jobs_made(sandbox) == 40
