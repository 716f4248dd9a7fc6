"""A series folder that appears whole or not at all: written privately, committed by one rename.

``SeriesFolder(final)`` makes a private temporary folder beside ``final``
(same parent, so the same file system), named

    .NAME.dcmforge-HOST-PID-TOKEN.partial

(NAME the final folder's name, cut to 80 bytes; HOST this machine's name,
PID the writing process, TOKEN 16 random hex digits), mode 0700, made with
``mkdir`` (which fails if the name exists). Files are created in it through
its open directory descriptor with O_CREAT|O_EXCL|O_NOFOLLOW: a planted link
or file is never followed or reused. ``commit()`` gives the folder the usual
permissions (0777 less the umask) and renames it to ``final`` with
``renameat2(RENAME_NOREPLACE)``, so it never replaces an existing folder,
even an empty one: of two writers of one series exactly one wins and the
other gets ``OutputExistsError`` (its temporary folder removed). With
``overwrite`` the new series is swapped in by ``RENAME_EXCHANGE`` (the final
name holds the old series or the new one, never a mix) and the old one,
now under the temporary name, is removed. Any failure before the commit
(an exception, KeyboardInterrupt, a full disk) removes the temporary folder,
and the folders this writer made above it; an existing series is untouched.
A KeyboardInterrupt between the folder's making and the ``with`` block meant
to remove it is caught by ``abort_on_interrupt``, which removes it.

Without renameat2 (not Linux, or a file system that refuses its flags) the
same guarantees come from plain calls: ``mkdir(final)`` claims the name (a
second writer's mkdir fails) and ``rename`` replaces that empty claim with the
series; overwrite renames the old folder aside first. Readers may then see an
empty folder, or no folder, for that instant; never a partial series.

Liveness is a lock, not a pid: the writer creates ``LOCK_NAME`` in its
private folder and holds an exclusive ``flock`` on it until the commit (or
the removal). A process killed outright (SIGKILL, power loss) leaves its
private folder, never anything under a final name, and its lock is free:
the next SeriesFolder made in the same parent takes the lock of each private
folder it finds, and removes those whose lock it can take, with a warning
naming them. A folder whose lock is held is left alone whoever holds it: a
process in another PID namespace (a container), of another user, or on
another host of a shared file system whose locks reach the server (NFS with
its lock service; on a ``nolock`` mount locks are local to each client).
Pids (HOST-PID in the name) only say whose folder it was. A folder without
its lock file is left alone too: the lock file is removed just before the
rename (so a series never holds it), and a writer killed in that instant, or
between making the folder and its lock, or (overwriting) between the swap and
the removal of the old series, leaves a folder nothing removes.

``before_commit``, when given, is called with the temporary folder's path
once every file is written, just before the rename (a batch records the
series there, so that no instant exists in which it is committed but
unrecorded); what it raises aborts the series like any failure before the
commit.

``durable=True`` fsyncs every file, the temporary folder before the rename
and the parent after it, so a committed series survives a power loss.
"""

import contextlib
import errno
import fcntl
import functools
import logging
import os
import re
import stat
import threading

from ..dicom.part10 import write_all
from ..errors import DcmforgeError, OutputExistsError
from ..paths import cut_to_bytes, shown

log = logging.getLogger("dcmforge")

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_LOCK_FILE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PARTIAL = re.compile(r"\..*\.dcmforge-(?P<host>[A-Za-z0-9-]*)-(?P<pid>\d+)-[0-9a-f]{16}\.partial", re.DOTALL)
_NAME_KEPT = 80  # bytes of the final name, in the temporary one: it stays within NAME_MAX
# The lock file in a private folder: held (flock) by its writer while it lives.
LOCK_NAME = ".dcmforge-writer.lock"
_LOCK_FILE = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # RDWR: NFS emulates flock with write locks


class SeriesFolder:
    """A private folder that becomes ``final`` when ``commit()`` is called, or vanishes.

    >>> with abort_on_interrupt(), SeriesFolder("out/PT") as folder:      # doctest: +SKIP
    ...     folder.write("PT_0001.dcm", [header, pixels])
    ...     folder.commit()

    Leaving the block without a commit (or with an exception) removes it;
    abort_on_interrupt, an interrupt at the call of its ``__enter__`` too.
    """

    def __init__(self, final, *, overwrite=False, durable=False, before_commit=None):
        self.final = os.path.abspath(os.fspath(final))
        self.parent, self.name = os.path.split(self.final)
        if self.name in ("", ".", ".."):
            raise DcmforgeError(f"{final!r} cannot name a series folder")
        self.overwrite = overwrite
        self.durable = durable
        self.before_commit = before_commit
        self.committed = False
        if os.path.lexists(self.final):  # before any voxel is read
            _check_replaceable(self.final, overwrite)
        self._made = _missing_ancestors(self.parent)
        self.parent_fd = _open_parent(self.parent)
        self.fd = self.lock_fd = None
        try:
            remove_stale(self.parent_fd, self.parent)
            self._make_private_folder()
            _unfinished[self] = threading.get_ident()
        except BaseException:
            _unfinished.pop(self, None)
            if self.lock_fd is not None:  # made and locked, then an interrupt: ours to remove, lock held
                _remove_tree(self.parent_fd, self.temporary)
            self._close_folder()
            os.close(self.parent_fd)
            _remove_made(self._made)
            raise

    def _make_private_folder(self):
        """mkdir the private folder and lock it. A cleaner may take the lock between the two (it cannot
        tell a folder not locked yet from a dead writer's): then it removes the folder, and a new one is made."""
        for _ in range(3):
            self.temporary = _temporary_name(self.name)
            try:
                os.mkdir(self.temporary, 0o700, dir_fd=self.parent_fd)
            except FileExistsError:
                raise  # the name is someone else's
            except BaseException:  # also an interrupt as mkdir returns: a folder of this unique name is ours
                _remove_tree(self.parent_fd, self.temporary)
                raise
            try:
                self.fd = os.open(self.temporary, _DIRECTORY | os.O_NOFOLLOW, dir_fd=self.parent_fd)
                self.lock_fd = os.open(LOCK_NAME, _NEW_LOCK_FILE, 0o600, dir_fd=self.fd)
                if _try_lock(self.lock_fd) and os.fstat(self.lock_fd).st_nlink:
                    return
            except BaseException:  # an interrupt, a full disk: the folder goes too
                self._close_folder()
                _remove_tree(self.parent_fd, self.temporary)
                raise
            self._close_folder()  # a cleaner holds it, or held it and removed the folder
        raise OutputExistsError(f"{shown(self.parent)}: the private folders made there were removed at once, three times")

    def path(self, name):
        """Where ``name`` is once the series is committed."""
        return os.path.join(self.final, name)

    def open(self, name):
        """A new file's descriptor (the caller closes it; ``close_file`` fsyncs first when durable)."""
        return os.open(name, _NEW_FILE, 0o644, dir_fd=self.fd)

    def close_file(self, fd):
        try:
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, name, pieces, sync=True):
        """Create ``name`` in the folder and write the byte pieces (bytes or arrays) into it.

        ``sync=False``: no fsync even when durable, for a file that ``patch`` completes (and fsyncs).
        """
        fd = os.open(name, _NEW_FILE, 0o644, dir_fd=self.fd)
        try:
            write_all(fd, pieces)
            if self.durable and sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def write_kept(self, name, pieces):
        """``write`` without the close: the new file's descriptor, which the caller closes (``patch`` takes it)."""
        fd = self.open(name)
        try:
            write_all(fd, pieces)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def patch(self, name, offset, data, fd=None):
        """Overwrite ``len(data)`` bytes at ``offset`` of the folder's file ``name`` (fsynced when durable).

        ``fd``: the file's open descriptor (``write_kept``'s), used instead of opening it again; the caller closes it.
        """
        opened = fd is None
        if opened:
            fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        try:
            if os.pwrite(fd, data, offset) != len(data):
                raise OSError(f"{self.path(name)}: short write of {len(data)} bytes at {offset}")
            if self.durable:
                os.fsync(fd)
        finally:
            if opened:
                os.close(fd)

    def commit(self):
        """Rename the folder to its final name; OutputExistsError if another series got there first."""
        try:
            os.chmod(self.fd, 0o777 & ~_umask())
            if self.before_commit is not None:
                self.before_commit(os.path.join(self.parent, self.temporary))
            # Held until the rename: a cleaner leaves a folder without its lock file alone.
            os.unlink(LOCK_NAME, dir_fd=self.fd)
            if self.durable:
                os.fsync(self.fd)
            swapped = False
            if not _rename_new(self.parent_fd, self.temporary, self.name):
                if self.overwrite:
                    _check_replaceable(self.final, True)
                swapped = self.overwrite and _swap_in(self.parent_fd, self.temporary, self.name)
                if not swapped:
                    raise OutputExistsError(f"{self.final} was written by another writer meanwhile; this series was not kept")
        except BaseException:
            self.abort()
            raise
        self.committed = True
        _unfinished.pop(self, None)
        try:
            self._close_folder()
            if self.durable:
                os.fsync(self.parent_fd)
            if swapped:
                _remove_tree(self.parent_fd, self.temporary)  # the old series, now under the temporary name
        finally:
            self._close_parent()
        return self.final

    def abort(self):
        """Remove the temporary folder, and the folders made for it. Safe to call more than once."""
        _unfinished.pop(self, None)
        if self.parent_fd is not None:
            if not self.committed:
                _remove_tree(self.parent_fd, self.temporary)  # its lock still held: no cleaner races us
            self._close_folder()
            self._close_parent()
            _remove_made(self._made)
        self._close_folder()

    def _close_folder(self):
        """Close the folder and its lock file: the lock goes with the last descriptor."""
        for name in ("fd", "lock_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)

    def _close_parent(self):
        if self.parent_fd is not None:
            os.close(self.parent_fd)
            self.parent_fd = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.committed:
            self.abort()
        return False


# SeriesFolder -> the thread that made it, until it is committed or removed (abort_on_interrupt).
_unfinished = {}


@contextlib.contextmanager
def abort_on_interrupt():
    """A KeyboardInterrupt in the block removes the private folders this thread made in it and has neither
    committed nor removed.

    A stop signal raises KeyboardInterrupt wherever the thread is, also in the instant between a
    folder's making and the ``with`` that would remove it (at the call of ``__enter__``).
    """
    thread, earlier = threading.get_ident(), set(_unfinished)
    try:
        yield
    except KeyboardInterrupt:
        for folder, maker in list(_unfinished.items()):
            if maker == thread and folder not in earlier:
                folder.abort()
        raise


def refuse_existing(final, overwrite):
    """OutputExistsError if ``final`` exists and may not be replaced: call it before reading any voxel."""
    final = os.fspath(final)
    if os.path.lexists(final):
        _check_replaceable(final, overwrite)


def _check_replaceable(final, overwrite):
    if not overwrite:
        raise OutputExistsError(f"{shown(final)} exists; pass overwrite=True (--overwrite on the command line)")
    # A series folder holds DICOM files only: anything else (a home folder, Documents) is not ours to delete.
    try:
        fd = os.open(final, _DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise OutputExistsError(f"{shown(final)} exists and is not a folder; it is not replaced") from None
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if not entry.is_file(follow_symlinks=False):
                    what = "not a file"
                elif not _is_part10(fd, entry.name):
                    what = "not a DICOM file"
                else:
                    continue
                raise OutputExistsError(
                    f"{shown(final)} holds {entry.name!r}, which is {what}: not a series folder dcmforge replaces"
                )
    finally:
        os.close(fd)


def _is_part10(folder_fd, name):
    """True when the file holds "DICM" after its 128-byte preamble (PS3.10 7.1)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError:
        return False
    try:
        return os.pread(fd, 4, 128) == b"DICM"
    except OSError:
        return False
    finally:
        os.close(fd)


def remove_stale(parent_fd, parent):
    """Remove the private folders in the parent whose writer's lock is free (it died); warn for each."""
    for name in os.listdir(parent_fd):
        # Most names are series and other files: only a hidden ".partial" one is worth the pattern.
        if name[:1] == "." and name.endswith(".partial"):
            match = _PARTIAL.fullmatch(name)
            # This process's own: another thread's, made and not locked yet (a lock free, a writer alive).
            if match is not None and (match["host"], match["pid"]) != (_host(), str(os.getpid())):
                _remove_if_unlocked(parent_fd, parent, name, match)


def _remove_if_unlocked(parent_fd, parent, name, match):
    """Take the folder's lock and remove it holding the lock; leave it if the lock is held, absent or not ours."""
    try:
        folder_fd = os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError:
        return  # a link or file planted at such a name, another user's folder, or removed meanwhile
    try:
        lock_fd = os.open(LOCK_NAME, _LOCK_FILE, dir_fd=folder_fd)
    except OSError:
        os.close(folder_fd)
        return  # no lock file: not ours to judge
    try:
        if not stat.S_ISREG(os.fstat(lock_fd).st_mode) or not _try_lock(lock_fd):
            return  # a live writer holds it, whoever and wherever it is
        if not _same_folder(parent_fd, name, folder_fd):
            return
        log.warning(
            "%s: a partial series left by process %s on %s, which no longer runs (its lock was free); removed",
            shown(os.path.join(parent, name)),
            match["pid"],
            match["host"] or "an unnamed host",
        )
        _remove_tree(parent_fd, name)
    finally:
        os.close(lock_fd)
        os.close(folder_fd)


def _try_lock(fd):
    """True when this descriptor now holds the exclusive lock; False when another holds it (or locks fail here)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: held; ENOLCK: no lock service (then nothing is judged dead)
        return False
    return True


def _same_folder(parent_fd, name, folder_fd):
    try:
        return os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_ino == os.fstat(folder_fd).st_ino
    except FileNotFoundError:  # another cleaner removed it meanwhile
        return False


def _temporary_name(name):
    return f".{cut_to_bytes(name, _NAME_KEPT)}.dcmforge-{_host()}-{os.getpid()}-{os.urandom(8).hex()}.partial"


@functools.cache
def _host():
    return re.sub(r"[^A-Za-z0-9-]", "", os.uname().nodename)[:32]


def _missing_ancestors(parent):
    """The folders up to ``parent`` that do not exist yet, made now; deepest first."""
    missing = []
    folder = parent
    while not os.path.isdir(folder):
        missing.append(folder)
        up = os.path.dirname(folder)
        if up == folder:
            break
        folder = up
    if missing:  # a parent removed after this check is made again by _open_parent
        os.makedirs(parent, exist_ok=True)
    return missing


def _open_parent(parent):
    for _ in range(3):  # a concurrent writer that failed may remove a parent it made: make it again
        try:
            return os.open(parent, _DIRECTORY)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
    return os.open(parent, _DIRECTORY)


def _remove_made(made):
    for folder in made:
        try:
            os.rmdir(folder)
        except OSError:
            return  # not empty any more (another writer uses it), or gone


def _remove_tree(parent_fd, name):
    import shutil  # here: a series that commits never removes a tree, and shutil's imports cost 2 ms

    try:
        shutil.rmtree(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass


def _umask():
    # Read, not set: os.umask would change it for every thread of the process meanwhile. Three plain system
    # calls: a text file object would add three more, and its line reading, to every commit.
    try:
        fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        try:
            status = b"\n" + os.read(fd, 1 << 16) + b"\n"
        finally:
            os.close(fd)
        start = status.find(b"\nUmask:") + 7
        if start >= 7:
            return int(status[start : status.find(b"\n", start)], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -- renames ----------------------------------------------------------------------


def _rename_new(parent_fd, source, target):
    """Rename source to target unless target exists (even empty); False if it does."""
    try:
        renameat2(parent_fd, source, parent_fd, target, RENAME_NOREPLACE)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise
    # No renameat2: claim the name with mkdir (atomic, fails if it exists), then replace the empty claim.
    try:
        os.mkdir(target, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        return False
    try:
        os.rename(source, target, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except BaseException:
        os.rmdir(target, dir_fd=parent_fd)
        raise
    return True


def _swap_in(parent_fd, source, target):
    """Put source under target and target's old folder under source; False if another writer took target.

    One exchange where the system can; else the old folder goes aside, the new
    one in, and the old one back if that fails.
    """
    try:
        renameat2(parent_fd, source, parent_fd, target, RENAME_EXCHANGE)
        return True
    except FileNotFoundError:  # the old series went away meanwhile
        return _rename_new(parent_fd, source, target)
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise
    aside = _temporary_name(target)
    os.rename(target, aside, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    try:
        if not _rename_new(parent_fd, source, target):
            raise FileExistsError(errno.EEXIST, "written by another writer meanwhile", target)
    except BaseException as exc:
        try:
            os.rename(aside, target, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except OSError:
            log.warning("the earlier series was left under %s", aside)
        if isinstance(exc, FileExistsError):
            return False
        raise
    os.rename(aside, source, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    return True


@functools.cache
def _libc_renameat2():
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc 2.28+ or musl 1.2.3+
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


def renameat2(source_dir_fd, source, target_dir_fd, target, flags):
    """Linux renameat2(2); OSError(ENOSYS) where the C library lacks it."""
    function = _libc_renameat2()
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if function(source_dir_fd, os.fsencode(source), target_dir_fd, os.fsencode(target), flags) != 0:
        import ctypes

        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)
