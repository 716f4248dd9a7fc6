"""Sending series to a local Orthanc with DICOMweb STOW-RS: dcmforge.send against curl, in one run.

    python benchmarks/bench_send.py              # W1 and W3, 5 runs each
    python benchmarks/bench_send.py --repeats 9

The floor is curl posting the same multipart bodies (the same batches of the
same files, built beforehand on /dev/shm, so curl does no work but HTTP; without
"Expect: 100-continue", which would make curl wait a second per request for an
answer Orthanc does not give): what any client pays for Orthanc to receive and
store the instances. dcmforge reads
each file's meta group, builds the body as it streams it and parses each
answer. Orthanc (Debian packages orthanc + orthanc-dicomweb) runs on 127.0.0.1
with its storage on /dev/shm and is emptied (not timed) before every run, so
every run stores every instance; the tools are alternated and the table shows
medians of instances per second.

Workloads: W1 160x160x200 float32 -> 200 PET files, W3 128x128x64 -> 64 files.
"""

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the Orthanc fixture the tests use

import dcmforge  # noqa: E402
from dcmforge.sending import dicomweb  # noqa: E402
from dcmforge.sending.instances import read_instance  # noqa: E402
from orthanc import Orthanc  # noqa: E402

WORKLOADS = {"W1": (200, 160, 160), "W3": (64, 128, 128)}
METADATA = {"PatientName": "Bench^Send", "PatientID": "BENCH-SEND", "StudyDate": "20250101", "StudyTime": "100000"}
TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None


def write_workload(name, shape, root):
    volume = (np.random.default_rng(7).random(shape, dtype=np.float32) * 1000).astype(np.float32)
    return dcmforge.write_series(volume, root / name, spacing=(2, 2, 2), modality="PT", metadata=METADATA)


def curl_bodies(paths, root):
    """The multipart bodies dcmforge would send, one file per batch, and their boundaries."""
    instances = [read_instance(p) for p in paths]
    bodies = []
    for number, batch in enumerate(
        dicomweb.plan_batches(instances, dicomweb.DEFAULT_BATCH_INSTANCES, dicomweb.DEFAULT_BATCH_BYTES)
    ):
        boundary = dicomweb.new_boundary()
        body = root / f"body-{number}.bin"
        with open(body, "wb") as f:
            f.writelines(dicomweb.body_pieces(batch, boundary))
        bodies.append((body, boundary))
    return bodies


def send_with_curl(bodies, url):
    for body, boundary in bodies:
        subprocess.run(
            ["curl", "-sS", "--fail", "-o", "/dev/null", "-X", "POST", "-H", f"Content-Type: {dicomweb.content_type(boundary)}",
             "-H", "Accept: application/dicom+json", "-H", "Expect:", "--data-binary", f"@{body}", f"{url}/studies"],
            check=True,
        )  # fmt: skip


def send_with_dcmforge(folder, url):
    report = dcmforge.send(folder, url)
    if not report.ok:
        raise SystemExit(f"dcmforge.send failed: {report.summary()}")


def main():
    logging.basicConfig(level=logging.ERROR)  # the workload's metadata warnings are not the point here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=TMP_ROOT) as tmp:
        root = Path(tmp)
        server = Orthanc(root / "orthanc").start()
        try:
            print("| workload | files | curl (floor) | dcmforge.send | dcmforge's time / floor's |\n|---|---|---|---|---|")
            for name, shape in WORKLOADS.items():
                paths = write_workload(name, shape, root)
                (root / f"{name}-bodies").mkdir()
                bodies = curl_bodies(paths, root / f"{name}-bodies")
                tools = {"curl": (send_with_curl, bodies), "dcmforge": (send_with_dcmforge, paths[0].parent)}
                times = {tool: [] for tool in tools}
                for _ in range(args.repeats):
                    for tool, (run, what) in tools.items():
                        server.delete_everything()
                        start = time.perf_counter()
                        run(what, server.dicomweb)
                        times[tool].append(time.perf_counter() - start)
                        if len(server.get("/instances")) != len(paths):
                            raise SystemExit(f"{tool} did not store all {len(paths)} instances")
                rate = {tool: len(paths) / statistics.median(t) for tool, t in times.items()}
                size = "x".join(map(str, reversed(shape)))
                print(f"| {name} {size} | {len(paths)} | {rate['curl']:.0f}/s | {rate['dcmforge']:.0f}/s "
                      f"| {rate['curl'] / rate['dcmforge']:.2f}x |", flush=True)  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    main()
