"""``Batch`` against a sandbox: results as they finish (sync and ``async for``), resume without
a second job, the budget, status, events and the report, and the shared manifest vectors."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any, Dict, List

import pytest

import removebgvideo
from removebgvideo import Batch, BatchItemResult, BatchProgress, Client, PollPolicy, ValidationError, check_manifest
from removebgvideo.testing import Sandbox

from conftest import vectors


def fast(sandbox: Sandbox) -> Client:
    return sandbox.client(poll_policy=PollPolicy(initial_interval=0.02, max_interval=0.2, min_interval=0.01))


def rows(prefix: str, n: int, fail_every: int = 0) -> List[Dict[str, Any]]:
    out = []
    for i in range(n):
        scenario = "&scenario=fail" if fail_every and i % fail_every == fail_every - 1 else ""
        out.append({"key": f"{prefix}-{i}", "video_url": f"https://example.com/{prefix}/{i}.mp4?duration=2{scenario}",
                    "model": "light", "metadata": {"user": f"u{i}"}})
    return out


def test_a_batch_yields_every_item_once_as_it_finishes_and_a_rerun_resumes(fresh_sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    sandbox = fresh_sandbox
    client = fast(sandbox)
    seen: List[BatchProgress] = []
    batch = Batch(items=rows("sync", 12, fail_every=4), out=tmp_path, client=client, max_in_flight=4,
                  on_progress=seen.append)
    results = list(batch)
    assert sorted(r.key for r in results) == sorted(f"sync-{i}" for i in range(12))
    assert all(isinstance(r, BatchItemResult) for r in results)
    done = [r for r in results if r.ok]
    failed = [r for r in results if r.outcome == "failed"]
    assert (len(done), len(failed)) == (9, 3)
    for r in done:
        assert r.output is not None and pathlib.Path(r.output.path).stat().st_size == r.output.size
        assert r.context["metadata"]["user"] == "u" + r.key.split("-")[1]
    assert all(r.error is not None and r.error["code"] == "job_failed" for r in failed)
    assert batch.summary is not None and not batch.summary.complete
    assert batch.summary.ledger["commits"] >= 12 * 3, "every item's steps are in the ledger"
    assert seen and seen[-1] == batch.summary.progress
    assert max(p.in_flight for p in seen) <= 4

    jobs = len(json.loads(json.dumps(sandbox.request_log())))
    again = Batch(items=rows("sync", 12, fail_every=4), out=tmp_path, client=client).run()
    assert again.progress.done == 9
    created = [r for r in sandbox.request_log() if r["method"] == "POST" and r["path"] == "/v1/jobs"]
    assert len({r["idempotency_key"] for r in created}) == 12, "no job made twice"
    assert len(sandbox.request_log()) == jobs, "a finished batch sends nothing"

    status = batch.status()
    assert status.total == 12 and status.phases["done"] == 9 and status.phases["failed"] == 3
    kinds = [e.kind for e in batch.events("sync-0")]
    assert kinds[0] == "planned" and "created" in kinds and kinds[-1] == "output"
    report = batch.report()
    assert report.data["models"][0]["model"] == "light"
    assert report.data["usage"]["differences"] == []
    assert "<svg" in report.html and "| light |" in report.markdown


def test_async_for_runs_a_manifest_file(sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    manifest = tmp_path / "videos.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows("aio", 8)))

    async def main() -> List[BatchItemResult]:
        batch = Batch(manifest, out=tmp_path / "out", client=fast(sandbox))
        got = [r async for r in batch]
        assert batch.summary is not None and batch.summary.complete
        return got

    results = asyncio.run(main())
    assert sorted(r.key for r in results) == sorted(f"aio-{i}" for i in range(8))
    assert (tmp_path / "out" / "results.jsonl").read_text().count("\n") == 8


def test_leaving_the_loop_stops_new_work_and_the_batch_resumes(fresh_sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    client = fast(fresh_sandbox)
    items = rows("stop", 30)
    batch = Batch(items=items, out=tmp_path, client=client, max_in_flight=3)
    for result in batch:
        assert result.ok
        break
    # Results come as items end: leaving after the first stopped the run long before the end.
    assert batch.summary is not None and batch.summary.cancelled
    assert batch.summary.progress.done < 30
    summary = Batch(items=items, out=tmp_path, client=client).run()
    assert summary.complete
    created = [r for r in fresh_sandbox.request_log() if r["method"] == "POST" and r["path"] == "/v1/jobs"]
    assert len({r["idempotency_key"] for r in created}) == 30


def test_a_budget_holds_back_what_would_pass_it(fresh_sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    # 2 s of `light` costs 2 credits: 5 credits start two jobs, the rest wait.
    summary = Batch(items=rows("budget", 6), out=tmp_path, client=fast(fresh_sandbox), budget_credits=5).run()
    assert summary.progress.done == 2 and summary.progress.held == 4
    assert summary.progress.credits_committed <= 5


def test_bad_arguments_and_bad_rows_name_their_field(sandbox: Sandbox, tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValidationError) as caught:
        Batch(items=[{"video_url": "ftp://x"}, {"model": "light"}], out=tmp_path, client=fast(sandbox)).run()
    paths = {p.path for p in caught.value.problems}
    assert {"/1/video_url", "/2/video_url"} <= paths
    with pytest.raises(ValidationError) as caught:
        Batch(out=tmp_path, client=fast(sandbox), max_in_flight=0).run()
    assert {p.path for p in caught.value.problems} == {"/manifest", "/max_in_flight"}


@pytest.mark.parametrize("vector", vectors("manifests.json"), ids=lambda v: v["name"][:40])
def test_shared_manifest_vectors(vector: Dict[str, Any]) -> None:
    if "problems" in vector:
        with pytest.raises(ValidationError) as caught:
            check_manifest(vector["text"], vector["format"])
        found = sorted((p.path, p.code) for p in caught.value.problems)
        assert found == sorted((p["path"], p["code"]) for p in vector["problems"])
    else:
        assert check_manifest(vector["text"], vector["format"]) == vector["keys"]
