"""One batch split across a Dask cluster: each task runs ``Batch`` on one partition of the items
against one shared PostgreSQL ledger.

Every task names the same ``batch`` and ``ledger``: the ledger holds each item once (its key),
each worker process claims the items it runs (leases, renewed by a heartbeat), and a worker that
dies leaves its items to the others once its leases lapse. A task that runs twice (Dask may run
a task again after a worker is lost) finds its items done and makes no job. Ray works the same
way: call ``run_partition`` from a ``@ray.remote`` function.

    python dask_batch.py postgresql://user@db/ledger spring-2026 items.jsonl
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

import removebgvideo


def run_partition(items: Sequence[Mapping[str, Any]], *, ledger: str, batch: str, out: str,
                  api_key: Optional[str] = None, base_url: Optional[str] = None) -> Dict[str, Any]:
    """Runs one partition (rows with the manifest's columns) in the shared batch; returns the
    batch's counts as this task saw them when it ended."""
    client = removebgvideo.Client(api_key, base_url=base_url)
    summary = removebgvideo.Batch(items=items, ledger=ledger, batch=batch, out=out, client=client).run()
    progress = summary.progress
    return {"done": progress.done, "failed": progress.failed, "total": progress.total,
            "complete": summary.complete}


def partitions(items: Sequence[Mapping[str, Any]], n: int) -> List[List[Mapping[str, Any]]]:
    """``items`` in ``n`` partitions of about the same size."""
    return [list(items[i::n]) for i in range(n)]


def run_on_dask(items: Sequence[Mapping[str, Any]], *, ledger: str, batch: str, out: str,
                n_partitions: int = 4, n_workers: int = 2, api_key: Optional[str] = None,
                base_url: Optional[str] = None) -> List[Dict[str, Any]]:
    """Runs the batch on a local cluster of ``n_workers`` processes (any Dask cluster works the
    same way: pass its client instead)."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True) as cluster, \
            Client(cluster) as dask:
        futures = dask.map(run_partition, partitions(items, n_partitions), ledger=ledger, batch=batch,
                           out=out, api_key=api_key, base_url=base_url, pure=False)
        return list(dask.gather(futures))


if __name__ == "__main__":
    url, batch_id, manifest = sys.argv[1:4]
    with open(manifest, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    print(json.dumps(run_on_dask(rows, ledger=url, batch=batch_id, out="out"), indent=2))
