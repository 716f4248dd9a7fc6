"""Time the pixel packing backends and derive the "auto" threshold.

    PYTHONPATH=src python benchmarks/bench_kernels.py [--repeat N]

Prints, for float32 volumes W1 (160x160x200) and W2 (440x440x600), the time of
the writer's two passes (slice_extrema then pack_slices, in chunks of 32
slices) with each backend, and the one-off costs a fresh process pays before
the first numba kernel returns: importing numba, then loading each cached
kernel, with numba's cache filled (the script fills it first) and, once, with
an empty cache (the first run after installing: the kernels compile).  The
break-even voxel count is one-off cost / (numpy - numba time per voxel).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

# Run from a checkout as well as from an installed dcmforge.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src"))

from dcmforge import pixels

WORKLOADS = {"W1": (200, 160, 160), "W2": (600, 440, 440)}
CHUNK = 32

# Runs in a fresh interpreter: the one-off costs of the numba backend.
FRESH_PROCESS = """
import json, time
import numpy as np
t0 = time.perf_counter()
from dcmforge import pixels
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
src = np.ones((2, 4, 4), np.float32)
mins, maxs = pixels.slice_extrema(src, 0, "numba")
t3 = time.perf_counter()
out = np.empty(src.shape, np.uint16)
pixels.pack_slices(src, *pixels.plan_slice_scaling(mins, maxs, src.dtype, "PT"), out, "numba")
t4 = time.perf_counter()
print(json.dumps({"import pixels": t1 - t0, "import numba": t2 - t1,
                  "load extrema kernel": t3 - t2, "load pack kernel": t4 - t3}))
"""


def fresh_process_costs(repeat, env=None):
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", FRESH_PROCESS], check=True,
                                  capture_output=True, text=True, env=env).stdout)
        for _ in range(repeat)
    ]
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def numba_one_off(costs):
    return costs["import numba"] + costs["load extrema kernel"] + costs["load pack kernel"]


def convert(volume, out, backend):
    """The writer's two passes over volume, chunk by chunk: their times in seconds."""
    chunks = [(k0, min(k0 + CHUNK, len(volume))) for k0 in range(0, len(volume), CHUNK)]
    start = time.perf_counter()
    extrema = [pixels.slice_extrema(volume[k0:k1], k0, backend) for k0, k1 in chunks]
    mins, maxs = (np.concatenate(e) for e in zip(*extrema))
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
    middle = time.perf_counter()
    for k0, k1 in chunks:
        pixels.pack_slices(volume[k0:k1], *(a[k0:k1] for a in scaling), out[: k1 - k0], backend)
    return middle - start, time.perf_counter() - middle


def best_times(volume, out, backend, repeat):
    runs = [convert(volume, out, backend) for _ in range(repeat)]
    return min(runs, key=sum)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    warm = np.ones((2, 4, 4), np.float32)
    convert(warm, np.empty((CHUNK, 4, 4), np.uint16), "numba")  # fill numba's cache

    costs = fresh_process_costs(args.repeat)
    with tempfile.TemporaryDirectory() as empty_cache:
        cold = fresh_process_costs(1, dict(os.environ, NUMBA_CACHE_DIR=empty_cache))
    print(f"fresh process: median of {args.repeat} with numba's cache filled | once with it empty")
    for name, seconds in costs.items():
        print(f"  {name:22s} {seconds * 1e3:8.0f} ms | {cold[name] * 1e3:8.0f} ms")
    one_off = numba_one_off(costs)
    print(f"  {'numba one-off total':22s} {one_off * 1e3:8.0f} ms | {numba_one_off(cold) * 1e3:8.0f} ms"
          " (float32 only; each other voxel type compiles again)")

    rng = np.random.default_rng(0)
    print(f"\n{'workload':9s} {'voxels':>12s} {'backend':8s} {'extrema s':>10s} {'pack s':>8s} "
          f"{'total s':>8s} {'ns/voxel':>9s}")
    per_voxel = {}
    for name, shape in WORKLOADS.items():
        volume = rng.random(shape, dtype=np.float32) * 1000.0
        out = np.empty((CHUNK,) + shape[1:], np.uint16)
        for backend in ("numpy", "numba"):
            extrema, pack = best_times(volume, out, backend, args.repeat)
            per_voxel[name, backend] = (extrema + pack) / volume.size * 1e9
            print(f"{name:9s} {volume.size:12,d} {backend:8s} {extrema:10.3f} {pack:8.3f} "
                  f"{extrema + pack:8.3f} {per_voxel[name, backend]:9.2f}")
        del volume

    # The largest workload gives the steadiest rates.
    saving = per_voxel["W2", "numpy"] - per_voxel["W2", "numba"]
    print(f"\nnumba saves {saving:.2f} ns per voxel on W2; its one-off {one_off:.2f} s is paid back "
          f"from {one_off / (saving * 1e-9):,.0f} voxels "
          f"(pixels.NUMBA_MIN_VOXELS = {pixels.NUMBA_MIN_VOXELS:,d})")
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(numba's threads slow down most when the cores are busy)")


if __name__ == "__main__":
    main()
