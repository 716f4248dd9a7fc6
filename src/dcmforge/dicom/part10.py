"""DICOM Part 10 files: preamble, "DICM", the file meta group, the dataset (PS3.10 7.1).

A single file (write_file) appears under its final name only when complete:
it is written to a new, unpredictable temporary name in the same folder
(O_EXCL|O_NOFOLLOW: a planted file or link is never used) and renamed. A
series is committed as a folder instead (write/commit.py).
"""

import contextlib
import functools
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .encode import element_header, encode_dataset, encode_element, ui_element
from ..errors import EncodingError
from .uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, is_valid_uid
from .vr import VR_RULES

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
PREAMBLE = bytes(128) + b"DICM"

_MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
_GROUP_LENGTH_HEADER = element_header(0x00020000, "UL", 4)
_META_VERSION = element_header(0x00020001, "OB", 2) + b"\x00\x01"
_META_TAIL = b"".join(
    encode_element(key, value)
    for key, value in (
        ("TransferSyntaxUID", EXPLICIT_VR_LITTLE_ENDIAN),
        ("ImplementationClassUID", IMPLEMENTATION_CLASS_UID),
        ("ImplementationVersionName", IMPLEMENTATION_VERSION_NAME),
    )
)


def file_meta(sop_class_uid, sop_instance_uid, generated=False):
    """Preamble, "DICM" and the file meta group, its group length counted (PS3.10 7.1).

    ``generated``: the instance UID is one dicom.uids made, valid by construction (not checked again).
    """
    before_instance = _meta_before_instance(sop_class_uid)
    if generated or is_valid_uid(sop_instance_uid):  # a series' every file: its UID is the one thing that differs
        instance = ui_element(_MEDIA_STORAGE_SOP_INSTANCE_UID, sop_instance_uid)
    else:
        instance = encode_element("MediaStorageSOPInstanceUID", sop_instance_uid)  # which names the problem
    length = len(before_instance) + len(instance) + len(_META_TAIL)
    return b"".join((PREAMBLE, _GROUP_LENGTH_HEADER, length.to_bytes(4, "little"), before_instance, instance, _META_TAIL))


@functools.lru_cache(maxsize=16)
def _meta_before_instance(sop_class_uid):
    """The meta elements before MediaStorageSOPInstanceUID: the same for every file of a series."""
    return _META_VERSION + encode_element("MediaStorageSOPClassUID", sop_class_uid)


def _sop_uids(dataset):
    try:
        return dataset["SOPClassUID"], dataset["SOPInstanceUID"]
    except KeyError as missing:
        raise EncodingError(f"a Part 10 file needs {missing.args[0]} in its dataset") from None


def encode_file(dataset: Mapping[str | int, Any]) -> bytes:
    """The bytes of a whole Part 10 file holding ``dataset``."""
    body = encode_dataset(dataset)  # first, so a bad value fails before anything else
    return file_meta(*_sop_uids(dataset)) + body


@contextlib.contextmanager
def atomic_file(path):
    """A file descriptor to write ``path`` through: the file gets its name only when the block succeeds.

    It is written under a temporary name in the same folder and renamed; if
    the block raises, the temporary file is removed and nothing is left.
    """
    path = os.fspath(path)  # plain strings: pathlib costs more than the write on a memory file system
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            yield fd
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_atomic(path, pieces):
    """Write the byte pieces to ``path`` through a temporary name, so no half file is ever seen."""
    with atomic_file(path) as fd:
        write_all(fd, pieces)
    return Path(path)


# IOV_MAX on Linux and macOS: writev fails with EINVAL when given more buffers.
_WRITEV_MAX_BUFFERS = 1024


def write_all(fd, pieces):
    """Write the pieces (bytes or arrays) at fd's position, writev until every byte is out.

    A write may be short (a full pipe, NFS, a signal): the rest follows it.
    """
    views = [memoryview(piece).cast("B") for piece in pieces]
    while views:
        written = os.writev(fd, views[:_WRITEV_MAX_BUFFERS])
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views and written:
            views[0] = views[0][written:]


def write_file(path: str | os.PathLike, dataset: Mapping[str | int, Any]) -> Path:
    """Encode ``dataset`` as a Part 10 file at ``path`` (atomically); returns the path."""
    return write_atomic(path, [encode_file(dataset)])


_ELEMENT_START = struct.Struct("<HH2sH")  # group, element, VR, short length (or reserved)
_UNDEFINED_LENGTH = 0xFFFFFFFF


def read_text_element(path, tag):
    """The text of top-level element ``tag`` in a Part 10 file in Explicit VR Little Endian
    (as dcmforge writes them), or None when the file does not hold it.

    Walks element headers from the meta group on, skipping values, and stops
    past ``tag``: a series' SeriesInstanceUID costs a few reads, not the pixels.
    """
    with open(path, "rb") as stream:
        if stream.read(len(PREAMBLE)) != PREAMBLE:
            return None
        while True:
            head = stream.read(_ELEMENT_START.size)
            if len(head) < _ELEMENT_START.size:
                return None
            group, element, vr, length = _ELEMENT_START.unpack(head)
            rule = VR_RULES.get(vr.decode("ascii", "replace"))
            if rule is not None and rule.long_header:
                length = int.from_bytes(stream.read(4), "little")
            found = (group << 16) | element
            if found > tag or length == _UNDEFINED_LENGTH:
                return None
            if found == tag:
                return stream.read(length).decode("ascii", "replace").rstrip("\0 ")
            stream.seek(length, os.SEEK_CUR)
