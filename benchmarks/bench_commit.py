"""What the series commit itself costs: the private folder, its lock, the rename; and an overwrite's check.

    python benchmarks/bench_commit.py                     # this checkout's src
    python benchmarks/bench_commit.py --src /tmp/old/src  # another checkout's, to compare

On a memory file system (/dev/shm), CPU time of this process (user + system,
steadier than wall time on a shared machine), median of 5 rounds:

* a one-file series: SeriesFolder, one 132-byte file, commit (2000 of them in one parent);
* an overwrite of a 600-file series by another of 600 files (20 of them): the
  check that every old file is a Part 10 file reads 4 bytes of each, twice.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PART10 = bytes(128) + b"DICM"


def one_file_series(SeriesFolder, root, count=2000):
    start = time.process_time()
    for n in range(count):
        with SeriesFolder(os.path.join(root, f"s{n}")) as folder:
            folder.write("PT_0001.dcm", [PART10])
            folder.commit()
    return (time.process_time() - start) / count


def overwrites(SeriesFolder, root, count=20, files=600):
    series = os.path.join(root, "big")
    start = None
    for n in range(count + 1):
        if n == 1:  # the first one writes the series that the others replace
            start = time.process_time()
        with SeriesFolder(series, overwrite=True) as folder:
            for k in range(files):
                folder.write(f"PT_{k:04d}.dcm", [PART10, bytes(8000)])
            folder.commit()
    return (time.process_time() - start) / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", default=str(ROOT / "src"), help="the src folder of the dcmforge to measure")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, args.src)
    from dcmforge.write.commit import SeriesFolder

    print("load average at the start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    single, replaced = [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as root:
            single.append(one_file_series(SeriesFolder, root))
            replaced.append(overwrites(SeriesFolder, root))
    print(f"{args.src}: one-file series {statistics.median(single) * 1e6:.0f} us CPU; "
          f"600-file overwrite {statistics.median(replaced) * 1e3:.1f} ms CPU")  # fmt: skip
    print("load average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
