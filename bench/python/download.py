"""One download of a job's output through the Python package, in a process of its own.

Why: pipelines fetch large outputs; the transfer must run at the network's speed and its
memory must not grow with the file (the Rust client streams it to a part file and renames it
into place). Prints one JSON object: bytes, seconds, MiB/s and the process's peak RSS.

    python download.py --base-url URL --key KEY --job-id ID --out PATH
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import removebgvideo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    client = removebgvideo.Client(api_key=args.key, base_url=args.base_url)
    started = time.perf_counter()
    download = client.download(args.job_id, args.out, overwrite=True)
    seconds = time.perf_counter() - started
    on_disk = os.path.getsize(args.out)
    if on_disk != download.bytes:
        raise SystemExit(f"{on_disk} bytes on disk, {download.bytes} reported")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "bytes": download.bytes,
        "seconds": round(seconds, 3),
        "throughput_mib_s": round(download.bytes / seconds / 1048576, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }))


if __name__ == "__main__":
    main()
