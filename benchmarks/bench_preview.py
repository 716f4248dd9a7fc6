"""What a preview picture costs: write_series with and without preview=True, in one run.

    python benchmarks/bench_preview.py            # W1 and W3, 9 runs each
    python benchmarks/bench_preview.py --repeats 5

W1 160x160x200 and W3 128x128x64 float32, memory-mapped from raw files on
/dev/shm, written to /dev/shm (every run into a new folder), the two ways
alternated; the table shows medians and the extra time of the preview. The
single-frame series and the one Enhanced PET file are measured alike. The
last columns split the preview's own work: the projections taken from the
chunks (ProjectionAccumulator.add over the whole volume) and drawing the
picture and its PNG. backend "auto" (numpy for volumes this size in a
process that has not loaded numba), as a user gets it.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bench_series import METADATA, SPACING, WORKLOADS, make_volume

import dcmforge
from dcmforge.preview import ProjectionAccumulator, preview_path, write_preview

TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None
MULTIFRAME_METADATA = {**METADATA, "radiopharmaceutical": "Fluorodeoxyglucose"}


def write(raw, shape, out, preview, multiframe):
    volume = np.memmap(raw, np.float32, "r", shape=shape)
    metadata = MULTIFRAME_METADATA if multiframe else METADATA
    dcmforge.write_series(volume, out, spacing=SPACING, metadata=metadata, multiframe=multiframe, preview=preview)


def parts(raw, shape, out):
    """(seconds to accumulate the projections of the whole volume, seconds to draw and write the PNG)."""
    volume = np.memmap(raw, np.float32, "r", shape=shape)
    start = time.perf_counter()
    accumulator = ProjectionAccumulator(shape)
    accumulator.add(volume, 0, 0)
    added = time.perf_counter()
    write_preview(out, accumulator, np.diag([*SPACING, 1.0]), "PT")
    return added - start, time.perf_counter() - added


def bench(name, shape, work, repeats):
    raw = work / f"{name}.raw"
    make_volume(shape, raw)
    runs = {
        ("series", False): [], ("series", True): [], ("multiframe", False): [], ("multiframe", True): [],
    }  # fmt: skip
    split = []
    write(raw, shape, work / f"{name}-warm", True, False)  # imports and caches, not timed
    for rep in range(repeats):
        for (kind, preview), times in runs.items():  # alternated, every run into a new folder
            out = work / f"{name}-{kind}-{preview}-{rep}"
            start = time.perf_counter()
            write(raw, shape, out, preview, kind == "multiframe")
            times.append(time.perf_counter() - start)
            shutil.rmtree(out)
            preview_path(out).unlink(missing_ok=True)
        split.append(parts(raw, shape, work / f"{name}-parts-{rep}"))
    return {key: statistics.median(times) for key, times in runs.items()}, [statistics.median(s) for s in zip(*split)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(f"{'workload':9} {'writer':11} {'no preview':>11} {'preview':>9} {'extra':>8} {'ratio':>6} "
          f"{'projections':>12} {'picture+PNG':>12}")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=TMP_ROOT) as folder:
        for name in ("W1", "W3"):
            medians, (added, drawn) = bench(name, WORKLOADS[name], Path(folder), args.repeats)
            for kind in ("series", "multiframe"):
                without, with_preview = medians[(kind, False)], medians[(kind, True)]
                print(f"{name:9} {kind:11} {without:11.4f} {with_preview:9.4f} {with_preview - without:8.4f} "
                      f"{with_preview / without:6.2f} {added:12.4f} {drawn:12.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
