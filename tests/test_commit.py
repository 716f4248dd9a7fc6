"""Series-level commit (write/commit.py): a series folder is whole or absent, under races, failures and kills.

Each case runs with the Linux renameat2 call and again with the plain fallback
(no renameat2), which must keep the same promises.
"""

import logging
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from volumes import activity

from dcmforge import SeriesWriter, write_series
from dcmforge.errors import OutputExistsError, VolumeError
from dcmforge.write import commit
from dcmforge.write.commit import SeriesFolder

# Fixed times (creation included), so seeded runs are byte-for-byte the same; enough for Enhanced PET too.
METADATA = {
    "isotope": "F-18",
    "radiopharmaceutical": "Fluorodeoxyglucose",
    "injected_activity": 3.7e8,
    "injection_datetime": "2025-01-31T09:45:00",
    "acquisition_datetime": "2025-01-31T10:45:00",
    "InstanceCreationDate": "20250131",
    "InstanceCreationTime": "120000",
}
SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


@pytest.fixture(params=["renameat2", "fallback"])
def renames(request, monkeypatch):
    """Both ways of committing: renameat2's flags, and mkdir + rename where it is missing."""
    if request.param == "fallback":
        monkeypatch.setattr(commit, "_libc_renameat2", lambda: None)
    elif commit._libc_renameat2() is None:
        pytest.skip("this C library has no renameat2")
    return request.param


def tree(folder):
    """{relative path: bytes} of every file under folder, hidden ones included."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    found[os.path.relpath(path, folder)] = f.read()
            else:
                found[os.path.relpath(path, folder)] = None
    return found


def write(folder, files, **kwargs):
    with SeriesFolder(folder, **kwargs) as series:
        for name, data in files.items():
            series.write(name, [data])
        series.commit()


def test_files_appear_only_at_the_commit(tmp_path, renames):
    final = tmp_path / "series"
    with SeriesFolder(final) as series:
        series.write("a.dcm", [b"one", np.arange(3, dtype=np.uint16)])
        assert not final.exists()
        (private,) = os.listdir(tmp_path)
        assert private.startswith(".series.dcmforge-") and private.endswith(".partial")
        assert os.stat(tmp_path / private).st_mode & 0o777 == 0o700
        series.commit()
    assert tree(tmp_path) == {"series": None, "series/a.dcm": b"one" + np.arange(3, dtype=np.uint16).tobytes()}
    mask = commit._umask()
    assert os.stat(final).st_mode & 0o777 == 0o777 & ~mask


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_the_committed_folder_has_the_umask_s_permissions(tmp_path, mask):
    old = os.umask(mask)  # this test runs alone in its process's one thread
    try:
        write(tmp_path / "series", {"a.dcm": b"one"})
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "series").st_mode & 0o777 == 0o777 & ~mask


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk full", "interrupt"])
def test_a_failure_leaves_nothing_not_even_the_folders_it_made(tmp_path, failure):
    with pytest.raises(type(failure)):
        with SeriesFolder(tmp_path / "made" / "for" / "series") as series:
            series.write("a.dcm", [b"one"])
            raise failure
    assert os.listdir(tmp_path) == []


def test_an_existing_folder_even_empty_is_refused_without_overwrite(tmp_path):
    (tmp_path / "series").mkdir()
    with pytest.raises(OutputExistsError, match=f"{tmp_path / 'series'} exists; pass overwrite=True"):
        SeriesFolder(tmp_path / "series")
    assert tree(tmp_path) == {"series": None}


def test_the_loser_of_a_race_keeps_nothing_and_the_winner_is_whole(tmp_path, renames):
    final = tmp_path / "series"
    first, second = SeriesFolder(final), SeriesFolder(final)
    first.write("a.dcm", [b"first"])
    second.write("a.dcm", [b"second"])
    second.write("b.dcm", [b"second"])
    first.commit()
    with pytest.raises(OutputExistsError, match=f"{final} was written by another writer meanwhile"):
        second.commit()
    assert tree(tmp_path) == {"series": None, "series/a.dcm": b"first"}


def test_a_commit_never_replaces_an_empty_folder_made_meanwhile(tmp_path, renames):
    final = tmp_path / "series"
    with SeriesFolder(final) as series:
        series.write("a.dcm", [b"mine"])
        final.mkdir()  # another program's, after our check
        with pytest.raises(OutputExistsError):
            series.commit()
    assert tree(tmp_path) == {"series": None}


# What a Part 10 file begins with (PS3.10 7.1): all that overwrite looks at.
PART10 = bytes(128) + b"DICM"


def test_overwrite_replaces_the_whole_folder(tmp_path, renames):
    final = tmp_path / "series"
    write(final, {f"PT_{n}.dcm": PART10 + b"old" for n in range(5)})
    write(final, {"PT_0.dcm": b"new", "PT_1.dcm": b"new"}, overwrite=True)
    assert tree(tmp_path) == {"series": None, "series/PT_0.dcm": b"new", "series/PT_1.dcm": b"new"}


def test_overwrite_does_not_delete_what_is_not_a_series_folder(tmp_path):
    final = tmp_path / "series"
    (final / "subfolder").mkdir(parents=True)
    with pytest.raises(OutputExistsError, match="holds 'subfolder', which is not a file"):
        SeriesFolder(final, overwrite=True)
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="not a folder"):
        SeriesFolder(tmp_path / "file", overwrite=True)
    assert tree(tmp_path) == {"series": None, "series/subfolder": None, "file": b"x"}


def test_a_failed_overwrite_leaves_the_old_series_exactly_as_it_was(tmp_path, monkeypatch):
    final = tmp_path / "series"
    old = write_series(activity((4, 3, 2), seed=1), final, spacing=(1, 1, 1), metadata=METADATA)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in old}
    real_write = SeriesFolder.write

    def disk_full_at_the_second(folder, name, pieces):
        if name == "PT_0002.dcm":
            raise OSError(28, "No space left on device")
        real_write(folder, name, pieces)

    monkeypatch.setattr(SeriesFolder, "write", disk_full_at_the_second)
    with pytest.raises(OSError, match="No space"):
        write_series(activity((2, 3, 2), seed=2), final, spacing=(1, 1, 1), metadata=METADATA, overwrite=True)
    assert os.listdir(tmp_path) == ["series"]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in old} == before
    assert sorted(os.listdir(final)) == sorted(before)


def test_a_smaller_series_overwriting_leaves_no_stale_file(tmp_path):
    final = tmp_path / "series"
    write_series(activity((5, 3, 2)), final, spacing=(1, 1, 1), metadata=METADATA)
    paths = write_series(activity((2, 3, 2)), final, spacing=(1, 1, 1), metadata=METADATA, overwrite=True)
    assert sorted(os.listdir(final)) == ["PT_0001.dcm", "PT_0002.dcm"] == [p.name for p in paths]
    assert os.listdir(tmp_path) == ["series"]


@pytest.mark.parametrize("multiframe", [False, True], ids=["series", "Enhanced PET"])
def test_an_existing_folder_is_refused_before_any_voxel_is_read(tmp_path, multiframe):
    (tmp_path / "series").mkdir()
    volume = np.full((2, 3, 4), np.nan, np.float32)  # reading it would raise VolumeError
    with pytest.raises(OutputExistsError, match="series exists"):
        write_series(volume, tmp_path / "series", spacing=(1, 1, 1), metadata=METADATA, multiframe=multiframe)
    with pytest.raises(OutputExistsError, match="series exists"):
        SeriesWriter(tmp_path / "series", volume.shape, spacing=(1, 1, 1), metadata=METADATA)
    with pytest.raises(VolumeError):
        write_series(volume, tmp_path / "other", spacing=(1, 1, 1), metadata=METADATA, multiframe=multiframe)
    assert os.listdir(tmp_path) == ["series"]


@pytest.mark.parametrize("streamed", [False, True])
def test_durable_syncs_every_file_and_both_folders_and_writes_the_same_bytes(tmp_path, monkeypatch, streamed):
    # Streamed, every file's window is written at close(), through its kept descriptor, and synced then.
    kwargs = dict(spacing=(1, 1, 1), metadata=METADATA, seed="durable")
    volume = activity((3, 3, 2))
    plain = write_series(volume, tmp_path / "plain", **kwargs)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    if streamed:
        with SeriesWriter(tmp_path / "durable", volume.shape, durable=True, **kwargs) as series:
            series.write_slices(volume[:2])
            series.write_slices(volume[2:])
        durable = series.paths
    else:
        durable = write_series(volume, tmp_path / "durable", durable=True, **kwargs)
    assert [p.read_bytes() for p in durable] == [p.read_bytes() for p in plain]
    assert len(synced) == 5  # three files, the private folder before the rename, the parent after it
    assert sorted(os.path.basename(path) for path in synced[:3]) == [p.name for p in durable]
    assert synced[-1] == str(tmp_path) and synced[-2].startswith(str(tmp_path / ".durable.dcmforge-"))


def test_a_planted_link_in_the_folder_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    with SeriesFolder(tmp_path / "series") as series:
        (private,) = [name for name in os.listdir(tmp_path) if name.endswith(".partial")]
        os.symlink(victim, tmp_path / private / "PT_0001.dcm")
        with pytest.raises(FileExistsError):
            series.write("PT_0001.dcm", [b"dicom bytes"])
    assert victim.read_bytes() == b"precious" and sorted(os.listdir(tmp_path)) == ["victim"]


# -- what a killed writer leaves, and the next run ------------------------------------------------

KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from dcmforge.write.commit import SeriesFolder
    folder = SeriesFolder(sys.argv[1])
    folder.write("PT_0001.dcm", [b"half a series"])
    os.kill(os.getpid(), signal.SIGKILL)
""")


def run_killed_writer(final):
    env = {**os.environ, "PYTHONPATH": SOURCE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(final)], check=False, env=env)
    assert done.returncode == -signal.SIGKILL


def test_a_killed_writer_leaves_only_a_private_folder_that_the_next_run_removes(tmp_path, caplog):
    final = tmp_path / "series"
    run_killed_writer(final)
    (left,) = os.listdir(tmp_path)
    assert left.startswith(".series.dcmforge-") and left.endswith(".partial") and not final.exists()
    with caplog.at_level(logging.WARNING, logger="dcmforge"):
        paths = write_series(activity((2, 3, 2)), final, spacing=(1, 1, 1), metadata=METADATA)
    assert os.listdir(tmp_path) == ["series"] and len(paths) == 2
    assert any(str(tmp_path / left) in r.message and "no longer runs (its lock was free); removed" in r.message for r in caplog.records)


def test_private_folders_of_live_processes_and_other_hosts_are_left_alone(tmp_path, caplog):
    token = "0123456789abcdef"
    live = f".a.dcmforge-{commit._host()}-{os.getppid()}-{token}.partial"
    other_host = f".b.dcmforge-elsewhere-{2**22 + 1}-{token}.partial"
    not_ours = ".c.dcmforge-x.partial"
    for name in (live, other_host, not_ours):
        (tmp_path / name).mkdir()
    with caplog.at_level(logging.WARNING, logger="dcmforge"):
        write(tmp_path / "series", {"a": b"a"})
    assert sorted(os.listdir(tmp_path)) == sorted([live, other_host, not_ours, "series"])
    assert not caplog.records


def test_a_private_folder_of_this_process_is_left_to_the_thread_making_it(tmp_path, caplog):
    """Another thread's folder, made and not yet locked: its lock is free, yet its writer lives (this
    process). The cleaner leaves it, and says nothing of a process that no longer runs."""
    making = tmp_path / f".a.dcmforge-{commit._host()}-{os.getpid()}-0123456789abcdef.partial"
    making.mkdir()
    (making / commit.LOCK_NAME).touch()
    with caplog.at_level(logging.WARNING, logger="dcmforge"):
        write(tmp_path / "series", {"a": b"a"})
    assert sorted(os.listdir(tmp_path)) == sorted([making.name, "series"])
    assert not caplog.records


def test_two_processes_committing_one_folder_at_once_leave_one_whole_series(tmp_path, renames):
    # Both processes write their files, wait for a go file, then commit at the same moment.
    script = textwrap.dedent("""
        import os, sys, time
        from dcmforge.errors import OutputExistsError
        from dcmforge.write import commit
        if sys.argv[3] == "fallback":
            commit._libc_renameat2 = lambda: None
        folder = commit.SeriesFolder(sys.argv[1])
        for n in range(50):
            folder.write(f"PT_{n:04d}.dcm", [sys.argv[2].encode()])
        while not os.path.exists(sys.argv[1] + ".go"):
            time.sleep(0.001)
        try:
            folder.commit()
        except OutputExistsError as exc:
            print(exc)
            sys.exit(2)
    """)
    final = tmp_path / "series"
    env = {**os.environ, "PYTHONPATH": SOURCE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(final), name, renames], env=env, stdout=subprocess.PIPE,
                         text=True)
        for name in ("one", "two")
    ]
    while len([n for n in os.listdir(tmp_path) if n.endswith(".partial")]) < 2 or any(
        len(os.listdir(tmp_path / n)) < 50 for n in os.listdir(tmp_path) if n.endswith(".partial")
    ):
        assert all(w.poll() is None for w in writers)
    (tmp_path / "series.go").touch()
    results = [(w.wait(timeout=60), w.stdout.read()) for w in writers]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(out for code, out in results if code == 2)
    assert f"{final} was written by another writer meanwhile" in loser
    contents = {data for data in tree(final).values()}
    assert len(os.listdir(final)) == 50 and len(contents) == 1
    assert sorted(os.listdir(tmp_path)) == ["series", "series.go"]


# -- the hook before the rename, and single files --------------------------------------------------------


def test_a_before_commit_that_raises_leaves_no_private_folder(tmp_path, renames):
    def full(folder):
        assert sorted(os.listdir(folder)) == sorted([commit.LOCK_NAME, "PT_0001.dcm", "PT_0002.dcm"])
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_series(activity((2, 3, 2)), tmp_path / "made" / "series", spacing=(1, 1, 1), metadata=METADATA,
                     before_commit=full)  # fmt: skip
    assert os.listdir(tmp_path) == []


BEFORE_COMMIT_WAITS = textwrap.dedent("""
    import sys, time
    import numpy as np
    from dcmforge import write_series
    def hold(folder):
        print("recording", flush=True)
        time.sleep(120)
    write_series(np.ones((2, 3, 2), np.float32), sys.argv[1], spacing=(1, 1, 1), before_commit=hold)
""")


def test_an_interrupt_in_before_commit_leaves_no_private_folder(tmp_path):
    """A real process interrupted (SIGINT) while its hook records the series: nothing is left."""
    env = {**os.environ, "PYTHONPATH": SOURCE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-c", BEFORE_COMMIT_WAITS, str(tmp_path / "series")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline() == "recording\n"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGINT and "KeyboardInterrupt" in err
    assert os.listdir(tmp_path) == []


def test_write_file_never_writes_through_a_file_planted_at_its_temporary_name(tmp_path, monkeypatch):
    """A hard link to another file at the temporary name (made predictable here): O_EXCL refuses it."""
    from dcmforge.dicom.part10 import write_file

    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    monkeypatch.setattr(os, "urandom", lambda n: bytes(n))
    os.link(victim, tmp_path / f".slice.dcm.{bytes(8).hex()}.tmp")
    dataset = {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.128", "SOPInstanceUID": "1.2.3.4", "PatientName": "A^B"}
    with pytest.raises(FileExistsError):
        write_file(tmp_path / "slice.dcm", dataset)
    assert victim.read_bytes() == b"precious" and not (tmp_path / "slice.dcm").exists()


@pytest.mark.parametrize("where", ["SeriesWriter", "SeriesFolder", "made, not yet registered"])
def test_an_interrupt_before_the_block_that_removes_the_folder_leaves_nothing(tmp_path, monkeypatch, where):
    """A stop signal raises KeyboardInterrupt wherever the process is: also at the call of the ``__enter__``
    of the ``with`` that would remove a private folder just made (a SeriesWriter's, which makes its folder
    with its first images, inside its block; the NM writer's SeriesFolder, entered with abort_on_interrupt),
    or inside SeriesFolder right after the folder is made and locked. Nothing is left."""
    from dcmforge.convert import convert_one
    from dcmforge.readers.interfile import write_interfile
    from dcmforge.write import series as series_module

    header = write_interfile(tmp_path / "pet.hv", activity((3, 4, 5)), spacing=(2, 2, 2))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "made, not yet registered":
        make = SeriesFolder._make_private_folder
        monkeypatch.setattr(SeriesFolder, "_make_private_folder", lambda folder: make(folder) or interrupted())
    else:
        monkeypatch.setattr(series_module.SeriesWriter if where == "SeriesWriter" else SeriesFolder, "__enter__",
                            interrupted)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        convert_one(header, tmp_path / "out" / "pet", {"modality": "NM" if where == "SeriesFolder" else "PT"})
    assert sorted(os.listdir(tmp_path)) == ["pet.hv", "pet.v"] and commit._unfinished == {}


def test_an_interrupt_as_the_private_folder_is_made_leaves_nothing(tmp_path, monkeypatch):
    """Python raises a signal's KeyboardInterrupt as a call returns: as mkdir returns, the folder is made
    and not yet locked nor known to anything that would remove it. SeriesFolder removes it."""
    make_folder = os.mkdir

    def made_then_interrupted(*args, **kwargs):
        make_folder(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(commit.os, "mkdir", made_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        SeriesFolder(tmp_path / "series")
    assert os.listdir(tmp_path) == []
