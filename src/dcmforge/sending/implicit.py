"""Explicit VR Little Endian data sets rewritten as Implicit VR Little Endian, for an archive that accepts only that.

The two syntaxes differ only in element headers (PS3.5 7.1.2, 7.1.3): an
explicit header names the VR and gives a 2-byte length (or 2 reserved bytes
and a 4-byte length for the long VRs), an implicit one has no VR and always a
4-byte length. Values stay as they are, byte for byte; sequences are rewritten
item by item, and a defined length of a sequence or item is recomputed because
the headers inside it change size. A data set that cannot be rewritten without
a data dictionary (a UN of undefined length) or is malformed is a SendError.
"""

import struct

from ..errors import SendError
from .instances import LONG_VRS

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_MAX_DEPTH = 64  # nested sequences deeper than this are not a real data set


def explicit_to_implicit(data):
    """The Implicit VR Little Endian bytes of an Explicit VR Little Endian data set."""
    out = bytearray()
    end = _rewrite_dataset(memoryview(data), 0, len(data), out, 0, None)
    if end != len(data):  # pragma: no cover - _rewrite_dataset reads to the end or raises
        raise SendError("the data set has bytes after its last element")
    return bytes(out)


def _tag(data, at):
    group, number = struct.unpack_from("<HH", data, at)
    return (group << 16) | number


def _rewrite_dataset(data, at, end, out, depth, stop_tag):
    """Rewrite elements from ``at`` to ``end`` (or up to ``stop_tag``, consumed) into ``out``; returns where it stopped."""
    if depth > _MAX_DEPTH:
        raise SendError(f"the data set nests sequences more than {_MAX_DEPTH} deep")
    while at < end:
        if at + 8 > end:
            raise SendError(f"the data set is cut short at byte {at}")
        tag = _tag(data, at)
        if tag == stop_tag:
            out += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, 0)
            return at + 8
        if tag >> 16 == 0xFFFE:
            raise SendError(
                f"the data set has a delimiter ({tag >> 16:04X},{tag & 0xFFFF:04X}) outside a sequence at byte {at}"
            )
        vr = bytes(data[at + 4 : at + 6])
        if vr in LONG_VRS:
            if at + 12 > end:
                raise SendError(f"the data set is cut short at byte {at}")
            length, start = struct.unpack_from("<I", data, at + 8)[0], at + 12
        else:
            if not (vr.isalpha() and vr.isupper()):
                raise SendError(
                    f"the data set is not Explicit VR: element ({tag >> 16:04X},{tag & 0xFFFF:04X}) has VR {vr!r}"
                )
            length, start = struct.unpack_from("<H", data, at + 6)[0], at + 8
        name = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if vr == b"SQ":
            at = _rewrite_sequence(data, tag, start, length, end, out, depth)
            continue
        if length == _UNDEFINED:
            raise SendError(
                f"element {name} has an undefined length as {vr.decode('ascii', 'replace')}: it cannot be made Implicit VR"
            )
        if start + length > end:
            raise SendError(f"element {name} claims {length} bytes past the end of its data set")
        out += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, length)
        out += data[start : start + length]
        at = start + length
    if stop_tag is not None:
        raise SendError(f"a sequence or item of undefined length has no delimiter before byte {end}")
    return at


def _rewrite_sequence(data, tag, start, length, end, out, depth):
    """Rewrite one sequence's items into ``out`` with a new length; returns where the sequence ends in ``data``."""
    header_at = len(out)
    out += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, length)
    defined = length != _UNDEFINED
    if defined and start + length > end:
        raise SendError(
            f"sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) claims {length} bytes past the end of its data set"
        )
    stop = start + length if defined else end
    at = start
    while at < stop:
        if at + 8 > stop:
            raise SendError(f"sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) is cut short at byte {at}")
        item_tag, item_length = _tag(data, at), struct.unpack_from("<I", data, at + 4)[0]
        if item_tag == _SEQUENCE_END and not defined:
            out += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
            return at + 8
        if item_tag != _ITEM:
            raise SendError(
                f"sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) holds ({item_tag >> 16:04X},{item_tag & 0xFFFF:04X}), not an item"
            )
        item_at = len(out)
        out += struct.pack("<HHI", 0xFFFE, 0xE000, item_length)
        if item_length == _UNDEFINED:
            at = _rewrite_dataset(data, at + 8, stop, out, depth + 1, _ITEM_END)
        else:
            if at + 8 + item_length > stop:
                raise SendError(f"an item of sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) claims bytes past its end")
            at = _rewrite_dataset(data, at + 8, at + 8 + item_length, out, depth + 1, None)
            struct.pack_into("<I", out, item_at + 4, len(out) - item_at - 8)
    if not defined:
        raise SendError(f"sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) of undefined length has no delimiter")
    struct.pack_into("<I", out, header_at + 4, len(out) - header_at - 8)
    return at
