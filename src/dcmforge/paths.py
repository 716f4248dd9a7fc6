"""Path arguments that must be paths, and input files that must be regular files.

A directory, FIFO or device given where a file belongs is named as such
rather than reported "not found", and a FIFO is never waited on: it is
opened without blocking and refused before a byte is read.
"""

import os
import stat
import unicodedata
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotAFileError(OSError):
    """A path that names something other than a regular file."""


def _kind(mode):
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_a_file(path):
    """What ``path`` is ("a directory", "a FIFO (named pipe)", ...) when it exists and is no regular file, else None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def read_regular_file(path, limit=-1):
    """The bytes of the regular file at ``path`` (its first ``limit`` bytes when limit >= 0).

    Raises NotAFileError (an OSError) for a directory, FIFO, socket or device;
    other OSErrors as ``open`` does.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once instead of waiting for a writer
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotAFileError(f"it is {_kind(mode)}, not a file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with open(fd, "rb") as stream:
        return stream.read(limit)


# How a header may name a data file outside its own folder, in the API and on the command line.
OUTSIDE_OPTION = "allow_data_outside=True (--allow-data-outside)"


def check_inside(header_path, data_path, allowed, error, what="data file"):
    """``error`` when ``data_path`` is outside the folder tree of ``header_path`` and that is not ``allowed``.

    The name is judged as written (``..`` and absolute paths; symbolic links are not
    followed, so a data set linked into its folder still reads): a header must not make
    any file its reader can open the pixels of a series, which ``--send`` uploads.
    """
    folder = os.path.abspath(Path(header_path).parent)
    if allowed or os.path.commonpath([folder, os.path.abspath(data_path)]) == folder:
        return
    raise error(
        f"{header_path}: the {what} {data_path} is outside the header's folder {Path(header_path).parent}: not read "
        f"(its bytes would become the image) unless {OUTSIDE_OPTION}"
    )


def path_argument(value, name, error):
    """``value`` as a Path; ``error`` (a DcmforgeError class) naming the argument when it is no path."""
    if isinstance(value, Path):  # already one (immutable, never empty: Path("") is "."): kept, not parsed again
        return value
    if isinstance(value, (str, os.PathLike)) and os.fspath(value) not in ("", b""):
        return Path(value)
    raise error(f"{name} must be a path (a str or os.PathLike), not {value!r:.60} ({type(value).__name__})")


def shown(text):
    """``text`` (a path, or a line naming one) safe to print: control characters escaped as Python writes
    them (``\\n``, ``\\x1b``), bytes that were not UTF-8 as ``\\xNN``; the rest as it is."""
    text = os.fspath(text) if isinstance(text, os.PathLike) else str(text)
    if text.isprintable():
        return text
    return "".join(_shown_character(c) for c in text)


def _shown_character(c):
    if "\udc80" <= c <= "\udcff":  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{ord(c) - 0xDC00:02x}"
    if unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029":
        return c.encode("unicode_escape").decode("ascii")
    return c


def cut_to_bytes(name, limit):
    """``name`` cut to at most ``limit`` bytes of the file system's encoding, never inside a character."""
    # A byte kept by surrogateescape counts 3: safe. Most names fit: counted whole, not a character at a time.
    if len(name.encode("utf-8", "surrogatepass")) <= limit:
        return name
    size = 0
    for end, c in enumerate(name):
        size += len(c.encode("utf-8", "surrogatepass"))
        if size > limit:
            return name[:end]
    return name
