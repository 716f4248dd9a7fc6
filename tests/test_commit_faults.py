"""What the commit and the names promise, tried as a hostile or unlucky user would (issue 19).

--overwrite onto a folder of the user's own files (row 7), inputs whose names
collide (row 13), signals that used to end the command silently, control
characters and long names in input names, --out given a file, a full disk.
Every command is a real process; the ``place`` fixture checks that nothing
outside --out changed.
"""

import itertools
import os
import re
import signal

import pytest
from test_faults import (
    LARGE,
    children_of,
    finish,
    gone,
    leftovers,
    listing,
    make_input,
    partial_with_files,
    place,  # noqa: F401 - the fixture
    small_disk,  # noqa: F401 - the fixture
    snapshot,
    start,
    stderr_lines,
    wait_for,
    whole_or_none,
)

from dcmforge.batch import folder_name, series_folder_names

def said(err):
    """The command's own lines on stderr, without the warnings it logs ("dcmforge: ...")."""
    return [line for line in stderr_lines(err) if not line.startswith("dcmforge: ")]


# -- row 7: --overwrite replaces a DICOM series only -------------------------------------------------


def test_overwrite_keeps_a_folder_of_the_users_own_files(place):
    """``dcmforge convert Documents.hv --out ~ --overwrite``: ~/Documents holds the user's files, not a
    series: refused, exit 2, naming the folder and the file; nothing in it changes. A folder of DICOM files
    only (an earlier series) is still replaced."""
    inputs, home, outside, freeze = place
    header = make_input(inputs, "Documents")
    documents = home / "Documents"
    documents.mkdir(parents=True)
    (documents / "letter.txt").write_text("Dear Sir,\n" * 20)
    (documents / "old.dcm").write_bytes(bytes(128) + b"DICM" + bytes(64))  # a Part 10 file: fine alone
    freeze()
    before = snapshot(home)
    status, stdout, err = finish(start("convert", header, "--out", home, "--overwrite"))
    assert status == 2 and stdout == "", err
    (line,) = said(err)
    assert f"{documents} holds 'letter.txt', which is not a DICOM file: not a series folder dcmforge replaces" in line
    assert snapshot(home) == before
    (documents / "letter.txt").unlink()
    (documents / "short").write_bytes(b"DICM")  # too short to hold the preamble
    status, stdout, err = finish(start("convert", header, "--out", home, "--overwrite"))
    assert status == 2 and "holds 'short', which is not a DICOM file" in err
    (documents / "short").unlink()
    status, stdout, err = finish(start("convert", header, "--out", home, "--overwrite"))
    assert status == 0, err
    assert whole_or_none(documents, 3) is not None and leftovers(home) == []


# -- row 13: names that do not depend on the order of the inputs -------------------------------------


def test_inputs_with_one_name_map_to_the_same_folders_in_any_order(place):
    """d1/x.hv (3 slices) and d2/x.hv (5 slices): folders d1_x and d2_x whatever the order; a rerun in the
    other order with --resume skips both, and with --overwrite each folder gets its own input again."""
    inputs, out, outside, freeze = place
    one = make_input(inputs / "d1", "x", slices=3, seed=1)
    two = make_input(inputs / "d2", "x", slices=5, seed=2)
    freeze()
    status, stdout, err = finish(start("convert", one, two, "--out", out, "--seed", "s"))
    assert status == 0, err
    assert listing(out) == ["d1_x", "d2_x"]
    assert f"{one} -> {out / 'd1_x'}:" in stdout and f"{two} -> {out / 'd2_x'}:" in stdout
    uids = whole_or_none(out / "d1_x", 3), whole_or_none(out / "d2_x", 5)
    status, stdout, err = finish(start("convert", two, one, "--out", out, "--seed", "s", "--resume"))
    assert status == 0, err
    assert stdout.count("already converted") == 2
    status, stdout, err = finish(start("convert", two, one, "--out", out, "--seed", "s", "--overwrite"))
    assert status == 0, err
    assert (whole_or_none(out / "d1_x", 3), whole_or_none(out / "d2_x", 5)) == uids  # the seed: the same UIDs
    assert listing(out) == ["d1_x", "d2_x"] and leftovers(out) == []


def test_folder_names_are_the_same_for_every_order_of_the_inputs(tmp_path):
    inputs = [tmp_path / "a" / "x.hv", tmp_path / "b" / "c" / "x.hv", tmp_path / "x.nii.gz", tmp_path / "y.hv",
              tmp_path / "b_x.hv", tmp_path / "b" / "x.mha", tmp_path / "y.hv"]  # fmt: skip
    named = dict(zip(map(str, inputs[:-1]), series_folder_names(inputs)))
    assert named == {
        str(tmp_path / "a" / "x.hv"): "a_x",
        str(tmp_path / "b" / "c" / "x.hv"): "b_c_x",
        str(tmp_path / "x.nii.gz"): "x",
        str(tmp_path / "y.hv"): "y",
        str(tmp_path / "b_x.hv"): f"b_x-{named[str(tmp_path / 'b_x.hv')][-8:]}",  # taken by b/x.mha too
        str(tmp_path / "b" / "x.mha"): f"b_x-{named[str(tmp_path / 'b' / 'x.mha')][-8:]}",
    }
    assert len(set(series_folder_names(inputs))) == len(inputs)
    for order in itertools.islice(itertools.permutations(range(len(inputs))), 0, None, 97):
        shuffled = [inputs[i] for i in order]
        assert sorted(zip(map(str, shuffled), series_folder_names(shuffled))) == sorted(
            zip(map(str, inputs), series_folder_names(inputs))
        )


# -- signals -------------------------------------------------------------------------------------------

# Each stops the command as SIGTERM does: one line, exit 128 + n, no private folder left.
OTHER_STOPS = [signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM]


@pytest.mark.parametrize("by", OTHER_STOPS, ids=[s.name for s in OTHER_STOPS])
def test_other_stopping_signals_are_one_line_exit_128_plus_n_and_no_series(place, by):
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol", **LARGE)
    freeze()
    process = start("convert", header, "--out", out)
    wait_for(lambda: partial_with_files(out) or process.poll() is not None, "a temporary folder with files")
    process.send_signal(by)
    status, stdout, err = finish(process)
    assert status == 128 + by, err
    lines = stderr_lines(err)
    assert lines[-1] == f"terminated by {by.name}", err
    assert all(line.startswith("dcmforge: ") for line in lines[:-1]), err
    assert "Traceback" not in err
    assert whole_or_none(out / "vol", 600) is None and leftovers(out) == []


def test_sighup_to_the_group_with_jobs_stops_every_worker_and_leaves_no_private_folder(place):
    """A closed terminal signals the whole process group: the pool's workers clean up as the command does."""
    inputs, out, outside, freeze = place
    headers = [make_input(inputs / name, name, seed=n, **LARGE) for n, name in enumerate(("one", "two", "three"))]
    freeze()
    process = start("convert", *headers, "--out", out, "--jobs", "2", new_session=True)
    wait_for(lambda: partial_with_files(out) or process.poll() is not None, "a temporary folder with files")
    workers = children_of(process.pid)
    os.killpg(process.pid, signal.SIGHUP)
    status, stdout, err = finish(process)
    assert status == 128 + signal.SIGHUP, err
    assert stderr_lines(err)[-1] == "terminated by SIGHUP" and "Traceback" not in err, err
    wait_for(lambda: all(gone(pid) for pid in workers), "the workers to stop", timeout=30)
    for name in ("one", "two", "three"):
        whole_or_none(out / name, 600)  # a series committed before the signal is whole
    assert leftovers(out) == []


# -- what reaches the terminal -------------------------------------------------------------------------


def test_control_characters_in_input_names_are_escaped_in_every_line(place):
    r"""An input named with an escape sequence and a line break: every line that names it (converted,
    skipped, refused, a bad input) shows \x1b and \n, never the raw characters."""
    inputs, out, outside, freeze = place
    evil = "red\x1b[31m\nline\x07"
    header = make_input(inputs, "vol")
    named = header.rename(inputs / f"{evil}.hv")
    missing = inputs / f"gone{evil}.hv"
    missing.write_text(named.read_text().replace("vol.v", f"gone{evil}.v"))
    freeze()
    shown = "red\\x1b[31m\\nline\\x07"
    runs = [("convert", named, "--out", out), ("convert", named, "--out", out, "--resume"),
            ("convert", named, "--out", out), ("convert", missing, "--out", out)]  # fmt: skip
    outputs = [finish(start(*arguments)) for arguments in runs]
    for (status, stdout, err), expected in zip(outputs, (0, 0, 2, 2)):
        assert status == expected, err
        text = stdout + err
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), text
        assert shown in text
        assert all(shown in line for line in text.splitlines() if "red" in line)
    assert "already converted" in outputs[1][1] and "exists" in outputs[2][2]
    assert listing(out) == ["red_[31m_line_"]
    (out / f"odd{evil}").mkdir()  # a folder preview cannot read: its line names it
    (out / f"odd{evil}" / "x.dcm").write_bytes(b"not DICOM")
    status, stdout, err = finish(start("preview", out))
    assert status == 2 and f"odd{shown}" in err, err
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", stdout + err), stdout + err


def test_long_names_are_never_cut_inside_a_character(place):
    """A name of 241 bytes, a 1-byte letter then 2-byte ones: its folder is cut to 199 bytes, whole characters."""
    inputs, out, outside, freeze = place
    name = "a" + "é" * 120
    header = make_input(inputs, "vol")
    named = header.rename(inputs / f"{name}.hv")
    freeze()
    status, stdout, err = finish(start("convert", named, "--out", out))
    assert status == 0, err
    (folder,) = [n for n in os.listdir(os.fsencode(out)) if n != b".dcmforge-manifest.jsonl"]
    assert folder.decode("utf-8") == name[:100] == folder_name(named)
    assert whole_or_none(out / name[:100], 3) is not None


def test_out_given_a_file_is_one_line_naming_it(place):
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol")
    out.write_text("not a folder")
    freeze()
    status, stdout, err = finish(start("convert", header, "--out", out))
    assert status == 2 and stdout == ""
    assert said(err) == [f"{out}: --out is a file, not a folder"]
    assert out.read_text() == "not a folder"


def test_a_full_disk_names_the_slice_and_the_folder(small_disk, place):
    inputs, _, outside, freeze = place
    out = small_disk / "out"
    header = make_input(inputs, "vol", slices=100, rows=128, columns=128)  # 100 x 32 KiB > 2 MiB
    freeze()
    status, stdout, err = finish(start("convert", header, "--out", out))
    assert status == 1 and stdout == ""
    (line,) = said(err)
    assert "No space left on device" in line
    slice_number = re.search(r"writing image (\d+) of 100: (\S+)", line)
    assert slice_number, line
    assert slice_number[2] == str(out / "vol" / f"PT_{int(slice_number[1]):04d}.dcm")
    assert not os.path.exists(out / "vol") and leftovers(out) == []
