"""Charts of the benchmark results: ``python charts.py RESULTS_DIR OUT_DIR``.

Reads whichever of these JSON files RESULTS_DIR holds (missing ones are skipped) and writes one
PNG per file to OUT_DIR: percall.json -> percall.png (median microseconds per job read, per
language and contender), coldstart.json -> coldstart.png (median start-up milliseconds),
polling.json -> polling.png (polls per job against detection lag, per poll policy),
batch.json -> batch.png (CPU seconds and HTTP requests per job, per flow), download.json ->
download.png (throughput per contender, and peak RSS against output size).

The images are small (7x4 in at 100 dpi) and carry no software or time metadata, so the same
results give the same bytes. Exits non-zero when RESULTS_DIR has none of the files.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import matplotlib.ticker  # noqa: E402

FIGSIZE = (7, 4)
DPI = 100
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def save(fig: Any, out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def barh(ax: Any, labels: List[str], values: List[float], unit: str, colors: List[str]) -> None:
    """Horizontal bars, top to bottom in the given order, each labelled with its value."""
    positions = list(range(len(labels)))[::-1]
    bars = ax.barh(positions, values, color=colors)
    ax.set_yticks(positions, labels)
    ax.bar_label(bars, labels=[f"{v:,.4g} {unit}".strip() for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, max(values) * 1.3 if values and max(values) > 0 else 1)
    ax.tick_params(axis="y", labelsize=8)


def percall(data: Dict[str, Any], out_dir: str) -> str:
    labels, values, colors = [], [], []
    for index, language in enumerate(lang for lang in ("rust", "python", "node") if lang in data):
        for contender in data[language]["contenders"]:
            labels.append(f"{language}: {contender['name']}")
            values.append(float(contender["median_us"]))
            colors.append(COLORS[index % len(COLORS)])
    fig, ax = plt.subplots(figsize=FIGSIZE)
    barh(ax, labels, values, "µs", colors)
    ax.set_xlabel("median µs per call (GET one job, parse JSON; lower is better)")
    ax.set_title("Per-call cost of reading a job")
    return save(fig, out_dir, "percall.png")


def coldstart(data: Dict[str, Any], out_dir: str) -> str:
    contenders = data["contenders"]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    barh(ax, [c["name"] for c in contenders], [float(c["median_ms"]) for c in contenders], "ms",
         [COLORS[i % len(COLORS)] for i in range(len(contenders))])
    ax.set_xlabel("median ms (lower is better)")
    ax.set_title("Cold start")
    return save(fig, out_dir, "coldstart.png")


def polling(data: Dict[str, Any], out_dir: str) -> str:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for index, policy in enumerate(data["policies"]):
        x, y = float(policy["polls_mean"]), float(policy["lag_mean_s"])
        ax.scatter([x], [y], color=COLORS[index % len(COLORS)], zorder=3)
        ax.annotate(policy["name"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.margins(x=0.2, y=0.15)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("mean polls per job (log scale)")
    ax.set_ylabel("mean detection lag (s)")
    ax.set_title(f"Poll policies over {data['jobs']} jobs (lower left is better)")
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, out_dir, "polling.png")


def batch(data: Dict[str, Any], out_dir: str) -> str:
    flows = data["flows"]
    labels = [f"{f['language']}: {f['flow']}" for f in flows]
    colors = [COLORS[i % len(COLORS)] for i in range(len(flows))]
    fig, (cpu_ax, req_ax) = plt.subplots(1, 2, figsize=FIGSIZE, sharey=True)
    barh(cpu_ax, labels, [round(float(f["cpu_s_per_job"]) * 1000, 2) for f in flows], "ms", colors)
    cpu_ax.set_xlabel("CPU ms per job")
    barh(req_ax, labels, [float(f["requests_per_job"]) for f in flows], "", colors)
    req_ax.set_xlabel("HTTP requests per job")
    fig.suptitle(f"Batch of {flows[0]['jobs']} jobs: create, start, wait" if flows else "Batch")
    return save(fig, out_dir, "batch.png")


def download(data: Dict[str, Any], out_dir: str) -> str:
    contenders = data["contenders"]
    fig, (speed_ax, rss_ax) = plt.subplots(1, 2, figsize=FIGSIZE)
    barh(speed_ax, [c["name"] for c in contenders], [float(c["throughput_mib_s"]) for c in contenders], "",
         [COLORS[i % len(COLORS)] for i in range(len(contenders))])
    speed_ax.set_xlabel(f"MiB/s ({data['size_bytes'] / 2**20:,.0f} MiB output)")
    names: List[str] = []
    for point in data.get("rss_by_size", []):
        if point["name"] not in names:
            names.append(point["name"])
    for index, name in enumerate(names):
        points = sorted((p for p in data["rss_by_size"] if p["name"] == name), key=lambda p: p["size_bytes"])
        rss_ax.plot([p["size_bytes"] / 2**20 for p in points], [float(p["peak_rss_mib"]) for p in points],
                    marker="o", color=COLORS[index % len(COLORS)], label=name)
    rss_ax.set_xlabel("output size (MiB)")
    rss_ax.set_ylabel("peak RSS (MiB)")
    if names:
        rss_ax.legend(fontsize=7)
    rss_ax.grid(True, alpha=0.3)
    fig.suptitle("Downloading the output")
    return save(fig, out_dir, "download.png")


CHARTS: Dict[str, Callable[[Dict[str, Any], str], str]] = {
    "percall.json": percall,
    "coldstart.json": coldstart,
    "polling.json": polling,
    "batch.json": batch,
    "download.json": download,
}


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: python charts.py RESULTS_DIR OUT_DIR", file=sys.stderr)
        return 2
    results_dir, out_dir = sys.argv[1], sys.argv[2]
    present = [name for name in CHARTS if os.path.isfile(os.path.join(results_dir, name))]
    if not present:
        print(f"charts.py: {results_dir} holds none of {', '.join(CHARTS)}", file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    for name in present:
        with open(os.path.join(results_dir, name), encoding="utf-8") as handle:
            data = json.load(handle)
        print(CHARTS[name](data, out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
