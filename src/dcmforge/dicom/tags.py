"""Look up DICOM data elements by keyword or tag.

The table itself is generated data in ``dcmforge.dicom._dictionary`` (about 5,000
entries). It is imported on the first lookup, not when this module is
imported, so ``import dcmforge`` does not pay for it.
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

# tag -> keyword, built on the first entry_for_tag() call.
_keyword_by_tag = None
# keyword -> Entry, each built on its first lookup (the table never changes).
_entries = {}


def lookup(keyword: str) -> Entry:
    """The dictionary entry for ``keyword``, e.g. lookup("PatientName").tag == 0x00100010."""
    entry = _entries.get(keyword) if type(keyword) is str else None
    if entry is not None:
        return entry
    from dcmforge.dicom._dictionary import KEYWORDS, RETIRED

    if not isinstance(keyword, str):
        raise EncodingError("a keyword must be a str", value=keyword)
    row = KEYWORDS.get(keyword)
    if row is None:
        raise EncodingError(_unknown_keyword_reason(keyword, KEYWORDS), keyword=keyword)
    tag, vr, vm = row
    entry = Entry(tag, vr, vm, keyword, keyword in RETIRED)
    if type(keyword) is str:  # a str subclass's entry would keep its type
        _entries[keyword] = entry
    return entry


def _unknown_keyword_reason(keyword, keywords):
    if not keyword:
        return "empty keyword"
    # Only needed on this error path, so its import cost is paid only here.
    import difflib

    # Compare case-folded so "PATIENTNAME" still finds PatientName.
    by_folded = {known.casefold(): known for known in keywords}
    close = difflib.get_close_matches(keyword.casefold(), by_folded, n=1)
    if close:
        return f"unknown keyword, did you mean {by_folded[close[0]]}?"
    return "unknown keyword"


def entry_for_tag(tag: int) -> Entry | None:
    """The dictionary entry for ``tag``, or None for private and unknown tags."""
    global _keyword_by_tag
    if _keyword_by_tag is None:
        from dcmforge.dicom._dictionary import KEYWORDS

        _keyword_by_tag = {row[0]: keyword for keyword, row in KEYWORDS.items()}
    keyword = _keyword_by_tag.get(tag)
    return None if keyword is None else lookup(keyword)


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
