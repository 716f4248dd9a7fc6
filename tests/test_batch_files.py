"""What a batch writes besides its series (issue 19): the manifest and the --report, never over what is not theirs.

Each test runs the real command in a process of its own on small Interfile
inputs and checks what is on disk after: the series read back with pydicom,
the input files byte for byte. A FIFO is a real FIFO; the full disk is a
tmpfs of a few pages in a mount namespace of the command's own (unshare, as
root; skipped with the reason elsewhere); the archive that answers 500 is an
http.server in a thread of this process.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dcmforge
from dcmforge.batch import MANIFEST_NAME

SRC = Path(__file__).resolve().parents[1] / "src"
SHAPE = (4, 8, 8)


def make_inputs(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(names))
    return [dcmforge.write_interfile(folder / f"{name}.hv", rng.random(SHAPE, dtype=np.float32), spacing=(2, 2, 3))
            for name in names]  # fmt: skip


def run_command(*args, timeout=120):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "dcmforge.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip


def series_folders(out):
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []


def whole_series(folder):
    datasets = [pydicom.dcmread(f) for f in sorted(folder.iterdir())]
    assert len(datasets) == SHAPE[0] and len({d.SeriesInstanceUID for d in datasets}) == 1, folder
    return datasets[0].SeriesInstanceUID


def contents(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- the manifest ---------------------------------------------------------------------------------


def test_a_manifest_line_that_is_no_record_is_skipped_with_a_warning(tmp_path):
    headers = make_inputs(tmp_path / "in", ["a", "b"])
    out = tmp_path / "out"
    assert run_command("convert", *headers, "--out", out).returncode == 0
    with open(out / MANIFEST_NAME, "a") as manifest:
        manifest.write('{"input": ["a"]}\n[1, 2]\n{"input": {"x": 1}}\n')
    done = run_command("convert", *headers, "--out", out, "--resume")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"dcmforge: {out / MANIFEST_NAME}: line {n} is not a record of an input "
                                        "(skipped)" for n in (3, 4, 5)]  # fmt: skip
    assert [line.endswith("already converted (4 files)") for line in done.stdout.splitlines()] == [True, True]


@pytest.mark.parametrize("resume", [True, False])
def test_a_fifo_for_the_manifest_is_refused_in_one_line_without_hanging(tmp_path, resume):
    headers = make_inputs(tmp_path / "in", ["a"])
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / MANIFEST_NAME)
    done = run_command("convert", *headers, "--out", out, *(["--resume"] if resume else []), timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"{out / MANIFEST_NAME}: the batch manifest is a FIFO (named pipe), "
                                        "not a regular file"]  # fmt: skip
    assert series_folders(out) == []


@pytest.mark.parametrize("kind", ["symbolic", "hard"])
def test_a_manifest_linked_to_a_file_outside_out_is_refused(tmp_path, kind):
    headers = make_inputs(tmp_path / "in", ["a"])
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text("")
    (os.symlink if kind == "symbolic" else os.link)(elsewhere, out / MANIFEST_NAME)
    done = run_command("convert", *headers, "--out", out)
    assert done.returncode == 2
    what = "is a symbolic link, not a regular file" if kind == "symbolic" else \
        "has 2 names (hard links): writing would change them all"  # fmt: skip
    assert done.stderr.splitlines() == [f"{out / MANIFEST_NAME}: the batch manifest {what}"]
    assert elsewhere.read_text() == "" and series_folders(out) == []


# --- the report -----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["header", "data file", "metadata file", "another input's data file"])
def test_a_report_naming_a_file_a_series_is_read_from_is_refused_and_the_file_kept(tmp_path, which):
    a, b = make_inputs(tmp_path / "in", ["a", "b"])
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"PatientName": "Report^Test"}))
    report = {"header": a, "data file": a.with_suffix(".v"), "metadata file": meta,
              "another input's data file": b.with_suffix(".v")}[which]  # fmt: skip
    before = contents(tmp_path)
    done = run_command("convert", a, b, "--meta", meta, "--out", tmp_path / "out", "--report", report)
    assert done.returncode == 2
    reason = "which a series is read from" if which in ("header", "metadata file") else \
        "a file that is not one (an input's data file?)"  # fmt: skip
    [line] = done.stderr.splitlines()
    assert line.startswith(f"{report}: the report would write over ") and line.endswith(reason), line
    assert contents(tmp_path) == before  # nothing changed anywhere
    assert not (tmp_path / "out").exists() or series_folders(tmp_path / "out") == []


def test_a_report_of_an_earlier_run_is_written_over(tmp_path):
    headers = make_inputs(tmp_path / "in", ["a"])
    report = tmp_path / "report.jsonl"
    for _ in range(2):
        done = run_command("convert", *headers, "--out", tmp_path / "out", "--report", report, "--overwrite")
        assert done.returncode == 0, done.stderr
        assert [json.loads(line)["status"] for line in report.read_text().splitlines()] == ["converted"]


class Answers500(http.server.BaseHTTPRequestHandler):
    """An archive that takes every request and answers 500."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"the archive is broken"
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def archive_answering_500():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    server.shutdown()
    server.server_close()


def test_the_report_line_carries_the_send_result(tmp_path, archive_answering_500):
    headers = make_inputs(tmp_path / "in", ["a"])
    report = tmp_path / "report.jsonl"
    done = run_command("convert", *headers, "--out", tmp_path / "out", "--report", report,
                       "--send", archive_answering_500, "--retries", "0")  # fmt: skip
    assert done.returncode == 1
    [line] = [json.loads(text) for text in report.read_text().splitlines()]
    assert line["status"] == "failed"
    assert "not sent: " in line["message"] and "500" in line["message"], line["message"]
    assert line["message"] in done.stderr
    whole_series(tmp_path / "out" / "a")  # converted all the same


# --- a manifest append that fails -----------------------------------------------------------------


def can_mount():
    """Whether this process may mount a tmpfs in a mount namespace of its own (root, unshare)."""
    try:
        return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


FULL_DISK = """\
set -e
mount -t tmpfs -o size=$2 tmpfs "$1"
"$PYTHON" -m dcmforge.cli convert "$3" --out "$1/out" --seed full >"$4/first.out" 2>"$4/first.err" || echo $? >"$4/first.status"
mount -o remount,size=1m "$1"
"$PYTHON" -m dcmforge.cli convert "$3" --out "$1/out" --seed full --resume >"$4/again.out" 2>"$4/again.err" || echo $? >"$4/again.status"
ls -a "$1/out" >"$4/listing"
cat "$1/out/.dcmforge-manifest.jsonl" >"$4/manifest" 2>/dev/null || true
"""


@pytest.mark.skipif(not can_mount(), reason="needs unshare --mount (root) to mount a small tmpfs")
def test_a_full_disk_at_the_manifest_append_is_told_and_a_resume_converts_it_again(tmp_path):
    [header] = make_inputs(tmp_path / "in", ["a"])
    disk, logs = tmp_path / "disk", tmp_path / "logs"
    disk.mkdir(), logs.mkdir()
    pages = SHAPE[0] * 4096  # the series' four files, a page each: nothing is left for the manifest
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(SRC)}
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", FULL_DISK, "sh", str(disk),
                           str(pages), str(header), str(logs)], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = (logs / "first.err").read_text()
    assert (logs / "first.status").read_text().strip() == "1", first
    assert f"warning: not recorded in {disk / 'out' / MANIFEST_NAME}: No space left on device" in first
    assert (logs / "first.out").read_text() == ""  # the line went to stderr, with the failures
    again = (logs / "again.out").read_text()
    assert not (logs / "again.status").exists(), (logs / "again.err").read_text()
    assert again.endswith("it replaced a series there that the manifest did not record\n"), again
    assert (logs / "listing").read_text().split() == [".", "..", MANIFEST_NAME, "a"]
    [record] = [json.loads(line) for line in (logs / "manifest").read_text().splitlines()]
    assert record["input"] == str(header) and record["files"] == SHAPE[0]


@pytest.mark.parametrize("there", ["notes", "another writer's series"])
def test_a_resume_does_not_replace_a_folder_that_dcmforge_did_not_write(tmp_path, there):
    [header] = make_inputs(tmp_path / "in", ["a"])
    out = tmp_path / "out"
    if there == "notes":
        (out / "a").mkdir(parents=True)
        (out / "a" / "notes.txt").write_text("mine")
    else:
        for path in dcmforge.write_series(np.ones(SHAPE, np.float32), out / "a", spacing=(1, 1, 1)):
            dataset = pydicom.dcmread(path)
            dataset.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.2.1143.107"  # as if another wrote it
            dataset.save_as(path)
    before = contents(out)
    done = run_command("convert", header, "--out", out, "--resume")
    assert done.returncode == 2 and "exists" in done.stderr, done.stderr
    assert contents(out) == before


# --- names ----------------------------------------------------------------------------------------


def test_an_input_named_like_another_inputs_preview_takes_another_folder(tmp_path):
    headers = make_inputs(tmp_path / "in", ["p1.preview.png", "p1"])  # the picture's name first
    out = tmp_path / "out"
    done = run_command("convert", *headers, "--out", out, "--preview")
    assert done.returncode == 0, done.stderr
    assert series_folders(out) == ["p1", "p1.preview.png", "p1.preview_png", "p1.preview_png.preview.png"]
    assert (out / "p1.preview.png").is_file() and (out / "p1.preview_png").is_dir()
    assert whole_series(out / "p1") != whole_series(out / "p1.preview_png")
