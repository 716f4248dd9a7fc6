"""Faults, races and hostile input, tried as a user would (issue 9): a series is whole or absent.

Every command runs as a real process (``python -m dcmforge.cli``), and every
test ends by checking that each series folder holds one whole series (all its
files, one SeriesInstanceUID, every file readable by pydicom) or nothing, that
no temporary folder or file is left, and that nothing outside ``--out``
changed (every file beside it checksummed before and after).

Processes are signalled when the condition is seen on disk (a temporary
folder that holds files), polled with a timeout: no fixed sleeps.
"""

import errno
import hashlib
import json
import os
import pty
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dcmforge import (
    DcmforgeError,
    MetadataError,
    SeriesWriter,
    convert_many,
    convert_one,
    read_image,
    read_interfile,
    read_metadata,
    write_series,
)
from dcmforge.batch import MANIFEST_NAME
from dcmforge.readers.interfile import write_interfile
from dcmforge.metadata.files import MAX_DEPTH

from terminal import read_until_closed

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # seconds for any one command or condition, on a loaded machine
PARTIAL = re.compile(r"\..*\.partial")  # the temporary folder of a series being written (write/commit.py)


# -- helpers ---------------------------------------------------------------------------------


def environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    return env


def command(*args):
    return [sys.executable, "-m", "dcmforge.cli", *map(str, args)]


def start(*args, new_session=False):
    return subprocess.Popen(
        command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
        start_new_session=new_session,
    )  # fmt: skip


def start_held(*args):
    """A shell that becomes the command (same pid) once a line arrives on its stdin: its pid is known first."""
    shell = f"read go; exec {' '.join(_quoted(a) for a in command(*args))}"
    return subprocess.Popen(
        ["sh", "-c", shell], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment(),
    )  # fmt: skip


def _quoted(text):
    return "'" + str(text).replace("'", "'\\''") + "'"


def finish(process):
    out, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, out, err


def wait_for(condition, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def make_input(folder, name="vol", slices=3, rows=4, columns=4, seed=0):
    """A STIR-style Interfile image (float32, distinct values per slice); returns the header path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    volume = rng.random((slices, rows, columns), dtype=np.float32) * 100 + np.arange(slices)[:, None, None]
    metadata = {"StudyDate": "20240102", "StudyTime": "101500"}  # no clock warning on stderr
    return write_interfile(folder / f"{name}.hv", volume, spacing=(2.0, 2.0, 3.0), metadata=metadata)


def snapshot(root, *skip):
    """Every path under root except those in skip: its kind and content (sha256, or a link's target)."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [name for name in dirs if here / name not in skip]
        for name in dirs + files:
            path = here / name
            if path in skip:
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                seen[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                seen[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:  # a folder, or a FIFO (never opened)
                seen[str(path)] = (stat.S_IFMT(mode), None)
    return seen


def whole_or_none(folder, slices):
    """The SeriesInstanceUID of the one whole series in folder, or None when there is no folder."""
    folder = Path(folder)
    if not os.path.lexists(folder):
        return None
    assert folder.is_dir() and not folder.is_symlink(), f"{folder} is not a plain folder"
    names = listing(folder)
    width = max(4, len(str(slices)))
    assert names == [f"PT_{n:0{width}d}.dcm" for n in range(1, slices + 1)], f"{folder}: {names[:5]}..."
    datasets = [pydicom.dcmread(folder / name) for name in names]
    uids = {ds.SeriesInstanceUID for ds in datasets}
    assert len(uids) == 1, f"{folder} mixes {len(uids)} series"
    assert sorted(int(ds.InstanceNumber) for ds in datasets) == list(range(1, slices + 1))
    for ds in datasets:
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
    return uids.pop()


def leftovers(out):
    """Temporary folders and files anywhere under out."""
    found = []
    for folder, dirs, files in os.walk(out):
        found += [os.path.join(folder, n) for n in dirs + files if PARTIAL.fullmatch(n) or n.endswith(".tmp")]
    return found


def partial_with_files(out):
    """True once a temporary series folder in out holds at least one file."""
    try:
        entries = [e for e in os.scandir(out) if PARTIAL.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
        return any(any(True for _ in os.scandir(e.path)) for e in entries)
    except FileNotFoundError:  # out not made yet, or the folder committed or removed meanwhile
        return False


def listing(out):
    """The names in out but the batch manifest."""
    return sorted(name for name in os.listdir(out) if name != MANIFEST_NAME)


def inside(out, path):
    return os.path.realpath(path).startswith(os.path.realpath(out) + os.sep)


@pytest.fixture
def place(tmp_path):
    """tmp_path laid out as in/ (inputs), out/ (--out) and outside/ (a sentinel file and folder that must not change).

    Yields (inputs, out, outside, freeze); ``freeze(*also_out)`` records every
    path but out/ (and also_out: the real folder of a linked --out); afterwards
    the test fails if any of them changed.
    """
    inputs, out, outside = tmp_path / "in", tmp_path / "out", tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "sentinel.dcm").write_bytes(b"precious, not DICOM")
    (outside / "folder" / "kept.txt").write_text("kept")
    inputs.mkdir()
    before = {}
    skipped = [out]

    def freeze(*also_out):
        skipped.extend(also_out)
        before.update(snapshot(tmp_path, *skipped))

    yield inputs, out, outside, freeze
    assert before, "the test never froze the state outside --out"
    assert snapshot(tmp_path, *skipped) == before, "something outside --out changed"


def stderr_lines(err):
    return [line for line in err.splitlines() if line.strip()]


# -- wrong types at the public entry points ------------------------------------------------------------

VOLUME = np.ones((2, 4, 4), np.float32)
WRONG_TYPES = {
    "write_series metadata list": (lambda out: write_series(VOLUME, out, spacing=(1, 1, 1), metadata=[1]), "metadata"),
    "write_series metadata int": (lambda out: write_series(VOLUME, out, spacing=(1, 1, 1), metadata=5), "metadata"),
    "write_series out_dir None": (lambda out: write_series(VOLUME, None, spacing=(1, 1, 1)), "out_dir"),
    "write_series out_dir int": (lambda out: write_series(VOLUME, 7, spacing=(1, 1, 1)), "out_dir"),
    "multiframe out_dir None": (lambda out: write_series(VOLUME, None, spacing=(1, 1, 1), multiframe=True), "out_dir"),
    "write_series columns": (lambda out: write_series(np.ones((1, 1, 65536), np.float32), out, spacing=(1, 1, 1)),
                             "rows and columns"),
    "SeriesWriter rows": (lambda out: SeriesWriter(out, (1, 65536, 1), spacing=(1, 1, 1)), "rows and columns"),
    "SeriesWriter float shape": (lambda out: SeriesWriter(out, (2.5, 4, 4), spacing=(1, 1, 1)), "shape"),
    "SeriesWriter text shape": (lambda out: SeriesWriter(out, "abc", spacing=(1, 1, 1)), "shape"),
    "SeriesWriter no shape": (lambda out: SeriesWriter(out, None, spacing=(1, 1, 1)), "shape"),
    "SeriesWriter metadata list": (lambda out: SeriesWriter(out, (2, 4, 4), spacing=(1, 1, 1), metadata=[1]),
                                   "metadata"),
    "SeriesWriter out_dir None": (lambda out: SeriesWriter(None, (2, 4, 4), spacing=(1, 1, 1)), "out_dir"),
    "SeriesWriter workers": (lambda out: SeriesWriter(out, (2, 4, 4), spacing=(1, 1, 1), workers="2"), "workers"),
    "write_series affine text": (lambda out: write_series(VOLUME, out, axes="zyx", affine="abc", affine_convention="LPS"),
                                 "affine"),
    "convert_many one path": (lambda out: list(convert_many("in.hv", out)), "inputs must be a list of paths"),
    "convert_many inputs None": (lambda out: list(convert_many(None, out)), "inputs"),
    "convert_many out_dir None": (lambda out: list(convert_many(["in.hv"], None)), "out_dir"),
    "read_image None": (lambda out: read_image(None), "read_image's path"),
    "read_metadata None": (lambda out: read_metadata(None), "read_metadata's path"),
    "read_interfile None": (lambda out: read_interfile(None), "read_interfile's path"),
    "read_interfile list": (lambda out: read_interfile(["a.hv"]), "read_interfile's path"),
}  # fmt: skip


@pytest.mark.parametrize("case", WRONG_TYPES)
def test_wrong_types_are_a_dcmforge_error_naming_the_argument(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    call, named = WRONG_TYPES[case]
    with pytest.raises(DcmforgeError, match=re.escape(named)) as raised:
        call(tmp_path / "out")
    assert "\n" not in str(raised.value)
    assert os.listdir(tmp_path) == []  # nothing written, not even a folder


@pytest.mark.parametrize(
    "arguments, named",
    [((None, "out", {}), "header"), (("in.hv", None, {}), "out_dir"), (("in.hv", "out", None), "options"),
     ((3.5, "out", {}), "header"), (("in.hv", "out", {"flip": 5}), "flip")],
)  # fmt: skip
def test_convert_one_reports_wrong_types_as_bad_input(tmp_path, monkeypatch, arguments, named):
    monkeypatch.chdir(tmp_path)
    make_input(tmp_path, "in")
    result = convert_one(*arguments)
    assert result.status == "bad input" and result.exit_status == 2
    assert named in result.message and "Error" not in result.message
    assert listing(tmp_path) == ["in.hv", "in.v"]


# -- directories and FIFOs where a file belongs -----------------------------------------------


def test_a_directory_as_header_or_data_file_is_named_as_such(tmp_path):
    (tmp_path / "dir.hv").mkdir()
    with pytest.raises(DcmforgeError, match="dir.hv: it is a directory"):
        read_interfile(tmp_path / "dir.hv")
    header = make_input(tmp_path, "vol")
    (tmp_path / "vol.v").unlink()
    (tmp_path / "vol.v").mkdir()
    with pytest.raises(DcmforgeError, match="vol.v is a directory, not a data file"):
        read_interfile(header)
    with pytest.raises(MetadataError, match="it is a directory"):
        read_metadata(tmp_path)


def test_fifos_are_refused_without_waiting_for_a_writer(place):
    """A FIFO given as a header, a data file, a metadata file, a NIfTI or a MetaImage input: exit 2 naming it,
    at once (no writer ever comes); a directory named .nii likewise."""
    inputs, out, outside, freeze = place
    os.mkfifo(inputs / "fifo.hv")
    os.mkfifo(inputs / "meta.json")
    header = make_input(inputs, "vol")
    data_fifo = make_input(inputs, "piped")
    (inputs / "piped.v").unlink()
    os.mkfifo(inputs / "piped.v")
    os.mkfifo(inputs / "fifo.nii")
    os.mkfifo(inputs / "fifo.mha")
    (inputs / "folder.nii").mkdir()
    freeze()
    status, _, err = finish(start("convert", inputs / "fifo.hv", data_fifo, "--out", out))
    assert status == 2
    assert f"{inputs / 'fifo.hv'}: it is a FIFO (named pipe)" in err
    assert "piped.v is a FIFO (named pipe), not a data file" in err
    status, _, err = finish(start("convert", header, "--meta", inputs / "meta.json", "--out", out))
    assert status == 2 and "meta.json: cannot read metadata: it is a FIFO (named pipe)" in err
    status, _, err = finish(start("check", inputs / "meta.json"))
    assert status == 2 and err.count(str(inputs / "meta.json")) == 1 and "FIFO" in err
    status, _, err = finish(start("convert", *(inputs / n for n in ("fifo.nii", "fifo.mha", "folder.nii")), "--out", out))
    assert status == 2
    for name, kind in (("fifo.nii", "a FIFO (named pipe)"), ("fifo.mha", "a FIFO (named pipe)"),
                       ("folder.nii", "a directory")):  # fmt: skip
        assert f"{inputs / name}: it is {kind}, not a file" in err
    assert not out.exists()


# -- metadata nested too deeply --------------------------------------------------------------


def nested_sequences(levels):
    """ReferencedImageSequence inside ReferencedImageSequence, ``levels`` deep (each a list of one table)."""
    top = {}
    item = top
    for _ in range(levels):
        inner = {"ReferencedSOPClassUID": "1.2.840.10008.5.1.4.1.1.128", "ReferencedSOPInstanceUID": "1.2.3.4"}
        item["ReferencedImageSequence"] = [inner]
        item = inner
    return top


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_metadata_300_levels_deep_is_one_line_naming_the_depth_and_the_file(place, suffix):
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol")
    meta = inputs / f"deep{suffix}"
    if suffix == ".json":
        meta.write_text(json.dumps(nested_sequences(300)))
    else:
        meta.write_text("PatientName = " + "[" * 300 + '"x"' + "]" * 300 + "\n")
    freeze()
    status, _, err = finish(start("convert", header, "--meta", meta, "--out", out))
    assert status == 2
    assert "Traceback" not in err and "RecursionError" not in err
    lines = stderr_lines(err)
    assert len(lines) == 1, err
    assert str(meta) in lines[0] and f"more than {MAX_DEPTH} levels deep" in lines[0]
    assert whole_or_none(out / "vol", 3) is None and leftovers(out) == []


def test_metadata_nesting_is_bounded_for_mappings_too_and_the_limit_itself_is_fine(tmp_path):
    with pytest.raises(MetadataError, match=f"level {MAX_DEPTH + 1} at ReferencedImageSequence"):
        write_series(VOLUME, tmp_path / "deep", spacing=(1, 1, 1), metadata=nested_sequences(300))
    loop = {}
    loop["ReferencedImageSequence"] = [loop]  # a table that holds itself
    with pytest.raises(MetadataError, match="levels deep"):
        write_series(VOLUME, tmp_path / "loop", spacing=(1, 1, 1), metadata=loop)
    assert not os.path.lexists(tmp_path / "deep") and not os.path.lexists(tmp_path / "loop")
    deepest = (MAX_DEPTH - 1) // 2  # sequences of one table each: two levels apiece below the top table
    paths = write_series(VOLUME, tmp_path / "deepest", spacing=(1, 1, 1), metadata=nested_sequences(deepest))
    assert whole_or_none(tmp_path / "deepest", 2) is not None and len(paths) == 2
    item = pydicom.dcmread(paths[0])
    for _ in range(deepest):
        item = item.ReferencedImageSequence[0]
    assert item.ReferencedSOPInstanceUID == "1.2.3.4"


# -- hostile names -------------------------------------------------------------------------------

# "...hv" and "..hv" name "series" alone: two inputs of one name are named by their path below their folders' parent.
HOSTILE_NAMES = {"...hv": "0_..", ".hidden.hv": "hidden", "a\\b.hv": "a_b", "tab\there.hv": "tab_here",
                 "new\nline.hv": "new_line", "..hv": "5_."}  # fmt: skip


def test_hostile_header_names_write_inside_out_only(place):
    """``...hv`` names "..": it must not write into the parent of --out (nor a hidden or odd folder)."""
    inputs, out, outside, freeze = place
    headers = []
    for number, name in enumerate(HOSTILE_NAMES):
        folder = inputs / f"{number}"
        headers.append(make_input(folder, "x", seed=number).rename(folder / name))
        (folder / "x.v").rename(folder / f"{number}.v")
        text = (folder / name).read_text().replace("name of data file := x.v", f"name of data file := {number}.v")
        (folder / name).write_text(text)
    freeze()
    status, _, err = finish(start("convert", *headers, "--out", out))
    assert status == 0, err
    assert listing(out) == sorted(HOSTILE_NAMES.values())
    for folder_name in HOSTILE_NAMES.values():
        assert whole_or_none(out / folder_name, 3) is not None
    for folder, dirs, files in os.walk(out):
        assert all(inside(out, os.path.join(folder, name)) for name in dirs + files)
    assert leftovers(out) == []


def test_a_symlinked_out_is_followed_but_a_symlinked_series_folder_is_not(place):
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol")
    real_out = out.parent / "real-out"
    real_out.mkdir()
    out.symlink_to(real_out)  # --out itself a link: fine
    (outside / "elsewhere").mkdir()
    (outside / "elsewhere" / "PT_0001.dcm").write_bytes(b"not yours")
    (real_out / "vol-link").symlink_to(outside / "elsewhere")  # a series folder name that leads out: not followed
    linked = inputs / "vol-link.hv"
    linked.write_text(header.read_text())
    freeze(real_out)
    status, _, err = finish(start("convert", header, "--out", out))
    assert status == 0, err
    assert whole_or_none(real_out / "vol", 3) is not None
    for extra in ([], ["--overwrite"]):
        status, stdout, err = finish(start("convert", linked, "--out", out, *extra))
        assert status == 2, err
        assert str(out / "vol-link") in err and stdout == ""
    assert os.readlink(real_out / "vol-link") == str(outside / "elsewhere")
    assert listing(real_out) == ["vol", "vol-link"] and leftovers(real_out) == []


@pytest.mark.parametrize("multiframe", [False, True])
def test_the_library_never_writes_through_a_link_at_out_dir(place, multiframe):
    """write_series given an out_dir that is a symbolic link (to a folder outside): refused, with or without
    overwrite, for both writers; the folder it points to keeps what it had."""
    inputs, out, outside, freeze = place
    out.mkdir()
    (out / "series").symlink_to(outside / "folder")
    meta = {"isotope": "F-18", "radiopharmaceutical": "Fluorodeoxyglucose", "injected_activity": 3.7e8,
            "injection_datetime": "2024-01-02T09:00:00",
            "acquisition_datetime": "2024-01-02T10:00:00"}  # fmt: skip
    freeze()
    for overwrite in (False, True):
        with pytest.raises(DcmforgeError, match=re.escape(str(out / "series"))):
            write_series(VOLUME, out / "series", spacing=(1, 1, 1), metadata=meta, overwrite=overwrite,
                         multiframe=multiframe)  # fmt: skip
    assert listing(out) == ["series"] and os.readlink(out / "series") == str(outside / "folder")


# -- planted symbolic links at temporary names -----------------------------------------------------


def test_links_planted_at_the_old_temporary_names_are_not_followed(place):
    """The per-file names ``.PT_0001.dcm.<pid>.tmp`` of old: links there, for the very pid that will write.

    They sit in the series folder of an earlier run, which ``--overwrite``
    replaces: either the new series replaces it whole (links and all), or
    the folder is refused as one dcmforge may not replace and stays as it was.
    """
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol", slices=5)
    assert finish(start("convert", header, "--out", out))[0] == 0
    held = start_held("convert", header, "--out", out, "--overwrite")
    links = [out / "vol" / f".PT_{n:04d}.dcm.{held.pid}.tmp" for n in range(1, 6)]
    for link in links:
        link.symlink_to(outside / "sentinel.dcm")
    (out / f".vol.{held.pid}.tmp").symlink_to(outside / "folder")
    before = snapshot(out)
    freeze()
    held.stdin.write("go\n")
    held.stdin.flush()
    status, stdout, err = finish(held)
    assert status in (0, 2), err
    if status == 0:
        assert whole_or_none(out / "vol", 5) is not None
    else:
        assert str(out / "vol") in err and snapshot(out) == before


def test_links_planted_at_the_temporary_folder_names_are_not_followed(place):
    """Links at names of the temporary folder's pattern: for the writer's own pid, and looking stale (a dead pid)."""
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol", slices=5)
    out.mkdir()
    host = re.sub(r"[^A-Za-z0-9-]", "", os.uname().nodename)[:32]
    dead = subprocess.Popen(["true"])
    dead.wait()
    held = start_held("convert", header, "--out", out)
    for pid in (held.pid, dead.pid):
        for token in ("0" * 16, "f" * 16):
            (out / f".vol.dcmforge-{host}-{pid}-{token}.partial").symlink_to(outside / "folder")
        (out / f".vol.dcmforge-{host}-{pid}-{'1' * 16}.partial").symlink_to(outside / "sentinel.dcm")
    freeze()
    held.stdin.write("go\n")
    held.stdin.flush()
    status, stdout, err = finish(held)
    assert status == 0, err
    assert whole_or_none(out / "vol", 5) is not None


def test_a_link_planted_at_the_manifest_name_is_not_followed(place):
    """The batch manifest has a predictable name in --out: a link there is not written through."""
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol")
    out.mkdir()
    (out / MANIFEST_NAME).symlink_to(outside / "sentinel.dcm")
    freeze()
    status, stdout, err = finish(start("convert", header, "--out", out))
    assert status == 2, err
    assert err.splitlines() == [f"{out / MANIFEST_NAME}: the batch manifest is a symbolic link, not a regular file"]
    assert not (out / "vol").exists() and leftovers(out) == []  # refused before anything converts


# -- two writers of one series -----------------------------------------------------------------------


# Enough files that the two writers overlap: with the per-file writes of old, both exited 0 and mixed their series.
RACE_SLICES = 400


@pytest.mark.parametrize("round_", range(2))
def test_two_converts_of_one_header_into_one_out_exactly_one_wins(place, round_):
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol", slices=RACE_SLICES, rows=16, columns=16)
    freeze()
    held = [start_held("convert", header, "--out", out, "--seed", seed) for seed in ("a", "b")]
    for process in held:  # as close together as two writes to two pipes
        process.stdin.write("go\n")
    for process in held:
        process.stdin.flush()
    results = [finish(process) for process in held]
    assert sorted(status for status, _, _ in results) == [0, 2], results
    winner, loser = sorted(results, key=lambda result: result[0])
    assert "-> " in winner[1] and f"{RACE_SLICES} PT files" in winner[1]
    assert loser[1] == "" and str(out / "vol") in loser[2]
    assert "Traceback" not in loser[2]
    assert whole_or_none(out / "vol", RACE_SLICES) is not None
    assert listing(out) == ["vol"] and leftovers(out) == []


# -- overwrite -------------------------------------------------------------------------------------------


def test_existing_series_without_overwrite_is_exit_2_naming_the_folder(place):
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol")
    assert finish(start("convert", header, "--out", out))[0] == 0
    before = snapshot(out)
    data = inputs / "vol.v"
    data.write_bytes(np.full(data.stat().st_size // 4, np.nan, np.float32).tobytes())  # a voxel read would fail
    freeze()
    status, stdout, err = finish(start("convert", header, "--out", out))
    assert status == 2 and stdout == ""
    assert str(out / "vol") in err and "overwrite" in err and "NaN" not in err
    assert snapshot(out) == before


def test_overwrite_with_fewer_slices_leaves_no_stale_files(place):
    inputs, out, outside, freeze = place
    first = make_input(inputs / "first", "vol", slices=20)
    second = make_input(inputs / "second", "vol", slices=11)
    freeze()
    assert finish(start("convert", first, "--out", out))[0] == 0
    old_uid = whole_or_none(out / "vol", 20)
    status, _, err = finish(start("convert", second, "--out", out, "--overwrite"))
    assert status == 0, err
    assert whole_or_none(out / "vol", 11) not in (None, old_uid)
    assert listing(out) == ["vol"] and leftovers(out) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted for the test (root only), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_overwrite_that_fills_the_disk_leaves_the_old_series_exactly_as_it_was(small_disk, place):
    inputs, _, outside, freeze = place
    out = small_disk / "out"
    small = make_input(inputs / "small", "vol", slices=10, rows=16, columns=16)
    assert finish(start("convert", small, "--out", out))[0] == 0
    before = snapshot(out)
    old_uid = whole_or_none(out / "vol", 10)
    big = make_input(inputs / "big", "vol", slices=100, rows=128, columns=128)  # 100 x 32 KiB > 2 MiB
    freeze()
    status, stdout, err = finish(start("convert", big, "--out", out, "--overwrite"))
    assert status == 1 and stdout == ""
    assert errno.errorcode[errno.ENOSPC] in err or "No space left" in err
    assert "Traceback" not in err
    assert snapshot(out) == before and whole_or_none(out / "vol", 10) == old_uid
    assert leftovers(out) == []


# -- killed and interrupted in the middle of a large series ---------------------------------------

LARGE = {"slices": 600, "rows": 64, "columns": 64}


def test_sigkill_in_the_middle_leaves_no_series_and_a_rerun_cleans_up(place):
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol", **LARGE)
    freeze()
    process = start("convert", header, "--out", out)
    wait_for(lambda: partial_with_files(out) or process.poll() is not None, "a temporary folder with files")
    process.kill()
    assert finish(process)[0] == -signal.SIGKILL, "the conversion ended before it could be killed"
    assert whole_or_none(out / "vol", 600) is None
    assert leftovers(out), "the killed process left no temporary folder (was it killed too late?)"
    status, stdout, err = finish(start("convert", header, "--out", out))
    assert status == 0, err
    assert "partial series left by process" in err and str(process.pid) in err
    assert whole_or_none(out / "vol", 600) is not None
    assert listing(out) == ["vol"] and leftovers(out) == []


# What the command says, and its exit status, when each signal stops it.
STOPPED = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}


def assert_interrupted(status, stdout, err, by=signal.SIGINT):
    word, expected = STOPPED[by]
    assert status == expected, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Terminated" not in err
    lines = stderr_lines(err)
    assert lines[-1] == word and lines.count(word) == 1, err
    assert all(line.startswith("dcmforge: ") for line in lines[:-1]), err  # only logged warnings before it


@pytest.mark.parametrize("by", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_in_the_middle_is_one_line_exit_130_and_no_series(place, by):
    """SIGINT (Ctrl-C): "interrupted", 130; SIGTERM (a scheduler's stop): "terminated", 143; no series either way."""
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol", **LARGE)
    freeze()
    process = start("convert", header, "--out", out)
    wait_for(lambda: partial_with_files(out) or process.poll() is not None, "a temporary folder with files")
    process.send_signal(by)
    assert_interrupted(*finish(process), by=by)
    assert whole_or_none(out / "vol", 600) is None
    assert leftovers(out) == []
    status, stdout, err = finish(start("convert", header, "--out", out))
    assert status == 0, err
    assert whole_or_none(out / "vol", 600) is not None and leftovers(out) == []


def children_of(pid):
    """The pids of pid's child processes (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(fields.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def gone(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.parametrize(
    "to, by", [("group", signal.SIGINT), ("parent", signal.SIGINT), ("group", signal.SIGTERM), ("parent", signal.SIGTERM)]
)
def test_sigint_with_jobs_stops_the_workers_and_leaves_no_partial_series(place, to, by):
    """Ctrl-C on a terminal signals the whole process group; ``kill -INT`` the command alone: the same outcome.
    SIGTERM likewise (a scheduler may signal every process of the job, or the command alone)."""
    inputs, out, outside, freeze = place
    headers = [make_input(inputs / name, name, seed=n, **LARGE) for n, name in enumerate(("one", "two", "three"))]
    freeze()
    process = start("convert", *headers, "--out", out, "--jobs", "2", new_session=True)
    wait_for(lambda: partial_with_files(out) or process.poll() is not None, "a temporary folder with files")
    workers = children_of(process.pid)
    if to == "group":
        os.killpg(process.pid, by)
    else:
        process.send_signal(by)
    assert_interrupted(*finish(process), by=by)
    wait_for(lambda: all(gone(pid) for pid in workers), "the workers to stop", timeout=30)
    for name in ("one", "two", "three"):
        whole_or_none(out / name, 600)  # a series a worker had committed before the signal is whole
    assert leftovers(out) == []


def test_ctrl_c_on_a_terminal_with_jobs_shows_interrupted_on_a_line_of_its_own(place):
    """As a person sees it: output on a pseudo-terminal (progress bar on), SIGINT to the whole process group."""
    inputs, out, outside, freeze = place
    headers = [make_input(inputs / name, name, seed=n, **LARGE) for n, name in enumerate(("one", "two", "three"))]
    freeze()
    master, slave = pty.openpty()
    process = subprocess.Popen(
        command("convert", *headers, "--out", out, "--jobs", "2"), stdin=subprocess.DEVNULL, stdout=slave,
        stderr=slave, env=environment(), start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        wait_for(lambda: partial_with_files(out) or process.poll() is not None, "a temporary folder with files")
        os.killpg(process.pid, signal.SIGINT)
        shown = read_until_closed(master)
        status = process.wait(timeout=TIMEOUT)
    finally:
        os.close(master)
    text = shown.decode(errors="replace")
    assert status == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1] == "interrupted", text
    for name in ("one", "two", "three"):
        whole_or_none(out / name, 600)
    assert leftovers(out) == []
