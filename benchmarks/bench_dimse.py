"""Sending series to dcmtk's storescp with DIMSE C-STORE: dcmforge.send against storescu, in one run.

    python benchmarks/bench_dimse.py              # W1 and W3, 5 runs each
    python benchmarks/bench_dimse.py --repeats 9

The floor is dcmtk's storescu sending the same files to the same storescp
(one association, the contexts storescu proposes for them): what any client
pays for storescp to receive and write the instances. dcmforge reads each
file's meta group, proposes one context per SOP class, streams each data set
in fragments of storescp's maximum PDU length (16 KiB) and waits for each
C-STORE-RSP, as storescu does. storescp runs on 127.0.0.1 writing to /dev/shm;
its folder is emptied (not timed) before every run. The tools are alternated,
the table shows medians of instances per second, and the load average is
printed (the machine is shared).

Two storescp setups: as installed, and with dcmtk's TCP_NODELAY=1 (for storescp
and storescu), which turns Nagle's algorithm off in dcmtk. As installed, each
small C-STORE-RSP waits for the client's delayed ACK (about 40 ms on Linux)
unless the client acknowledges at once: dcmforge asks for that (TCP_QUICKACK),
storescu does not.

Workloads: W1 160x160x200 float32 -> 200 PET files, W3 128x128x64 -> 64 files.
"""

import argparse
import logging
import os
import shutil
import signal
import socket
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

WORKLOADS = {"W1": (200, 160, 160), "W3": (64, 128, 128)}
METADATA = {"PatientName": "Bench^Dimse", "PatientID": "BENCH-DIMSE", "StudyDate": "20250101", "StudyTime": "100000"}
TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None
AE = "STORESCP"


def write_workload(name, shape, root):
    volume = (np.random.default_rng(7).random(shape, dtype=np.float32) * 1000).astype(np.float32)
    return dcmforge.write_series(volume, root / name, spacing=(2, 2, 2), modality="PT", metadata=METADATA)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SETUPS = {"as installed": {}, "TCP_NODELAY=1": {"TCP_NODELAY": "1"}}


def start_storescp(folder, port, log, env):
    command = ["storescp", "--aetitle", AE, "-od", str(folder), str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ, **env})
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    os.kill(process.pid, signal.SIGTERM)
    raise SystemExit("storescp did not start")


def send_with_storescu(paths, port, env):
    command = ["storescu", "-aec", AE, "127.0.0.1", str(port), *map(str, paths)]
    subprocess.run(command, check=True, env={**os.environ, **env})


def send_with_dcmforge(paths, port, env):
    report = dcmforge.send(paths, f"dicom://{AE}@127.0.0.1:{port}")
    if not report.ok:
        raise SystemExit(f"dcmforge.send failed: {report.summary()}")


def main():
    logging.basicConfig(level=logging.ERROR)  # the workload's metadata warnings are not the point here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (shutil.which("storescp") and shutil.which("storescu")):
        raise SystemExit("dcmtk's storescp and storescu are needed (apt-get install dcmtk)")
    with tempfile.TemporaryDirectory(dir=TMP_ROOT) as tmp:
        root = Path(tmp)
        received = root / "received"
        received.mkdir()
        workloads = {name: write_workload(name, shape, root) for name, shape in WORKLOADS.items()}
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("| workload | files | storescp | storescu (floor) | dcmforge.send | dcmforge's time / floor's |")
        print("|---|---|---|---|---|---|")
        for setup, env in SETUPS.items():
            port = free_port()
            with open(root / "storescp.log", "ab") as log:
                server = start_storescp(received, port, log, env)
            try:
                for name, paths in workloads.items():
                    tools = {"storescu": send_with_storescu, "dcmforge": send_with_dcmforge}
                    times = {tool: [] for tool in tools}
                    for _ in range(args.repeats):
                        for tool, run in tools.items():
                            for old in received.iterdir():
                                old.unlink()
                            start = time.perf_counter()
                            run(paths, port, env)
                            times[tool].append(time.perf_counter() - start)
                            if len(list(received.iterdir())) != len(paths):
                                raise SystemExit(f"{tool} did not store all {len(paths)} instances")
                    rate = {tool: len(paths) / statistics.median(t) for tool, t in times.items()}
                    size = "x".join(map(str, reversed(WORKLOADS[name])))
                    print(f"| {name} {size} | {len(paths)} | {setup} | {rate['storescu']:.0f}/s | {rate['dcmforge']:.0f}/s "
                          f"| {rate['storescu'] / rate['dcmforge']:.2f}x |", flush=True)  # fmt: skip
            finally:
                os.kill(server.pid, signal.SIGTERM)
                server.wait(timeout=20)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

if __name__ == "__main__":
    main()
