"""Batch conversion (issue 12): convert_many and ``convert --dask/--report/--resume`` on real Dask processes.

A scheduler and two single-threaded workers run as processes (``dask scheduler``,
``dask worker``) on 127.0.0.1 with free ports, started once for the module and
stopped by their process ids. A sitecustomize hook on the workers' path kills
the worker process that reads a header named *die-worker* (as the OOM killer
would); nothing else changes. Inputs are small Interfile images written by
dcmforge.write_interfile; series are read back with pydicom.
"""

import contextlib
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

distributed = pytest.importorskip("distributed")

import dcmforge  # noqa: E402
from dcmforge import batch  # noqa: E402
from dcmforge.batch import (  # noqa: E402
    MANIFEST_NAME,
    ConversionTask,
    append_record,
    convert_many,
    read_manifest,
    run_task,
)
from dcmforge.convert import OPTIONS, convert_one  # noqa: E402
from worker_killer import worker_killer  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
SHAPE = (4, 8, 8)  # [z, y, x]: four files per series
# The scheduler gives a task up after its worker died this many times more than once (KilledWorker).
ALLOWED_FAILURES = 1

def environment(hooks=None):
    """This process's environment with the worktree's dcmforge (and the hooks) first on the path."""
    env = dict(os.environ)
    paths = [str(hooks)] if hooks else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = str(ALLOWED_FAILURES)
    return env


def dask_command():
    return [str(Path(sys.executable).with_name("dask"))]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(scheduler address, Client, worker processes): one scheduler and two workers, stopped by pid."""
    root = tmp_path_factory.mktemp("dask")
    hooks = worker_killer(root / "hooks")
    scheduler_file = root / "scheduler.json"
    logs = []
    processes = []

    def start(*args):
        log = open(root / f"process-{len(processes)}.log", "w")
        logs.append(log)
        processes.append(subprocess.Popen([*dask_command(), *args], stdout=log, stderr=subprocess.STDOUT,
                                          env=environment(hooks), cwd=root, start_new_session=True))  # fmt: skip

    local = ("--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0")
    start("scheduler", "--port", "0", "--scheduler-file", str(scheduler_file), *local)
    deadline = time.monotonic() + 60
    while not scheduler_file.exists():
        assert processes[0].poll() is None and time.monotonic() < deadline, (root / "process-0.log").read_text()
        time.sleep(0.2)
    time.sleep(0.2)  # the file is written whole right after it appears
    address = json.loads(scheduler_file.read_text())["address"]
    for _ in range(2):
        start("worker", address, "--nworkers", "1", "--nthreads", "1", *local)
    client = distributed.Client(address, timeout=60)
    try:
        client.wait_for_workers(2, timeout=120)
        yield address, client
    finally:
        client.close()
        for process in reversed(processes):  # each in its own session: the nanny's worker goes with it
            with_children(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with_children(process.pid, signal.SIGKILL)
                process.wait()
        for log in logs:
            log.close()


def with_children(pid, sig):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def client(cluster):
    """The cluster's Client, both workers up (a test before may have had one killed)."""
    _, client = cluster
    client.wait_for_workers(2, timeout=120)
    return client


def make_inputs(folder, count, shape=SHAPE):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    return [
        dcmforge.write_interfile(folder / f"in{n:02d}.hv", rng.random(shape, dtype=np.float32), spacing=(2, 2, 3))
        for n in range(count)
    ]


def bad_input(folder):
    header = folder / "broken.hv"
    header.write_text("this is not an Interfile header\n")
    return header


def series_folders(out):
    """Names of the series folders in out (hidden files, such as the manifest, aside)."""
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def whole_series(folder, shape=SHAPE):
    """The SeriesInstanceUID of a folder that holds one whole series of shape[0] files, read by pydicom."""
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"PT_{n:04d}.dcm" for n in range(1, shape[0] + 1)], folder
    datasets = [pydicom.dcmread(f) for f in files]
    assert [int(d.InstanceNumber) for d in datasets] == list(range(1, shape[0] + 1))
    assert all(d.pixel_array.shape == shape[1:] for d in datasets)
    uids = {d.SeriesInstanceUID for d in datasets}
    assert len(uids) == 1, folder
    return uids.pop()


def run_command(*args, env=None):
    return subprocess.run([sys.executable, "-m", "dcmforge.cli", *map(str, args)], capture_output=True, text=True,
                          env=env or environment(), timeout=600)  # fmt: skip


def report_lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def busy(client):
    """Tasks the scheduler holds plus those the workers still execute (a killed command's keep running)."""
    executing = client.run(lambda dask_worker: len(dask_worker.state.executing))
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) + sum(executing.values())


def wait_until_idle(client):
    """Until no task of a killed command is left anywhere."""
    deadline = time.monotonic() + 120
    while busy(client):
        assert time.monotonic() < deadline, "the scheduler kept its tasks"
        time.sleep(0.2)


@contextlib.contextmanager
def own_scheduler(root, workers=0):
    """(address, [scheduler, worker...]): a scheduler of the test's own and its workers, as processes in
    sessions of their own, stopped by their ids (SIGKILL, whatever is still running) at the end."""
    root.mkdir(parents=True, exist_ok=True)
    local = ("--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0")
    processes = []
    with open(root / "dask.log", "w") as log:
        def start(*args):
            processes.append(subprocess.Popen([*dask_command(), *args], stdout=log, stderr=subprocess.STDOUT,
                                              env=environment(), cwd=root, start_new_session=True))  # fmt: skip

        try:
            start("scheduler", "--port", "0", "--scheduler-file", str(root / "scheduler.json"), *local)
            deadline = time.monotonic() + 60
            while not (root / "scheduler.json").exists():
                assert processes[0].poll() is None and time.monotonic() < deadline, (root / "dask.log").read_text()
                time.sleep(0.2)
            time.sleep(0.2)  # the file is written whole right after it appears
            address = json.loads((root / "scheduler.json").read_text())["address"]
            for _ in range(workers):
                start("worker", address, "--nworkers", "1", "--nthreads", "1", *local)
            yield address, processes
        finally:
            for process in processes:
                with_children(process.pid, signal.SIGKILL)
                process.wait()


def test_a_scheduler_without_workers_is_told_after_the_wait(tmp_path):
    headers = make_inputs(tmp_path / "in", 1)
    with own_scheduler(tmp_path / "dask") as (address, _):
        done = subprocess.run([sys.executable, "-m", "dcmforge.cli", "convert", *map(str, headers), "--out",
                               str(tmp_path / "out"), "--dask", address, "--dask-wait", "2"], capture_output=True,
                              text=True, env=environment(), timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"--dask {address}: no Dask worker joined the scheduler in 2 s "
                                        "(--dask-wait SECONDS to wait longer)"]  # fmt: skip
    assert os.listdir(tmp_path / "out") == []


def test_a_scheduler_killed_mid_batch_leaves_a_report_that_matches_the_disk(tmp_path):
    """What a worker committed is reported converted, the rest failed; no traceback; exit status 1."""
    headers = make_inputs(tmp_path / "in", 8, (24, 64, 64))
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    with own_scheduler(tmp_path / "dask", workers=1) as (address, (scheduler, _)):
        command = subprocess.Popen([sys.executable, "-m", "dcmforge.cli", "convert", *map(str, headers), "--out",
                                    str(out), "--dask", address, "--report", str(report)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=environment())  # fmt: skip
        deadline = time.monotonic() + 120
        while len(read_manifest(out / MANIFEST_NAME)) < 2:  # the second is written just before its rename
            assert command.poll() is None and time.monotonic() < deadline, command.communicate()
            time.sleep(0.02)
        with_children(scheduler.pid, signal.SIGKILL)
        stdout, stderr = command.communicate(timeout=120)
    lines = {line["input"]: line for line in report_lines(report)}
    assert sorted(lines) == sorted(map(str, headers))  # one line each
    converted = sorted(Path(i).stem for i, line in lines.items() if line["status"] == "converted")
    assert converted == series_folders(out) == sorted(Path(r).stem for r in read_manifest(out / MANIFEST_NAME))
    assert len(converted) >= 2 and {line["status"] for line in lines.values()} == {"converted", "failed"}
    for name in converted:
        assert whole_series(out / name, (24, 64, 64)) == lines[str(tmp_path / "in" / f"{name}.hv")]["series_uid"]
    failed = [i for i, line in lines.items() if line["status"] == "failed"]
    said = [line for line in stderr.splitlines() if ": warning: " not in line]  # a converted input's warnings beside
    assert sorted(said) == sorted(lines[i]["message"] for i in failed), stderr  # and no traceback
    assert all("not converted: the Dask scheduler was lost" in lines[i]["message"] for i in failed)
    assert len(stdout.splitlines()) >= len(converted) and command.returncode == 1


# --- on a running scheduler ----------------------------------------------------------------------


def test_batch_on_a_cluster_with_a_bad_input(cluster, client, tmp_path):
    address, _ = cluster
    headers = make_inputs(tmp_path / "in", 6)
    broken = bad_input(tmp_path / "in")
    report = tmp_path / "report.jsonl"
    done = run_command("convert", *headers, broken, "--out", tmp_path / "out", "--dask", address, "--report", report)
    assert done.returncode == 2, done.stderr
    assert [line for line in done.stderr.splitlines() if "broken.hv" in line] == [
        f"{broken}: no 'key := value' line found: this is not an Interfile header"
    ]
    assert series_folders(tmp_path / "out") == [h.stem for h in headers]
    lines = {line["input"]: line for line in report_lines(report)}
    assert sorted(lines) == sorted(map(str, [*headers, broken]))
    assert lines[str(broken)]["status"] == "bad input"
    for header in headers:
        line = lines[str(header)]
        assert line["status"] == "converted" and line["files"] == SHAPE[0]
        assert line["series_uid"] == whole_series(tmp_path / "out" / header.stem)
        folder = tmp_path / "out" / header.stem
        assert line["nbytes"] == sum(f.stat().st_size for f in folder.iterdir())
        assert line["out_dir"] == str(folder) and line["dcmforge"] == dcmforge.__version__
        assert line["options"]["seed"] is None and line["seconds"] > 0
        assert line["host"] and line["pid"] not in (0, os.getpid())
        assert any(w.startswith("corrections: not in the input") for w in line["warnings"])
    # the workers' processes did the work, not the command's
    assert {lines[str(h)]["pid"] for h in headers} <= set(client.run(os.getpid).values())


def can_hide_folders():
    """Whether this process may start a command in a mount namespace of its own (root, unshare)."""
    try:
        return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


@contextlib.contextmanager
def worker_seeing_another(client, address, folder, tmp_path, then="true"):
    """A third worker for which folder is an empty tmpfs (after the shell command then, run there): its address."""
    before = set(client.scheduler_info()["workers"])
    script = f'mount -t tmpfs tmpfs "$0" && {then} && exec "$@"'
    hide = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(folder), *dask_command(),
            "worker", address, "--no-nanny", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
            "--dashboard-address", "127.0.0.1:0"]  # fmt: skip
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(hide, stdout=log, stderr=subprocess.STDOUT, env=environment(), start_new_session=True)
    try:
        client.wait_for_workers(3, timeout=120)
        (third,) = set(client.scheduler_info()["workers"]) - before
        yield third
    finally:
        with_children(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    deadline = time.monotonic() + 60
    while len(client.scheduler_info()["workers"]) > 2:
        assert time.monotonic() < deadline, "the third worker did not leave"
        time.sleep(0.2)


@pytest.mark.skipif(not can_hide_folders(), reason="needs unshare --mount (root) to hide a folder from a worker")
def test_an_input_a_worker_cannot_see_is_named_before_anything_converts(cluster, client, tmp_path):
    address, _ = cluster
    seen = make_inputs(tmp_path / "in", 1)[0]
    hidden = make_inputs(tmp_path / "hidden", 2)[1]
    with worker_seeing_another(client, address, tmp_path / "hidden", tmp_path) as third:
        done = run_command("convert", seen, hidden, "--out", tmp_path / "out", "--dask", address)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{hidden}: the Dask worker {third} cannot see it; inputs and --out must be on a file system "
        "the workers share, at the same path"
    ]
    assert series_folders(tmp_path / "out") == []  # nothing ran


@pytest.mark.skipif(not can_hide_folders(), reason="needs unshare --mount (root) to hide a folder from a worker")
@pytest.mark.parametrize("elsewhere", ["out", "input"])
def test_a_worker_that_sees_another_out_or_input_at_the_same_path_is_named(cluster, client, tmp_path, elsewhere):
    """The worker sees a folder at --out (or a file at an input's path), but not the client's."""
    address, _ = cluster
    header = make_inputs(tmp_path / "in", 1)[0]
    out = tmp_path / "out"
    out.mkdir()
    other = make_inputs(tmp_path / "other", 1)[0]  # another in00.hv, another size and time
    os.utime(other, ns=(0, 0))
    folder, then = (out, "true") if elsewhere == "out" else (tmp_path / "in", f'cp -p "{other}" "$0"')
    with worker_seeing_another(client, address, folder, tmp_path, then) as third:
        done = run_command("convert", header, "--out", out, "--dask", address)
    assert done.returncode == 2, done.stderr
    share = "inputs and --out must be on a file system the workers share, at the same path"
    [line] = done.stderr.splitlines()
    if elsewhere == "out":
        assert re.fullmatch(f"{re.escape(str(out))}: the Dask worker {third} sees another folder there \\(not the "
                            f"file \\.dcmforge-token-[0-9a-f]{{32}} this command wrote in it\\); {share}", line), line
    else:
        here = header.stat()
        assert line == (f"{header}: the Dask worker {third} sees another file there ({other.stat().st_size} bytes, "
                        f"modified 0 ns, here {here.st_size} bytes, modified {here.st_mtime_ns} ns); {share}")
    assert sorted(os.listdir(out)) == []  # nothing converted, the token gone


def test_resume_after_an_interrupted_batch_converts_only_the_rest(cluster, client, tmp_path):
    address, _ = cluster
    headers = make_inputs(tmp_path / "in", 10)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dcmforge.cli", "convert", *map(str, headers), "--out", str(out),
               "--dask", address, "--seed", "resume"]  # fmt: skip
    interrupted = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment())
    manifest = out / MANIFEST_NAME
    deadline = time.monotonic() + 120
    while len(read_manifest(manifest)) < 3 and interrupted.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    interrupted.kill()  # the command dies; what it sent may still finish on the workers
    interrupted.wait()
    wait_until_idle(client)
    before = {f: (f.stat().st_mtime_ns, f.stat().st_ino) for f in out.rglob("*.dcm")}
    first = set(read_manifest(manifest))
    assert 3 <= len(first) and before

    report = tmp_path / "resumed.jsonl"
    done = subprocess.run([*command, "--resume", "--report", str(report)], capture_output=True, text=True,
                          env=environment(), timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    statuses = {line["input"]: line["status"] for line in report_lines(report)}
    assert statuses == {str(h): "skipped" if str(h) in first else "converted" for h in headers}
    assert series_folders(out) == [h.stem for h in headers]
    uids = {h.stem: whole_series(out / h.stem) for h in headers}
    assert len(set(uids.values())) == len(headers)
    assert {f: (f.stat().st_mtime_ns, f.stat().st_ino) for f in before} == before  # nothing rewritten

    # once more: everything is skipped, nothing written, the same UIDs (--seed)
    again = run_command(*command[3:], "--resume", "--report", report)
    assert again.returncode == 0, again.stderr
    assert {line["status"] for line in report_lines(report)} == {"skipped"}
    assert {line["series_uid"] for line in report_lines(report)} == set(uids.values())


def test_a_worker_killed_mid_batch_loses_nothing(client, tmp_path):
    shape = (24, 96, 96)  # big enough that the kill most likely lands in the middle of a conversion
    headers = make_inputs(tmp_path / "in", 12, shape)
    out = tmp_path / "out"
    results = []
    killed = None
    for result in convert_many(headers, out, executor=client, seed="kill"):
        results.append(result)
        if killed is None:
            # SIGKILL a worker's process (its nanny starts a new one): its tasks run again elsewhere
            busy = [address for address, keys in client.processing().items() if keys] or list(client.processing())
            killed = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(killed, signal.SIGKILL)
    assert killed is not None
    assert sorted(r.input for r in results) == sorted(map(str, headers))  # one result per input
    assert {r.status for r in results} == {"converted"}, [r.message for r in results if r.status != "converted"]
    assert series_folders(out) == [h.stem for h in headers]  # exactly one series per input
    for result in results:
        assert whole_series(Path(result.out_dir), shape) == result.series_uid


def test_a_task_that_kills_every_worker_it_runs_on_fails_alone(client, tmp_path):
    headers = make_inputs(tmp_path / "in", 3)
    doomed = dcmforge.write_interfile(tmp_path / "in" / "die-worker.hv", np.ones(SHAPE, np.float32), spacing=(1, 1, 1))
    results = {r.input: r for r in convert_many([doomed, *headers], tmp_path / "out", executor=client)}
    failed = results.pop(os.path.abspath(doomed))
    assert failed.status == "failed" and failed.exit_status == 1
    assert failed.message.startswith(f"{doomed}: its worker died {ALLOWED_FAILURES + 1} times"), failed.message
    assert "killed by signal 9" in failed.message or "SIGKILL" in failed.message, failed.message
    assert {r.status for r in results.values()} == {"converted"}
    assert series_folders(tmp_path / "out") == [h.stem for h in headers]


def test_a_worker_killed_right_after_its_rename_leaves_a_series_that_the_rerun_reports(client, tmp_path):
    """The worker dies between the series folder's rename and the end of its task: Dask runs the task again."""
    headers = make_inputs(tmp_path / "in", 2)
    doomed = dcmforge.write_interfile(tmp_path / "in" / "die-after-commit.hv", np.ones(SHAPE, np.float32),
                                      spacing=(1, 1, 1))  # fmt: skip
    out = tmp_path / "out"
    results = {Path(r.input).name: r for r in convert_many([doomed, *headers], out, executor=client, seed="kill")}
    assert (out / ".die-after-commit.killed").exists()  # its first try was killed right after the rename
    again = results["die-after-commit.hv"]
    assert (again.status, again.files) == ("converted", SHAPE[0]), again.message
    assert again.message.endswith("committed by an earlier try whose worker died")
    assert whole_series(out / "die-after-commit") == again.series_uid
    assert {r.status for r in results.values()} == {"converted"}
    assert series_folders(out) == ["die-after-commit", "in00", "in01"]


# --- one machine ---------------------------------------------------------------------------------


def test_local_cluster_and_jobs_give_the_same_folders_and_uids(tmp_path):
    headers = make_inputs(tmp_path / "in", 4) + make_inputs(tmp_path / "again", 1)  # two named in00
    runs = {}
    for name, how in (("local", ("--dask", "local:2")), ("jobs", ("--jobs", "2"))):
        done = run_command("convert", *headers, "--out", tmp_path / name, "--seed", "same", *how)
        assert done.returncode == 0, done.stderr
        folders = series_folders(tmp_path / name)
        runs[name] = {f: [pydicom.dcmread(p).SOPInstanceUID for p in sorted((tmp_path / name / f).iterdir())]
                      for f in folders}  # fmt: skip
    assert sorted(runs["jobs"]) == ["again_in00", "in01", "in02", "in03", "in_in00"]
    assert runs["local"] == runs["jobs"]


def test_import_dcmforge_and_jobs_never_import_dask(tmp_path):
    headers = make_inputs(tmp_path / "in", 2)
    script = (
        "import sys, dcmforge\n"
        "dcmforge.convert_many, dcmforge.ConversionResult\n"
        "from dcmforge.cli import main\n"
        f"status = main(['convert', *sys.argv[1:], '--out', {str(tmp_path / 'out')!r}, '--jobs', '2'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print(status, loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *map(str, headers)], capture_output=True, text=True,
                          env=environment(), timeout=300)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr
    assert series_folders(tmp_path / "out") == ["in00", "in01"]


def test_a_dead_pool_process_fails_only_its_input_with_how_it_ended(tmp_path):
    hooks = worker_killer(tmp_path / "hooks")
    headers = make_inputs(tmp_path / "in", 2)
    doomed = dcmforge.write_interfile(tmp_path / "in" / "die-worker.hv", np.ones(SHAPE, np.float32), spacing=(1, 1, 1))
    report = tmp_path / "report.jsonl"
    done = run_command("convert", doomed, *headers, "--out", tmp_path / "out", "--jobs", "2", "--report", report,
                       env=environment(hooks))  # fmt: skip
    assert done.returncode == 1, done.stderr
    statuses = {line["input"]: (line["status"], line["message"]) for line in report_lines(report)}
    assert statuses[str(doomed)] == ("failed", f"{doomed}: the process converting it was killed by SIGKILL "
                                               "(killed, or out of memory)")  # fmt: skip
    assert series_folders(tmp_path / "out") == ["in00", "in01"]


# --- the manifest --------------------------------------------------------------------------------


def test_manifest_reader_skips_a_torn_line_and_the_next_record_survives_it(tmp_path):
    manifest = tmp_path / MANIFEST_NAME
    append_record(manifest, {"input": "/a", "files": 1})
    with open(manifest, "a") as stream:
        stream.write('{"input": "/b", "fi')  # a write cut short
    append_record(manifest, {"input": "/c", "files": 3})
    append_record(manifest, {"input": "/a", "files": 2})
    assert read_manifest(manifest) == {"/a": [{"input": "/a", "files": 1}, {"input": "/a", "files": 2}],
                                       "/c": [{"input": "/c", "files": 3}]}  # fmt: skip


def test_resume_converts_an_input_again_when_it_or_the_options_changed(tmp_path):
    headers = make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert [r.status for r in convert_many(headers, out, seed="x")] == ["converted"] * 2
    assert [r.status for r in convert_many(headers, out, seed="x", resume=True)] == ["skipped"] * 2
    assert [r.status for r in convert_many(headers, out, seed="x", resume=True, durable=True)] == ["skipped"] * 2
    os.utime(headers[0], ns=(0, 0))  # the first input is newer (or older) than its record
    again = {Path(r.input).name: r for r in convert_many(headers, out, seed="x", resume=True, overwrite=True)}
    assert (again["in00.hv"].status, again["in01.hv"].status) == ("converted", "skipped")
    changed = [r.status for r in convert_many(headers, out, seed="y", resume=True, overwrite=True)]
    assert changed == ["converted"] * 2
    (out / "in01" / "PT_0002.dcm").unlink()  # a series no longer whole
    assert [r.status for r in convert_many(headers, out, seed="y", resume=True, overwrite=True)] == [
        "skipped",
        "converted",
    ]


def test_resume_matches_a_record_written_while_durable_and_preview_were_part_of_the_identity(tmp_path):
    headers = make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert [r.status for r in convert_many(headers, out, seed="x")] == ["converted"] * 2
    manifest = out / MANIFEST_NAME
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert all("preview" not in r["options"] and "durable" not in r["options"] for r in records)
    older = [{**r, "options": {**r["options"], "preview": False, "durable": False}} for r in records]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in older))  # as dcmforge wrote it before
    resumed = list(convert_many(headers, out, seed="x", resume=True, preview=True, durable=True))
    assert [r.status for r in resumed] == ["skipped"] * 2
    assert all("drawn from its files" in r.message for r in resumed)


def test_convert_many_refuses_an_unknown_option(tmp_path):
    with pytest.raises(TypeError, match="unknown options \\['sed'\\]"):
        next(convert_many([], tmp_path, sed="x"))


def test_a_task_run_again_after_its_worker_died_past_the_commit_reports_the_series(tmp_path):
    """Dask runs a task again when its worker died, even if the worker had committed the series already."""
    header = make_inputs(tmp_path / "in", 1)[0]
    out = tmp_path / "out"
    task = ConversionTask(str(header), str(out / "in00"), {**OPTIONS, "seed": "again"}, str(out / MANIFEST_NAME),
                          batch="b1", existed=False)  # fmt: skip
    first = run_task(task)
    again = run_task(task)  # as on the next worker: the folder is there, committed by this batch
    assert (first.status, again.status) == ("converted", "converted")
    assert again.message == f"{header} -> {out / 'in00'}: 4 files, committed by an earlier try whose worker died"
    assert (again.series_uid, again.files, again.nbytes) == (first.series_uid, first.files, first.nbytes)
    for other in (task._replace(batch="b2"), task._replace(existed=True)):  # another command's series
        refused = run_task(other)
        assert refused.status == "bad input" and "exists" in refused.message


def test_a_process_killed_right_after_its_rename_leaves_a_series_its_batch_adopts(tmp_path):
    """Killed between the rename and the end of run_task, a task's series is recorded all the same."""
    (tmp_path / "in").mkdir()
    header = dcmforge.write_interfile(tmp_path / "in" / "die-after-commit.hv", np.ones(SHAPE, np.float32),
                                      spacing=(1, 1, 1))  # fmt: skip
    out = tmp_path / "out"
    task = ConversionTask(str(header), str(out / "die-after-commit"), {**OPTIONS, "seed": "k"},
                          str(out / MANIFEST_NAME), batch="b1", existed=False)  # fmt: skip
    script = "import pickle, sys; from dcmforge.batch import run_task; run_task(pickle.load(sys.stdin.buffer))"
    died = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(task), capture_output=True,
                          env=environment(worker_killer(tmp_path / "hooks")), timeout=300)  # fmt: skip
    assert died.returncode == -signal.SIGKILL, died.stderr
    uid = whole_series(out / "die-after-commit")
    again = run_task(task)  # as the next worker would
    assert (again.status, again.series_uid, again.files) == ("converted", uid, SHAPE[0]), again.message
    assert run_task(task._replace(batch="b2")).status == "bad input"  # another batch's task never claims it
    resumed = list(convert_many([header], out, seed="k", resume=True))
    assert [(r.status, r.series_uid) for r in resumed] == [("skipped", uid)]


@pytest.mark.parametrize("winner_seed", ["same", "other"])
def test_a_task_that_loses_the_race_for_its_folder_never_claims_the_winners_series(tmp_path, monkeypatch,
                                                                                   winner_seed):  # fmt: skip
    """Recorded before its rename, a series that another writer's beat to the folder is not taken for it.

    With one seed both series have the same SeriesInstanceUID: the folder's inode tells them apart.
    """
    header = make_inputs(tmp_path / "in", 1)[0]
    out = tmp_path / "out"
    task = ConversionTask(str(header), str(out / "in00"), {**OPTIONS, "seed": "same"}, str(out / MANIFEST_NAME),
                          batch="b1", existed=False)  # fmt: skip
    record_as_usual = batch.append_record
    winners = []

    def record_then_lose(manifest, record):  # this task's record, then another writer commits first
        record_as_usual(manifest, record)
        winners.append(convert_one(task.input, task.out_dir, {**OPTIONS, "seed": winner_seed}))

    monkeypatch.setattr(batch, "append_record", record_then_lose)
    lost = run_task(task)
    monkeypatch.undo()
    [winner] = winners
    assert winner.status == "converted"
    assert lost.status == "bad input" and "another writer" in lost.message, lost.message
    [record] = read_manifest(out / MANIFEST_NAME)[str(header)]
    assert (record["series_uid"] == winner.series_uid) == (winner_seed == "same")
    assert run_task(task).status == "bad input"  # as run again by Dask in the same batch
    resumed = list(convert_many([header], out, seed="same", resume=True))
    assert [r.status for r in resumed] == ["bad input"]
    assert whole_series(out / "in00") == winner.series_uid
