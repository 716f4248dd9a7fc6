"""Data elements and data sets in Explicit VR Little Endian (PS3.5 section 7).

A dataset is a plain mapping from a keyword (or a tag: an int, a
``(group, element)`` tuple or ``"(gggg,eeee)"``) to a value; a sequence is a
list of such mappings. Tags that are not in the tag table (private ones)
carry their VR with the value: ``{(0x0009, 0x1001): Explicit("LO", "x")}``.

Elements are written in ascending tag order at every nesting level, and
sequences and items with defined lengths, so every length is known before
it is written.
"""

import collections
import functools
import operator
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

from . import tags
from ..errors import EncodingError
from .values import plain_key
from .vr import CHARACTER_SETS, VR_RULES, encode_value, format_ds


class Explicit(NamedTuple):
    """A value with its VR given explicitly: for private tags and to override an ambiguous VR."""

    vr: str
    value: object


_first = operator.itemgetter(0)  # the tag of a (tag, bytes) pair, to sort by
_SHORT_HEADER = struct.Struct("<HH2sH")
_LONG_HEADER = struct.Struct("<HH2sHI")
_ITEM_HEADER = struct.Struct("<HHI")
_ITEM_TAG = (0xFFFE, 0xE000)

# Groups no dataset may hold: command and meta groups, and the groups PS3.5 7.1 reserves.
_FORBIDDEN_GROUPS = frozenset({0x0000, 0x0001, 0x0002, 0x0003, 0x0005, 0x0007, 0xFFFF, 0xFFFE})


def element_header(tag, vr, length):
    """The 8- or 12-byte header of an element with a defined length."""
    if VR_RULES[vr].long_header:
        return _LONG_HEADER.pack(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, length)
    return _SHORT_HEADER.pack(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), length)


def concrete_vr(vr, context):
    """Pick one VR where the dictionary gives a choice (PS3.5 A.1 c, PS3.3 C.7.6.3).

    ``context`` is the dataset the element belongs to (for PixelRepresentation
    and BitsAllocated).
    """
    if " or " not in vr:
        return vr
    if vr == "OB or OW":
        return "OB" if _as_int(context.get("BitsAllocated"), 16) <= 8 else "OW"
    if "SS" in vr and _as_int(context.get("PixelRepresentation"), 0) == 1:
        return "SS"
    return "US"


def _as_int(value, fallback):
    """An attribute read as an int for choosing a VR; an unusable one is reported by validation, not here."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback


def resolve(key, value, context):
    """(tag, keyword, VR, value) of one dataset entry."""
    if isinstance(value, Explicit):
        tag = tags.tag_of(key)
        entry = tags.entry_for_tag(tag)
        if value.vr not in VR_RULES:
            raise EncodingError("unknown VR", keyword=entry and entry.keyword, tag=tag, vr=value.vr)
        return tag, entry.keyword if entry else None, value.vr, value.value
    tag, entry = entry_for_key(key)
    if entry is None:
        raise EncodingError("not in the tag table: give its VR with Explicit(vr, value)", tag=tag, value=value)
    return tag, entry.keyword, concrete_vr(entry.vr, context), value


def entry_for_key(key):
    """(tag, dictionary entry or None) of a dataset key; a keyword's is cached: the same keys recur in every slice."""
    return _keyword_entry(key) if type(key) is str else _key_entry(key)  # (0, 1) == (0, True), a bad tag


def _key_entry(key):
    tag = tags.tag_of(key)
    return tag, tags.entry_for_tag(tag)


_keyword_entry = functools.lru_cache(maxsize=4096)(_key_entry)


def _check_tag(tag, keyword, value):
    group, element = tag >> 16, tag & 0xFFFF
    if group in _FORBIDDEN_GROUPS or element == 0x0000:
        raise EncodingError(
            "this tag cannot appear in a dataset (meta, command, group-length or reserved group)",
            keyword=keyword,
            tag=tag,
            value=value,
        )


def encode_element(key, value, codec="ascii", context=None):
    """The bytes of one element: header and value (items included for a sequence)."""
    return _element(key, value, codec, {} if context is None else context)[2]


# (keyword, codec, value as a key) -> (tag, keyword, element bytes), for the plain values (text, numbers, lists of
# them) that recur from series to series of a process. An element's bytes are a function of these alone when
# its VR is not ambiguous, and only a value that encoded without error is kept: a bad one is refused every time.
_known_elements = {}
_CACHE_LIMIT = 4096
_CACHED_BYTES = 4096  # a long list of numbers is rare and would hold its memory: encoded each time


def _element(key, value, codec, context, check_tag=False):
    """(tag, keyword, bytes) of one dataset entry; check_tag: refuse a tag no dataset may hold (before encoding)."""
    value_key = plain_key(value) if type(key) is str else None  # keywords: 1, 1.0 and True are not one key
    if value_key is not None:
        known = _known_elements.get((key, codec, value_key))
        if known is not None:
            if check_tag:
                _check_tag(known[0], known[1], value)
            return known
    tag, keyword, vr, value = resolve(key, value, context)
    if check_tag:
        _check_tag(tag, keyword, value)
    element = tag, keyword, _encode_resolved(tag, keyword, vr, value, codec, context)
    if value_key is not None and len(element[2]) <= _CACHED_BYTES and not _chosen_by_context(key, value):
        if len(_known_elements) >= _CACHE_LIMIT:
            _known_elements.clear()
        _known_elements[(key, codec, value_key)] = element
    return element


def _encode_resolved(tag, keyword, vr, value, codec, context):
    try:
        if vr == "SQ":
            data = _encode_sequence(value, codec, context)
        else:
            data = encode_value(vr, value, codec)
    except EncodingError as exc:
        if exc.tag is not None or exc.keyword is not None:  # raised inside an item: keep its names
            raise EncodingError(f"in {keyword or tags.format_tag(tag)}: {exc}") from exc
        raise EncodingError(exc.reason, keyword=keyword, tag=tag, vr=vr, value=exc.value) from None
    return element_header(tag, vr, len(data)) + data


def _chosen_by_context(key, value):
    """True if the element's VR, or one in its items, is ambiguous: chosen by the dataset's other values."""
    if " or " in entry_for_key(key)[1].vr:
        return True
    if type(value) is not list and type(value) is not tuple:
        return False
    return any(_chosen_by_context(k, v) for item in value if type(item) is dict for k, v in item.items())


def _encode_sequence(items, codec, context):
    if items is None:
        return b""
    if isinstance(items, dict) or not isinstance(items, (list, tuple)):
        raise EncodingError("a sequence needs a list of datasets", vr="SQ", value=items)
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise EncodingError("a sequence item must be a dataset (a mapping)", vr="SQ", value=item)
        body = b"".join(data for _, data in encode_elements(item, codec, {**context, **item}))
        out.append(item_bytes(body))
    return b"".join(out)


def item_bytes(body):
    """A sequence item with a defined length around an already encoded dataset."""
    return _ITEM_HEADER.pack(*_ITEM_TAG, len(body)) + body


def sequence_bytes(tag, items):
    """A sequence element with a defined length around already encoded items."""
    return element_header(tag, "SQ", len(items)) + items


def encode_elements(dataset, codec="ascii", context=None):
    """[(tag, bytes)] of every element of one dataset level, in ascending tag order."""
    context = dataset if context is None else context
    encoded = []
    for key, value in dataset.items():
        tag, _, data = _element(key, value, codec, context, check_tag=True)
        encoded.append((tag, data))
    encoded.sort(key=_first)
    for (tag_a, _), (tag_b, _) in zip(encoded, encoded[1:]):
        if tag_a == tag_b:
            raise EncodingError("given twice (by keyword and by tag?)", tag=tag_a)
    return encoded


def has_non_ascii(value):
    """True if any text in value (nested datasets and sequences included) is not plain ASCII."""
    kind = type(value)
    if kind is str:
        return not value.isascii()
    if kind is int or kind is float or value is None:  # most values: no isinstance chain
        return False
    if isinstance(value, str):
        return not value.isascii()
    if isinstance(value, Explicit):
        return has_non_ascii(value.value)
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return False
    return any(map(has_non_ascii, value))


def with_character_set(dataset):
    """(dataset, codec): add SpecificCharacterSet ISO_IR 192 (UTF-8) when any text is not ASCII.

    A SpecificCharacterSet given by the caller is kept if dcmforge knows its codec.
    """
    given = dataset.get("SpecificCharacterSet")
    if given is not None:
        terms = [given] if isinstance(given, str) else given if isinstance(given, (list, tuple)) else None
        name = "\\".join(str(term) for term in terms) if terms is not None else None  # a number names no set
        codec = CHARACTER_SETS.get(name.strip()) if name is not None else None
        if codec is None:
            raise EncodingError(
                f"dcmforge writes only {', '.join(repr(c) for c in CHARACTER_SETS if c)}",
                keyword="SpecificCharacterSet",
                tag=0x00080005,
                vr="CS",
                value=given,
            )
        return dataset, codec
    if has_non_ascii(dataset):
        return {**dataset, "SpecificCharacterSet": "ISO_IR 192"}, "utf-8"
    return dataset, "ascii"


def encode_dataset(dataset: Mapping[str | int, Any]) -> bytes:
    """The bytes of a whole dataset, SpecificCharacterSet chosen as needed."""
    dataset, codec = with_character_set(dataset)
    return b"".join(data for _, data in encode_elements(dataset, codec))


# A per-slice value that leaves its element out of that slice.
ABSENT = object()
_MISSING = object()
_CACHEABLE = frozenset({str, int, float})


class _Slot(NamedTuple):
    """A hole in a HeaderTemplate: one per-slice element, its tag and VR looked up once."""

    key: object
    tag: int
    keyword: str
    vr: str  # as in the tag table: may still be ambiguous ("US or SS")


class HeaderTemplate:
    """A dataset's bytes with holes for the elements that differ per slice.

    The shared elements are encoded once; ``render`` encodes only the
    per-slice ones and returns the pieces in tag order, ready for writev.
    """

    def __init__(self, shared, slice_keys, codec):
        self.codec = codec
        self.shared = shared
        self._encoded = {}  # (tag, VR, type, value) -> element bytes
        slots = []
        for key in slice_keys:
            tag, entry = entry_for_key(key)
            if entry is None:
                raise EncodingError("a per-slice element must be in the tag table", tag=tag)
            slots.append((tag, _Slot(key, tag, entry.keyword, entry.vr)))
        slot_tags = {tag for tag, _ in slots}
        pieces = [(tag, data) for tag, data in encode_elements(shared, codec, shared) if tag not in slot_tags]
        self.encoded = frozenset(shared)  # every shared key encoded without error: validation need not again
        pieces += slots
        pieces.sort(key=_first)
        # Neighbouring shared pieces joined, so render joins as few bytes objects as possible.
        self.plan, run = [], []
        for _, piece in pieces:
            if type(piece) is bytes:
                run.append(piece)
                continue
            if run:
                self.plan.append(b"".join(run))
                run = []
            self.plan.append(piece)
        if run:
            self.plan.append(b"".join(run))

    def render(self, per_slice):
        """The dataset's bytes as a list of pieces; per_slice holds every slot's value."""
        context = collections.ChainMap(per_slice, self.shared)
        out = []
        for piece in self.plan:
            if isinstance(piece, bytes):
                out.append(piece)
                continue
            value = per_slice.get(piece.key, _MISSING)
            if value is ABSENT:
                continue
            if value is _MISSING:
                raise EncodingError("no per-slice value given (ABSENT leaves it out)", keyword=piece.keyword, tag=piece.tag)
            vr = concrete_vr(piece.vr, context)
            # Values that repeat from slice to slice (per-frame times, signedness) are
            # encoded once; the type is part of the key because 1 == 1.0 == True.
            key = (piece.tag, vr, type(value), value) if type(value) in _CACHEABLE else None
            data = self._encoded.get(key) if key else None
            if data is None:
                data = _encode_resolved(piece.tag, piece.keyword, vr, value, self.codec, context)
                if key:
                    if len(self._encoded) >= _CACHE_LIMIT:
                        self._encoded.clear()
                    self._encoded[key] = data
            out.append(data)
        return out


# -- dedicated encoders for the few elements a series writes per slice -------------
# The same bytes as encode_element for values the writer made itself (finite
# floats, ints in range, generated UIDs), without its lookups and checks:
# tests/test_encode.py compares them over many values.


def ds_element(tag, numbers):
    """A DS element of one float or a list of floats."""
    text = "\\".join(map(format_ds, numbers)) if isinstance(numbers, list) else format_ds(numbers)
    data = text.encode("ascii")
    if len(data) & 1:
        data += b" "
    return _SHORT_HEADER.pack(tag >> 16, tag & 0xFFFF, b"DS", len(data)) + data


def is_element(tag, number):
    """An IS element of one int."""
    data = str(number).encode("ascii")
    if len(data) & 1:
        data += b" "
    return _SHORT_HEADER.pack(tag >> 16, tag & 0xFFFF, b"IS", len(data)) + data


def ui_element(tag, uid):
    """A UI element of one UID."""
    data = uid.encode("ascii")
    if len(data) & 1:
        data += b"\0"
    return _SHORT_HEADER.pack(tag >> 16, tag & 0xFFFF, b"UI", len(data)) + data


_US_ELEMENT = struct.Struct("<HH2sHH")
_SS_ELEMENT = struct.Struct("<HH2sHh")


def us_element(tag, number):
    """A US element of one int."""
    return _US_ELEMENT.pack(tag >> 16, tag & 0xFFFF, b"US", 2, number)


def ss_element(tag, number):
    """An SS element of one int."""
    return _SS_ELEMENT.pack(tag >> 16, tag & 0xFFFF, b"SS", 2, number)
