"""The DICOM Part 10 files of a send: found in the paths given, each read as far as its file meta group."""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotDicomError, SendError

log = logging.getLogger("dcmforge")

# Part 10: a 128-byte preamble, "DICM", then the file meta group (PS3.10 7.1).
_MAGIC_OFFSET = 128
_MAGIC = b"DICM"
# The meta group is a few hundred bytes; more than this is not a meta group.
_META_LIMIT = 1 << 16
# Explicit VR elements whose length takes 4 bytes after 2 reserved ones (PS3.5 7.1.2).
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_META_SOP_CLASS = 0x00020002
_META_SOP_INSTANCE = 0x00020003
_META_TRANSFER_SYNTAX = 0x00020010


@dataclass(frozen=True)
class Instance:
    """One file to send: where it is, its size, the UIDs its meta group names, and where its data set starts."""

    path: str
    size: int
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str = ""
    dataset_offset: int = 0  # the bytes before it: preamble, "DICM" and the meta group


def find_instances(paths):
    """The Part 10 files among ``paths`` (files, or folders searched recursively), in order.

    Every file is checked before anything is sent: a file named in ``paths``
    without "DICM" at byte 128, or any file without a SOP Instance UID in its
    meta group, is a NotDicomError. In folders, hidden files (an unfinished
    write's temporary name) are skipped, and so are files without "DICM" (a
    preview image beside a series), each with a warning.
    """
    files, seen = [], set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                f for f in path.rglob("*") if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts)
            )
            others = [f for f in found if not _has_dicm(f)]
            for other in others:
                log.warning("%s: skipped, not a DICOM file (no 'DICM' at byte 128)", other)
            found = [f for f in found if f not in others]
            if not found:
                raise NotDicomError(f"{path}: no DICOM files in this folder" + (f" ({len(others)} other files)" if others else ""))
        elif path.is_file():
            found = [path]
        else:
            raise NotDicomError(f"{path}: no such file or folder")
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(read_instance(file))
    return files


def _has_dicm(path):
    """Whether the file has "DICM" at byte 128; an unreadable file counts as having it, for read_instance to name."""
    try:
        with open(path, "rb") as f:
            f.seek(_MAGIC_OFFSET)
            return f.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return True


def read_instance(path):
    """The Instance of a Part 10 file: its size and the SOP UIDs of its meta group."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(_MAGIC_OFFSET + len(_MAGIC) + _META_LIMIT)
    except OSError as exc:
        raise NotDicomError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if head[_MAGIC_OFFSET : _MAGIC_OFFSET + len(_MAGIC)] != _MAGIC:
        raise NotDicomError(f"{path}: not a DICOM Part 10 file (no 'DICM' at byte 128)")
    meta, meta_length = meta_group(head[_MAGIC_OFFSET + len(_MAGIC) :], path)
    uid = meta.get(_META_SOP_INSTANCE)
    if not uid:
        raise NotDicomError(f"{path}: its file meta group has no MediaStorageSOPInstanceUID (0002,0003)")
    offset = _MAGIC_OFFSET + len(_MAGIC) + meta_length
    return Instance(str(path), size, meta.get(_META_SOP_CLASS, ""), uid, meta.get(_META_TRANSFER_SYNTAX, ""), offset)


def meta_group(data, path):
    """The text values of the group 0002 elements at the start of ``data`` (explicit VR little endian), by tag,
    and the group's length in bytes."""
    values, at = {}, 0
    while at + 8 <= len(data):
        group = int.from_bytes(data[at : at + 2], "little")
        if group != 0x0002:
            break
        tag = (group << 16) | int.from_bytes(data[at + 2 : at + 4], "little")
        vr = data[at + 4 : at + 6]
        if vr in LONG_VRS:
            if at + 12 > len(data):
                break
            length, start = int.from_bytes(data[at + 8 : at + 12], "little"), at + 12
        else:
            length, start = int.from_bytes(data[at + 6 : at + 8], "little"), at + 8
        if start + length > len(data):
            raise NotDicomError(f"{path}: its file meta group is cut short at element ({tag >> 16:04X},{tag & 0xFFFF:04X})")
        if vr == b"UI":
            values[tag] = data[start : start + length].decode("ascii", "replace").rstrip("\0 ")
        at = start + length
    return values, at


def file_pieces(instance, offset, length, piece_size=1 << 20):
    """``length`` bytes of the instance's file from ``offset``, in pieces of at most ``piece_size``, read as they
    are sent: a file that became shorter since it was found is a SendError naming it."""
    with open(instance.path, "rb") as f:
        f.seek(offset)
        remaining = length
        while remaining:
            piece = f.read(min(piece_size, remaining))
            if not piece:
                raise SendError(f"{instance.path}: the file became shorter while it was being sent")
            remaining -= len(piece)
            yield piece
