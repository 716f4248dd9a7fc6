"""Batch throughput: a sequential run, --jobs 2 and --dask local:2 on the same inputs, in one run.

    python benchmarks/bench_batch.py                 # 200 W3 inputs (128x128x64 float32), each way once
    python benchmarks/bench_batch.py --count 40 --repeats 2

Each way is the real command (``python -m dcmforge.cli convert ... --report``)
in a subprocess, so its time includes starting Python, the pool or the
LocalCluster and numba's cached kernels: what a user waits for. The ways
alternate when repeated; inputs and output are on a memory file system
(/dev/shm), every run into a new folder.

Per way: wall time, series per second, and the overhead per input: the
worker time that did not go into convert_one ((wall x workers - the sum of
the reports' per-input seconds) / inputs). The last lines: the median
per-input conversion time on a Dask worker and what one single-threaded
worker sustains per hour at that cost plus the Dask overhead per input (the
LocalCluster's start-up included, so on a long-running cluster a little more).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import dcmforge  # noqa: E402

SHAPE = (64, 128, 128)  # W3, [z, y, x]
TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None
WAYS = {"sequential": ((), 1), "--jobs 2": (("--jobs", "2"), 2), "--dask local:2": (("--dask", "local:2"), 2)}


def make_inputs(folder, count):
    """count W3-sized STIR Interfile images: smooth activity plus noise, different per input."""
    rng = np.random.default_rng(12)
    nz, ny, nx = SHAPE
    y, x = np.mgrid[:ny, :nx]
    plane = np.exp(-(((x - nx / 2) / (nx / 4)) ** 2 + ((y - ny / 2) / (ny / 4)) ** 2)).astype(np.float32)
    base = plane[None] * np.linspace(900, 1100, nz, dtype=np.float32)[:, None, None]
    return [
        dcmforge.write_interfile(folder / f"recon{n:03d}.hv", base + rng.random(SHAPE, dtype=np.float32),
                                 spacing=(2.0, 2.0, 2.0))  # fmt: skip
        for n in range(count)
    ]


def run_way(name, headers, root, run):
    """Wall seconds and the report's lines of one run of the command."""
    options, _ = WAYS[name]
    out = root / f"out-{run}-{name.strip('-').replace(' ', '-').replace(':', '')}"
    report = root / f"report-{run}.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "dcmforge.cli", "-q", "convert", *map(str, headers), "--out", str(out),
               "--report", str(report), "--seed", "bench", *options]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == len(headers) and {line["status"] for line in lines} == {"converted"}
    shutil.rmtree(out)
    return wall, lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="inputs (default 200)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each way, alternated (default 1)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-batch-", dir=TMP_ROOT))
    try:
        headers = make_inputs(root, args.count)
        walls = {name: [] for name in WAYS}
        seconds = {name: [] for name in WAYS}
        for run in range(args.repeats):
            for name in WAYS:
                wall, lines = run_way(name, headers, root, run)
                walls[name].append(wall)
                seconds[name].append([line["seconds"] for line in lines])
        print(f"{args.count} inputs of {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} float32, {os.cpu_count()} cores, "
              f"median of {args.repeats} run(s) per way, output on {TMP_ROOT or 'the temporary folder'}")  # fmt: skip
        print(f"{'way':<16} {'wall s':>8} {'series/s':>9} {'convert_one s':>14} {'overhead/input ms':>18}  all walls")
        overheads, costs = {}, {}
        for name, (_, workers) in WAYS.items():
            run = min(range(args.repeats), key=lambda r: abs(walls[name][r] - statistics.median(walls[name])))
            wall, per_input = walls[name][run], seconds[name][run]
            overheads[name] = (wall * workers - sum(per_input)) / args.count
            costs[name] = statistics.median(per_input)
            print(f"{name:<16} {wall:8.1f} {args.count / wall:9.2f} {costs[name]:14.3f} "
                  f"{overheads[name] * 1000:18.0f}  {' '.join(f'{w:.1f}' for w in walls[name])}")  # fmt: skip
        dask = "--dask local:2"
        per_hour = 3600 / (costs[dask] + overheads[dask])
        print(f"on a Dask worker: {costs[dask] * 1000:.0f} ms per input + {overheads[dask] * 1000:.0f} ms overhead: "
              f"one single-threaded worker sustains about {per_hour:,.0f} series of this size per hour")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
