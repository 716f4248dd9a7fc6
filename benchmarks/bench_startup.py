"""One small file per process: what a workflow engine's one-conversion-per-job pays.

    python benchmarks/bench_startup.py            # 15 rounds
    python benchmarks/bench_startup.py --rounds 5

Whole processes on W3 (128x128x64 float32 -> 64 PET files), outputs on a memory
file system (/dev/shm), bytecode cached as an installed package has it:

* the floor: python + numpy reading the raw volume, scaling each slice to uint16 and
  writing 64 files of the same sizes (no DICOM encoding at all);
* ``dcmforge convert`` of the same volume as an Interfile header + raw data;
* ``dcmforge convert`` of the same volume as a NIfTI-1 file;
* the floor with the standard library a command needs and the floor does not (argparse
  with one parser, logging, json, tomllib): what the command spends above it is dcmforge's
  own imports and work;
* the floor with Python's cyclic garbage collector as the command sets it for one input
  (``dcmforge.cli.command``: off while it runs, every object frozen before the exit, so that
  neither start-up nor shutdown traverses numpy's and the modules' objects), savings the
  floor as the issue defines it does not take.

Each round runs the five in an order that rotates from round to round; a figure
is the median of the per-round ratios. Then, in fresh processes:

* dcmforge's own imports in a one-input NIfTI convert: the sum of the self times
  ``python -X importtime`` reports for dcmforge's modules (median and fastest of 9 runs), and the
  same for the standard library's modules the command imports and the floor's does not
  (argparse, logging, json, tomllib, ...);
* the per-series fixed cost: write_series of a 1x4x4 volume (plan, validation, header,
  one file, commit), median of 200 calls after a warm-up; every series of one metadata (as
  a loop writing the frames of one study), then each series with its own SeriesDescription
  (what a process remembers of a metadata it has resolved does not apply).

The load average is printed before and after: on a busy machine every figure grows,
the ratios least.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_series import DCMFORGE_COMMAND, FLOOR_SCRIPT, METADATA, SPACING, make_volume, rounds, timed_process  # noqa: E402

import dcmforge  # noqa: E402

SHAPE = (64, 128, 128)
COMMAND_IMPORTS = "import argparse, json, logging, tomllib\nargparse.ArgumentParser().parse_args([])\n"
TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None

FIXED_COST_SCRIPT = """
import logging, statistics, sys, time, numpy as np
import dcmforge
logging.disable(logging.WARNING)
out, metadata = sys.argv[1], eval(sys.argv[2])
volume = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
for own in (False, True):  # every series the same metadata, then each its own SeriesDescription
    times = []
    for n in range(220):
        given = {**metadata, "SeriesDescription": f"series {n}"} if own else metadata
        start = time.perf_counter()
        dcmforge.write_series(volume, f"{out}/{own}-{n}", spacing=(2, 2, 2), metadata=given, backend="numpy")
        times.append(time.perf_counter() - start)
    print(statistics.median(times[20:]))
"""


def nifti_file(volume, path):
    """A NIfTI-1 single file of the volume ([z, y, x] stored x fastest), RAS sform of the same spacing."""
    header = bytearray(352)
    fields = {  # offset: (struct type, value)
        0: ("<i4", 348), 40: ("<i2", [3, SHAPE[2], SHAPE[1], SHAPE[0], 1, 1, 1, 1]), 70: ("<i2", 16), 72: ("<i2", 32),
        76: ("<f4", [1.0, *SPACING, 0, 0, 0, 0]), 108: ("<f4", 352.0), 123: ("u1", 10), 254: ("<i2", 2),
        280: ("<f4", [SPACING[0], 0, 0, 0]), 296: ("<f4", [0, SPACING[1], 0, 0]), 312: ("<f4", [0, 0, SPACING[2], 0]),
    }  # fmt: skip
    for offset, (kind, value) in fields.items():
        data = np.asarray(value, kind).tobytes()
        header[offset : offset + len(data)] = data
    header[344:348] = b"n+1\0"
    with open(path, "wb") as out:
        out.write(header)
        out.write(np.ascontiguousarray(volume, np.float32).tobytes())
    return path


def whole_processes(work, repeats):
    volume = np.asarray(make_volume(SHAPE, work / "w3.raw"))
    interfile = dcmforge.write_interfile(work / "w3.hv", volume, spacing=SPACING, metadata=METADATA)
    nifti = nifti_file(volume, work / "w3n.nii")
    meta = work / "meta.toml"
    meta.write_text("\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in METADATA.items()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: cached bytecode
    env["PYTHONPATH"] = str(ROOT / "src")
    convert = [*DCMFORGE_COMMAND, "-q", "convert"]
    header_size = None
    commands = {
        "floor (process)": lambda out: [sys.executable, "-c", FLOOR_SCRIPT, str(work / "w3.raw"), *map(str, SHAPE),
                                        str(out), str(header_size)],  # fmt: skip
        # The same with the standard library a command needs and the floor does not: arguments, a logger,
        # JSON and TOML (what is left above it is dcmforge's own).
        "floor + command stdlib": lambda out: [sys.executable, "-c", COMMAND_IMPORTS + FLOOR_SCRIPT,
                                               str(work / "w3.raw"), *map(str, SHAPE), str(out), str(header_size)],  # fmt: skip
        # The floor with the collector as the command sets it for one input (cli.command): off, and every object
        # frozen before the exit; the command's ratio to it is what it spends above a floor run the same way.
        "floor, command's GC": lambda out: [sys.executable, "-c", "import gc\ngc.disable()\n" + FLOOR_SCRIPT
                                            + "gc.freeze()\n", str(work / "w3.raw"), *map(str, SHAPE), str(out),
                                            str(header_size)],  # fmt: skip
        "convert Interfile": lambda out: [*convert, str(interfile), "--out", str(out), "--meta", str(meta)],
        "convert NIfTI": lambda out: [*convert, str(nifti), "--out", str(out), "--meta", str(meta)],
    }
    for tool in ("convert Interfile", "convert NIfTI"):  # writes the bytecode caches; checks the commands work
        subprocess.run(commands[tool](work / "warm"), env=env, check=True)
        header_size = next((work / "warm").rglob("*.dcm")).stat().st_size - SHAPE[1] * SHAPE[2] * 2
        shutil.rmtree(work / "warm")

    def once(tool, command):
        return lambda rep: timed_process(command, work / f"out-{rep}-{tool.split()[-1]}", env)

    ratios = rounds({tool: once(tool, command) for tool, command in commands.items()}, repeats, "floor (process)")
    over_command_floor = rounds(
        {tool: once(tool, commands[tool]) for tool in ("convert Interfile", "floor + command stdlib")}, repeats,
        "floor + command stdlib")  # fmt: skip
    nifti_to_interfile = rounds(
        {tool: once(tool, commands[tool]) for tool in ("convert NIfTI", "convert Interfile")}, repeats,
        "convert Interfile")  # fmt: skip
    return ratios, nifti_to_interfile["convert NIfTI"][1], over_command_floor["convert Interfile"][1], (nifti, meta, env)


def import_times(nifti, meta, env, work, runs=9):
    """(dcmforge's, the other modules') summed self times (µs) of a one-input NIfTI convert's imports, each as
    (median, fastest) over runs: the machine's noise only adds, so the fastest run is the closest to what
    the imports cost; "other" counts only the modules the floor's process (python, numpy, pathlib) does
    not import."""
    floor_modules = set(_self_times([sys.executable, "-X", "importtime", "-c", "import sys, numpy, pathlib"], env))
    own, other = [], []
    for run in range(runs):
        times = _self_times([sys.executable, "-X", "importtime", *DCMFORGE_COMMAND[1:], "-q", "convert", str(nifti),
                             "--out", str(work / f"imports-{run}"), "--meta", str(meta)], env)  # fmt: skip
        own.append(sum(us for name, us in times.items() if name.startswith("dcmforge")))
        other.append(sum(us for name, us in times.items() if not name.startswith("dcmforge") and name not in floor_modules))
    return (statistics.median(own), min(own)), (statistics.median(other), min(other))


def _self_times(command, env):
    """{module: self µs} that ``python -X importtime`` reports for ``command``."""
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    times = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            self_us, _, name = line[len("import time:") :].split("|")
            if self_us.strip().isdigit():
                times[name.strip()] = int(self_us)
    return times


def fixed_cost(env, work):
    done = subprocess.run([sys.executable, "-c", FIXED_COST_SCRIPT, str(work / "fixed"), repr(METADATA)], env=env,
                          check=True, capture_output=True, text=True)  # fmt: skip
    return [float(line) for line in done.stdout.split()[-2:]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print("load average at the start (1, 5, 15 min): {:.1f} {:.1f} {:.1f} on {} cores".format(*os.getloadavg(),
                                                                                               os.cpu_count()))
    work = Path(tempfile.mkdtemp(prefix="dcmforge-startup-", dir=TMP_ROOT))
    try:
        ratios, nifti_ratio, command_floor_ratio, (nifti, meta, env) = whole_processes(work, args.rounds)
        imports, other_imports = import_times(nifti, meta, env, work)
        per_series = fixed_cost(env, work)
        print(f"\nW3 whole processes, outputs on {TMP_ROOT or 'the temporary folder'}, bytecode cached; "
              f"medians of {args.rounds} rounds")  # fmt: skip
        print(f"{'tool':24} {'seconds':>8} {'x floor':>8}")
        for tool, (seconds, ratio) in ratios.items():
            print(f"{tool:24} {seconds:8.3f} {ratio:8.2f}")
        print(f"convert NIfTI / convert Interfile (their own alternating rounds): {nifti_ratio:.2f}")
        print(f"convert Interfile / floor + command stdlib (their own alternating rounds): {command_floor_ratio:.2f}")
        print("dcmforge's own imports in a one-input NIfTI convert (-X importtime, self times): {:.1f} ms, fastest "
              "run {:.1f} ms; the standard library's the floor's process does not import: {:.1f} ms, fastest {:.1f} ms"
              .format(*(us / 1000 for us in (*imports, *other_imports))))  # fmt: skip
        print(f"per-series fixed cost (write_series of 1x4x4: plan, validation, one file, commit): "
              f"{per_series[0] * 1000:.2f} ms; {per_series[1] * 1000:.2f} ms when each series has its own "
              "SeriesDescription")  # fmt: skip
        print("load average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
