"""Look up DICOM data elements by keyword or tag.

The table itself is generated data in ``dcmforge.dicom._dictionary`` (about 5,000
entries, kept as a few texts and a hash table over the keywords). It is imported
on the first lookup, not when this module is imported, so ``import dcmforge``
does not pay for it; a lookup reads its one entry out of the texts.
"""

import re
from typing import NamedTuple

from ..errors import EncodingError


class Entry(NamedTuple):
    """One data dictionary entry. ``vr`` may be ambiguous, e.g. "US or SS"."""

    tag: int
    vr: str
    vm: str
    keyword: str
    retired: bool


# "(0010,0010)", "0010,0010" (a space after the comma is allowed, as pydicom 2
# printed tags) or "00100010".
_TAG_TEXT = re.compile(
    r"\(([0-9A-Fa-f]{4}), ?([0-9A-Fa-f]{4})\)|([0-9A-Fa-f]{4}), ?([0-9A-Fa-f]{4})|([0-9A-Fa-f]{8})"
)

# keyword -> Entry, each built on its first lookup (the table never changes).
_entries = {}


def lookup(keyword: str) -> Entry:
    """The dictionary entry for ``keyword``, e.g. lookup("PatientName").tag == 0x00100010."""
    entry = _entries.get(keyword) if type(keyword) is str else None
    if entry is not None:
        return entry
    if not isinstance(keyword, str):
        raise EncodingError("a keyword must be a str", value=keyword)
    n = _index(keyword)
    if n is None:
        raise EncodingError(_unknown_keyword_reason(keyword), keyword=keyword)
    entry = _entry(n, keyword)
    if type(keyword) is str:  # a str subclass's entry would keep its type
        _entries[keyword] = entry
    return entry


def keyword_slot(keyword, slot_count):
    """The first slot of ``keyword`` (ASCII) in the table's hash table (tools/generate_dictionary.py fills it)."""
    return int.from_bytes(keyword.encode("ascii"), "little") % slot_count


def _table():
    """The generated table module, imported on first use."""
    global _TABLE
    if _TABLE is None:
        from . import _dictionary

        _TABLE = _dictionary
    return _TABLE


_TABLE = None


def _index(keyword):
    """The place n of ``keyword`` in the table (see _dictionary), or None."""
    if not (keyword.isascii() and keyword.isidentifier()):  # every keyword is; "A B" must not match two
        return None
    table = _table()
    slots, offsets, keywords, slot_count = table.SLOTS, table.OFFSETS, table.KEYWORDS, table.SLOT_COUNT
    slot = keyword_slot(keyword, slot_count)
    while n := int(slots[4 * slot : 4 * slot + 4], 16):
        start = int(offsets[5 * n - 5 : 5 * n], 16)
        if keywords.startswith(keyword, start) and keywords[start + len(keyword)] == " ":
            return n - 1
        slot = (slot + 1) % slot_count
    return None


def _entry(n, keyword):
    table = _table()
    codes, vr_vm = table.CODES, table.VR_VM
    vr, vm = table.VRS[codes.index(vr_vm[2 * n])], table.VMS[codes.index(vr_vm[2 * n + 1])]
    return Entry(int(table.TAGS[8 * n : 8 * n + 8], 16), vr, vm, keyword, table.RETIRED[n] == "1")


def table() -> dict[str, Entry]:
    """keyword -> Entry for the whole table, in tag order (for hints and tests: a lookup reads one entry)."""
    return {keyword: _entry(n, keyword) for n, keyword in enumerate(_table().KEYWORDS.split())}


def _unknown_keyword_reason(keyword):
    if not keyword:
        return "empty keyword"
    # Only needed on this error path, so its import cost is paid only here.
    import difflib

    # Compare case-folded so "PATIENTNAME" still finds PatientName.
    by_folded = {known.casefold(): known for known in table()}
    close = difflib.get_close_matches(keyword.casefold(), by_folded, n=1)
    if close:
        return f"unknown keyword, did you mean {by_folded[close[0]]}?"
    return "unknown keyword"


def entry_for_tag(tag: int) -> Entry | None:
    """The dictionary entry for ``tag``, or None for private and unknown tags."""
    tags, keywords = _table().TAGS, _table().KEYWORDS
    wanted = f"{tag:08X}"
    low, high = 0, len(tags) // 8
    while low < high:  # TAGS is in tag order, every tag 8 hex digits: text order is number order
        middle = (low + high) // 2
        if tags[8 * middle : 8 * middle + 8] < wanted:
            low = middle + 1
        else:
            high = middle
    if tags[8 * low : 8 * low + 8] != wanted:
        return None
    start = int(_table().OFFSETS[5 * low : 5 * low + 5], 16)
    return lookup(keywords[start : keywords.index(" ", start)])


def tag_of(key) -> int:
    """The tag for ``key``: a keyword, an int tag, a (group, element) pair, or
    a tag written as "(0010,0010)", "0010,0010" or "00100010"."""
    # bool is an int subclass, but True is never meant as tag (0000,0001).
    if isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key <= 0xFFFFFFFF:
            raise EncodingError("a tag must fit in 32 bits", value=key)
        return key
    if isinstance(key, tuple):
        if (
            len(key) != 2
            or not all(isinstance(part, int) and not isinstance(part, bool) for part in key)
            or not all(0 <= part <= 0xFFFF for part in key)
        ):
            raise EncodingError("a (group, element) tag needs two ints in 0..0xFFFF", value=key)
        return key[0] << 16 | key[1]
    if isinstance(key, str):
        written = _TAG_TEXT.fullmatch(key)
        if written:
            return int("".join(part for part in written.groups() if part), 16)
        return lookup(key).tag
    raise EncodingError(
        "a tag must be a keyword, an int or a (group, element) pair", value=key
    )


def format_tag(tag: int) -> str:
    """``tag`` as the standard writes it: format_tag(0x7FE00010) == "(7FE0,0010)"."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def is_private(tag: int) -> bool:
    """True for a tag in an odd group, where private data elements live (PS3.5 7.1)."""
    return bool(tag >> 16 & 1)
