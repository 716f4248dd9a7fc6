"""Volumes to PET series: dcmforge against pydicom and against a floor, in one run.

    python benchmarks/bench_series.py            # W1, W2, W3 + command line + memory
    python benchmarks/bench_series.py --quick    # W1 and W3 only

The floor is numpy doing the unavoidable work: read the volume from its raw
file, scale each slice to uint16 in one pass, and write the same number of
files with the same byte sizes. pydicom writes the same series from a reused
template dataset. Output goes to a memory file system (/dev/shm), every run
into a new folder. Each round runs every tool once, in an order that rotates
from round to round; a tool's figure is the median of its per-round ratios to
the floor (and the median of its seconds), which holds up on a shared machine
better than a ratio of medians.

durable=True (fsync of every file and of the folders) is measured on the
disk that holds the system's temporary folder, against the same write
without it: on a memory file system an fsync costs nothing.

The multi-frame row writes the same volume as one Enhanced PET file
(write_series(..., multiframe=True)); its ratio is to the same floor.

Workloads: W1 160x160x200 float32 (a J-PET CASToR reconstruction), W2
440x440x600 (total-body size), W3 128x128x64.
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
from dcmforge import pixels  # noqa: E402

WORKLOADS = {"W1": (200, 160, 160), "W2": (600, 440, 440), "W3": (64, 128, 128)}
SPACING = (2.0, 2.0, 2.0)
METADATA = {
    "PatientName": "Bench^Phantom",
    "PatientID": "BENCH",
    "PatientWeight": 70.0,
    "StudyDate": "20250101",
    "StudyTime": "100000",
    "isotope": "F-18",
    "injected_activity": 3.7e8,
    "injection_datetime": "2025-01-01T09:00:00",
    "frame_duration": [600.0],
}
TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The command as the installed ``dcmforge`` script runs it (``python -m dcmforge.cli`` would add
# runpy's imports, about 4 ms, that the script does not pay).
DCMFORGE_COMMAND = [sys.executable, "-c", "import sys; from dcmforge.cli import command; sys.exit(command())"]


def make_volume(shape, path):
    """A smooth positive activity volume with a little noise, saved as raw float32."""
    rng = np.random.default_rng(7)
    nz, ny, nx = shape
    y, x = np.mgrid[:ny, :nx]
    plane = np.exp(-(((x - nx / 2) / (nx / 4)) ** 2 + ((y - ny / 2) / (ny / 4)) ** 2)).astype(np.float32)
    with open(path, "wb") as out:
        for k in range(nz):
            noise = rng.random((ny, nx), dtype=np.float32)
            (plane * (1000 + 10 * k) + noise).astype(np.float32).tofile(out)
    return np.memmap(path, np.float32, "r", shape=shape)


# -- the three writers ---------------------------------------------------------------


def floor(raw_path, shape, out_dir, header_size):
    """numpy: read, scale each slice to uint16 in one pass, write the same files."""
    out_dir.mkdir()
    volume = np.fromfile(raw_path, np.float32).reshape(shape)
    header = bytes(header_size)
    for k in range(shape[0]):
        plane = volume[k]
        stored = (plane * (65535.0 / plane.max())).astype(np.uint16)
        with open(out_dir / f"{k:04d}.dcm", "wb") as f:
            f.write(header)
            f.write(stored)


def dcmforge_series(raw_path, shape, out_dir, backend):
    volume = np.memmap(raw_path, np.float32, "r", shape=shape)
    dcmforge.write_series(volume, out_dir, spacing=SPACING, metadata=METADATA, backend=backend, seed=None)


def dcmforge_multiframe(raw_path, shape, out_dir, backend):
    """The same volume as one Enhanced PET file (which must name its radiopharmaceutical)."""
    volume = np.memmap(raw_path, np.float32, "r", shape=shape)
    metadata = {**METADATA, "radiopharmaceutical": "Fluorodeoxyglucose"}
    dcmforge.write_series(volume, out_dir, spacing=SPACING, metadata=metadata, backend=backend, multiframe=True)


def pydicom_writer(template_path):
    """pydicom writing the same series from one template dataset (read once, reused)."""
    import pydicom
    from pydicom.uid import generate_uid

    template = pydicom.dcmread(template_path)

    def write(raw_path, shape, out_dir):
        out_dir.mkdir()
        volume = np.fromfile(raw_path, np.float32).reshape(shape)
        for k in range(shape[0]):
            plane = volume[k]
            slope = float(plane.max()) / 65535.0
            template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            template.InstanceNumber = template.ImageIndex = k + 1
            template.ImagePositionPatient = [0.0, 0.0, k * SPACING[2]]
            template.SliceLocation = k * SPACING[2]
            template.RescaleSlope = f"{slope:.10g}"
            template.PixelData = (plane / slope).round().astype(np.uint16).tobytes()
            template.save_as(out_dir / f"{k:04d}.dcm", enforce_file_format=True)

    return write


# -- measuring -----------------------------------------------------------------------


def timed(function, *args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def timed_process(command, out, env):
    """Seconds of one whole process, command(out), writing into the folder out (removed afterwards)."""
    start = time.perf_counter()
    subprocess.run(command(out), env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    shutil.rmtree(out)
    return seconds


def rounds(tools, repeats, reference):
    """Run every tool once per round, the order rotating; {tool: (median seconds, median ratio to reference)}."""
    names = list(tools)
    seconds = {tool: [] for tool in names}
    ratios = {tool: [] for tool in names}
    for rep in range(repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        this_round = {tool: tools[tool](rep) for tool in order}
        for tool in names:
            seconds[tool].append(this_round[tool])
            ratios[tool].append(this_round[tool] / this_round[reference])
    return {tool: (statistics.median(seconds[tool]), statistics.median(ratios[tool])) for tool in names}


def bench_in_process(name, shape, work, repeats, with_pydicom=True):
    raw = work / f"{name}.raw"
    make_volume(shape, raw)
    first = work / f"{name}-warm"
    dcmforge_series(raw, shape, first, "numba")  # compiles/loads the kernels, and gives the template
    template = sorted(first.iterdir())[0]
    header_size = template.stat().st_size - shape[1] * shape[2] * 2
    tools = {
        "floor": lambda out: floor(raw, shape, out, header_size),
        "dcmforge (numba)": lambda out: dcmforge_series(raw, shape, out, "numba"),
        "dcmforge (numpy)": lambda out: dcmforge_series(raw, shape, out, "numpy"),
        "multiframe (numba)": lambda out: dcmforge_multiframe(raw, shape, out, "numba"),
    }
    if with_pydicom:
        tools["pydicom"] = lambda out: pydicom_writer(template)(raw, shape, out)

    def once(tool, run):
        def measured(rep):  # every run into a new folder
            out = work / f"{name}-{tool.split()[0]}-{rep}"
            seconds = timed(run, out)
            shutil.rmtree(out)
            return seconds

        return measured

    result = rounds({tool: once(tool, run) for tool, run in tools.items()}, repeats, "floor")
    shutil.rmtree(first)
    raw.unlink()
    return result


def bench_durable(shape, repeats):
    """write_series with and without durable=True, on the disk of the system's temporary folder."""
    disk = Path(tempfile.mkdtemp(prefix="dcmforge-durable-"))
    try:
        raw = disk / "volume.raw"
        make_volume(shape, raw)
        volume = np.memmap(raw, np.float32, "r", shape=shape)

        def write(durable):
            def measured(rep):
                out = disk / f"{'durable' if durable else 'plain'}-{rep}"
                start = time.perf_counter()
                dcmforge.write_series(volume, out, spacing=SPACING, metadata=METADATA, backend="numpy", durable=durable)
                seconds = time.perf_counter() - start
                shutil.rmtree(out)
                return seconds

            return measured

        return rounds({"plain": write(False), "durable=True": write(True)}, repeats, "plain")
    finally:
        shutil.rmtree(disk, ignore_errors=True)


FLOOR_SCRIPT = """
import sys, numpy as np
from pathlib import Path
raw, nz, ny, nx, out, header_size = sys.argv[1], *map(int, sys.argv[2:5]), Path(sys.argv[5]), int(sys.argv[6])
out.mkdir()
volume = np.fromfile(raw, np.float32).reshape(nz, ny, nx)
header = bytes(header_size)
for k in range(nz):
    plane = volume[k]
    stored = (plane * (65535.0 / plane.max())).astype(np.uint16)
    with open(out / f"{k:04d}.dcm", "wb") as f:
        f.write(header)
        f.write(stored)
"""


def bench_command_line(shape, work, repeats):
    """Whole-process time: `dcmforge convert` of an Interfile W1 against the floor as a script."""
    volume = np.asarray(make_volume(shape, work / "cli.raw"))
    header = dcmforge.write_interfile(work / "cli.hv", volume, spacing=SPACING, metadata=METADATA)
    header_size = None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: cached bytecode
    env["PYTHONPATH"] = str(ROOT / "src")
    commands = {
        "floor (process)": lambda out: [sys.executable, "-c", FLOOR_SCRIPT, str(work / "cli.raw"), *map(str, shape), str(out), str(header_size)],
        "dcmforge convert": lambda out: [*DCMFORGE_COMMAND, "-q", "convert", str(header), "--out", str(out)],
    }
    warm = work / "cli-warm"
    subprocess.run(commands["dcmforge convert"](warm), env=env, check=True)  # writes bytecode caches
    written = next(warm.rglob("*.dcm"))
    header_size = written.stat().st_size - shape[1] * shape[2] * 2

    def once(tool, command):
        return lambda rep: timed_process(command, work / f"cli-{rep}-{tool.split()[0]}", env)

    result = rounds({tool: once(tool, command) for tool, command in commands.items()}, repeats, "floor (process)")
    shutil.rmtree(warm)
    return result


MEMORY_SCRIPT = """
import json, resource, sys, tracemalloc, numpy as np
sys.path.insert(0, sys.argv[4])
import dcmforge
shape = tuple(json.loads(sys.argv[2]))
volume = np.memmap(sys.argv[1], np.float32, "r", shape=shape)
tracemalloc.start()
dcmforge.write_series(volume, sys.argv[3], spacing=(2, 2, 2), backend=sys.argv[5], metadata={"StudyDate": "20250101", "StudyTime": "100000"})
allocated = tracemalloc.get_traced_memory()[1]
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"allocated": allocated, "peak_rss": int(status["VmHWM"].split()[0]) * 1024}))
"""


def bench_memory(shape, work, backend):
    """Peak memory of a W2 conversion from a memmapped input, in a fresh process."""
    raw = work / "memory.raw"
    make_volume(shape, raw)
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(raw), json.dumps(shape), str(work / "memory-out"), str(ROOT / "src"), backend],
        check=True, capture_output=True, text=True,
    )
    shutil.rmtree(work / "memory-out")
    raw.unlink()
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="W1 and W3 only, fewer repeats")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    pixels.select_backend(0, "numba")
    one, five, fifteen = os.getloadavg()
    print(f"load average at the start (1, 5, 15 min): {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="dcmforge-bench-", dir=TMP_ROOT))
    try:
        rows = []
        plan = [("W1", 11, True), ("W3", 11, True)] + ([] if args.quick else [("W2", 5, True)])
        for name, repeats, with_pydicom in plan:
            rows.append((name, bench_in_process(name, WORKLOADS[name], work, repeats, with_pydicom)))
        cli = bench_command_line(WORKLOADS["W1"], work, 5 if args.quick else 9)
        durable = bench_durable(WORKLOADS["W1"], 3 if args.quick else 5)
        print(f"\nIn-process, output on {TMP_ROOT or 'the temporary folder'}; medians of seconds and of per-round ratios")
        print(f"{'workload':9} {'tool':18} {'seconds':>9} {'x floor':>8}")
        for name, result in rows:
            for tool, (seconds, ratio) in result.items():
                print(f"{name:9} {tool:18} {seconds:9.4f} {ratio:8.2f}")
        print("\nWhole process, W1 from an Interfile header (bytecode cached, as installed)")
        for tool, (seconds, ratio) in cli.items():
            print(f"{'W1':9} {tool:18} {seconds:9.4f} {ratio:8.2f}")
        print(f"\nW1 on the disk of {tempfile.gettempdir()}, numpy, ratio to the same write without durable")
        for tool, (seconds, ratio) in durable.items():
            print(f"{'W1':9} {tool:18} {seconds:9.4f} {ratio:8.2f}")
        if not args.quick:
            volume_bytes = int(np.prod(WORKLOADS["W2"])) * 4
            for backend in ("numpy", "numba"):
                memory = bench_memory(WORKLOADS["W2"], work, backend)
                print(
                    f"\nW2 from a memmap ({volume_bytes / 2**20:.0f} MiB), {backend}: peak allocated "
                    f"{memory['allocated'] / 2**20:.0f} MiB (tracemalloc), peak RSS {memory['peak_rss'] / 2**20:.0f} MiB "
                    "(RSS includes the memmap's file pages, which the kernel can drop)"
                )
        print("\nload average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
