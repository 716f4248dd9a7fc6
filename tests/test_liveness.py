"""Whose private folder is alive (issue 19, row 1): a lock its writer holds, not a pid.

Real writers (the command, or a script) in PID namespaces of their own
(``unshare -p``), of another user, SIGSTOPped and SIGKILLed; every test ends
with the ``place`` fixture's check that nothing outside ``--out`` changed.
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_faults import (
    LARGE,
    children_of,
    command,
    environment,
    finish,
    leftovers,
    listing,
    make_input,
    partial_with_files,
    place,  # noqa: F401 - the fixture
    wait_for,
    whole_or_none,
)


def pid_namespaces_allowed():
    try:
        done = subprocess.run(["unshare", "-p", "-f", "--mount-proc", "true"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare cannot run here: {exc}"
    if done.returncode != 0:
        return f"unshare -p -f --mount-proc is not allowed here: {done.stderr.decode(errors='replace').strip()}"
    return None


NO_NAMESPACES = pid_namespaces_allowed()
needs_namespaces = pytest.mark.skipif(NO_NAMESPACES is not None, reason=str(NO_NAMESPACES))


def in_namespace(argv, *, init):
    """argv in a new PID namespace: as its pid 1 (init), or (init=False) as a later pid, after two others."""
    if not init:  # the shell is pid 1, the two trues 2 and 3: the command gets 4 (the shell waits, no exec)
        argv = ["sh", "-c", '/bin/true; /bin/true; "$@"; exit $?', "sh", *argv]
    return subprocess.Popen(["unshare", "-p", "-f", "--mount-proc", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment())  # fmt: skip


def descendants(pid):
    """The pids below pid (from /proc)."""
    found = []
    for child in children_of(pid):
        found += [child, *descendants(child)]
    return found


def converting(process, marker=b"dcmforge.cli"):
    """(host pid, pid in its namespace) of the Python process under process whose arguments hold marker."""
    for pid in descendants(process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if argv[0] == os.fsencode(sys.executable) and marker in argv:
                status = Path(f"/proc/{pid}/status").read_text()
                (line,) = [line for line in status.splitlines() if line.startswith("NSpid:")]
                return pid, int(line.split()[-1])
        except OSError:
            continue
    raise AssertionError(f"no {marker} under the unshare process")


@needs_namespaces
def test_a_live_writer_in_another_pid_namespace_keeps_its_folder(place):
    """Row 1: writer A (pid 4 of its namespace) is stopped mid-series; writer B, pid 1 of another namespace on
    the same host name, converts into the same --out. A's folder is kept (B cannot take its lock); A goes on and
    commits all 600 slices."""
    inputs, out, outside, freeze = place
    big = make_input(inputs, "big", **LARGE)
    small = make_input(inputs, "small")
    freeze()
    first = in_namespace(command("convert", big, "--out", out), init=False)
    wait_for(lambda: partial_with_files(out) or first.poll() is not None, "a temporary folder with files")
    pid, inner = converting(first)
    assert inner > 1, "the first writer must not be pid 1 of its namespace (pid 1 is the second's own pid)"
    os.kill(pid, signal.SIGSTOP)  # alive, and not writing, while the second runs
    try:
        second = in_namespace(command("convert", small, "--out", out), init=True)
        status, stdout, err = finish(second)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert status == 0, err
    assert "partial series" not in err
    status, stdout, err = finish(first)
    assert status == 0, err
    assert whole_or_none(out / "big", 600) is not None and whole_or_none(out / "small", 3) is not None
    assert listing(out) == ["big", "small"] and leftovers(out) == []


@needs_namespaces
def test_a_sigkilled_writer_in_another_pid_namespace_is_cleaned_up_with_a_warning(place):
    """A writer SIGKILLed in its own namespace leaves its private folder; a run in another namespace takes
    its free lock and removes it, saying whose it was."""
    inputs, out, outside, freeze = place
    big = make_input(inputs, "big", **LARGE)
    freeze()
    first = in_namespace(command("convert", big, "--out", out), init=False)
    wait_for(lambda: partial_with_files(out) or first.poll() is not None, "a temporary folder with files")
    pid, inner = converting(first)
    os.kill(pid, signal.SIGKILL)
    status, _, _ = finish(first)
    assert status == 128 + signal.SIGKILL, "the conversion ended before it could be killed"  # the shell says so
    (left,) = leftovers(out)
    status, stdout, err = finish(in_namespace(command("convert", big, "--out", out), init=True))
    assert status == 0, err
    assert f"{left}: a partial series left by process {inner} on " in err and "removed" in err
    assert whole_or_none(out / "big", 600) is not None
    assert listing(out) == ["big"] and leftovers(out) == []


WRITER = textwrap.dedent("""
    import os, sys
    from dcmforge.write.commit import SeriesFolder
    folder = SeriesFolder(sys.argv[1])
    folder.write("PT_0001.dcm", [b"half a series"])
    if sys.argv[2] == "nobody":  # the lock stays held by this process, now another user's
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
    print("written", flush=True)
    sys.stdin.read()  # until the test closes it
""")


def writer(final, how, namespace=False):
    argv = [sys.executable, "-c", WRITER, str(final), how]
    if namespace:
        argv = ["unshare", "-p", "-f", "--mount-proc", *argv]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment())
    assert process.stdout.readline() == "written\n"
    return process


@needs_namespaces
def test_a_dead_writer_whose_pid_now_names_a_live_process_is_cleaned_up(place):
    """pid reuse: a writer that was pid 1 of its namespace, SIGKILLed; pid 1 here is a live process (init).
    Its folder is removed all the same: its lock is free."""
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol")
    freeze()
    killed = writer(out / "series", "killed", namespace=True)
    pid, inner = converting(killed, marker=b"killed")
    assert inner == 1
    os.kill(pid, signal.SIGKILL)  # from outside: the namespace's init ignores its own
    killed.wait(timeout=60)
    (left,) = leftovers(out)
    assert "-1-" in Path(left).name
    status, stdout, err = finish(subprocess.Popen(command("convert", header, "--out", out),
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                  env=environment()))  # fmt: skip
    assert status == 0, err
    assert f"{left}: a partial series left by process 1 on " in err
    assert listing(out) == ["vol"] and leftovers(out) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a writer as another user")
def test_a_live_writer_of_another_user_keeps_its_folder_until_it_dies(place):
    """The lock is held whatever the holder's uid: a live writer that is now user 65534 keeps its folder
    (no os.kill is asked, so no PermissionError can be read as 'dead'); once it dies, the next run removes it."""
    inputs, out, outside, freeze = place
    header = make_input(inputs, "vol")
    freeze()
    held = writer(out / "series", "nobody")
    try:
        (left,) = leftovers(out)
        status, stdout, err = finish(subprocess.Popen(command("convert", header, "--out", out), stdout=subprocess.PIPE,
                                                      stderr=subprocess.PIPE, text=True, env=environment()))
        assert status == 0, err
        assert "partial series" not in err and leftovers(out) == [left]
    finally:
        held.kill()
        held.wait(timeout=60)
    status, stdout, err = finish(subprocess.Popen(command("convert", header, "--out", out, "--overwrite"),
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                  env=environment()))  # fmt: skip
    assert status == 0, err
    assert f"{left}: a partial series left by process {held.pid} on " in err
    assert listing(out) == ["vol"] and leftovers(out) == []
