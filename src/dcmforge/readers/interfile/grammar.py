"""The Interfile header grammar: lines, keys, indices and values (docs/interfile.md 1).

The reader is tolerant on purpose, because every writer bends the 3.3 standard
a little differently: ``:=`` may have blanks inside (``: =``), keys are compared
with every blank, ``!`` and ``_`` removed and in lower case (``%`` is kept: it
marks Siemens private keys), ``;`` starts a comment unless it is inside ``{}``,
any of LF, CRLF and a lone CR ends a line, a trailing backslash continues a
line, and the header stops at ``!END OF INTERFILE`` (CASToR writes text after
it). Lines without ``:=`` are skipped with a warning. Anything that cannot be
read raises :class:`~dcmforge.errors.InterfileError` naming the file, the line
and the key.
"""

import datetime as dt
import re
from typing import NamedTuple

from ...errors import InterfileError
from ...paths import read_regular_file
from .numbers import entry_count, entry_number

# A header bigger than this with no END line is not a header (it may be the
# data file given by mistake); headers with data appended stop at their END.
MAX_HEADER_BYTES = 4 * 1024 * 1024

_ASSIGN = re.compile(r":\s*=")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_KEY_FILLER = re.compile(r"[\s!_]+")
_DATE_FORMAT_IN_KEY = re.compile(r"\(([ymd]+)[:/.\-]?([ymd]+)[:/.\-]?([ymd]+)\)")
_GMT_IN_KEY = re.compile(r"(?:gmt|utc)([+-])(\d{1,2}):?(\d{2})?")
_TIME_VALUE = re.compile(
    r"(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?\s*"
    r"(?:(z)|(?:gmt|utc)?\s*([+-])(\d{1,2}):?(\d{2})?)?",
    re.IGNORECASE,
)


def normalise_key(text):
    """The form in which keys are compared: lower case, no blanks, no ``!`` or ``_``."""
    return _KEY_FILLER.sub("", text.lower())


class Entry(NamedTuple):
    """One ``key [index] := value`` line of a header."""

    key: str  # normalised, without the index
    index: int | None  # the number in ``[i]`` (from 1), or None
    value: str  # the text after ``:=``, comment removed, blanks trimmed
    line: int  # line number (from 1) where the entry starts
    raw_key: str  # the key as written, for messages
    occurrence: int  # 0 the first time this key and index appear, then 1, 2, ...

    @property
    def name(self):
        """The normalised key with its index, e.g. ``matrixsize[1]``."""
        return self.key if self.index is None else f"{self.key}[{self.index}]"


class Header:
    """The parsed header: its entries in file order, and what was skipped."""

    def __init__(self, source: str, entries: list, warnings: list, ended: bool):
        self.source, self.entries, self.warnings = source, entries, warnings
        self.ended = ended  # an END OF INTERFILE line was seen
        self._last = {(e.key, e.index): e for e in entries}  # the last one wins

    def get(self, key, index=None):
        """The last entry for key (as spelt in any dialect) and index, or None."""
        return self._last.get((normalise_key(key), index))

    def text(self, key, index=None, *, default=None):
        """The value of the last entry for key and index, or default."""
        entry = self.get(key, index)
        return default if entry is None else entry.value

    def has(self, key, index=None):
        return (normalise_key(key), index) in self._last

    def all(self, key, index=None):
        """Every entry for key and index, in file order (CASToR repeats keys per frame)."""
        wanted = (normalise_key(key), index)
        return [e for e in self.entries if (e.key, e.index) == wanted]

    def indexed(self, key):
        """{index: last entry} for the indexed forms ``key [i]``."""
        wanted = normalise_key(key)
        return {i: e for (k, i), e in self._last.items() if k == wanted and i is not None}

    def find_prefixed(self, key):
        """The last entry whose key is key, or key followed by ``(...)``, with or without ``%``.

        Siemens writes the value format into the key, e.g. ``%study date (yyyy:mm:dd)``.
        """
        base = normalise_key(key).lstrip("%")
        found = [
            e
            for e in self._last.values()
            if e.index is None and (e.key.lstrip("%") == base or e.key.lstrip("%").startswith(base + "("))
        ]
        return max(found, key=lambda e: e.line, default=None)

    def keys_dict(self):
        """{normalised key with index: value} (the last value of repeated keys)."""
        return {e.name: e.value for e in self._last.values()}

    def fail(self, entry, problem):
        """An InterfileError that names this header, the entry's line and key."""
        return InterfileError(
            f"{self.source}: line {entry.line}: '{entry.raw_key} := {entry.value}': {problem}"
        )

    def number(self, key, index=None, *, default=None):
        """The value of key as a finite float, or default when the key is absent."""
        entry = self.get(key, index)
        return default if entry is None else entry_number(self, entry)

    def count(self, key, index=None, *, default=None, minimum=1):
        """The value of key as an integer >= minimum (written as ``344`` or ``344.000000``)."""
        entry = self.get(key, index)
        return default if entry is None else entry_count(self, entry, minimum)


def parse_list(header, entry):
    """The items of a ``{a, b, c}`` value, as stripped strings."""
    value = entry.value
    if not (value.startswith("{") and value.endswith("}")):
        raise header.fail(entry, "expected a list written {a, b, ...}")
    return [item.strip() for item in value[1:-1].split(",")]


def decode_header_bytes(data):
    """Header text from bytes: UTF-8 when it is valid, else Latin-1 (never fails)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.lstrip("\ufeff")


def read_header_file(path):
    """Parse the header file at path (only its first MAX_HEADER_BYTES are read)."""
    try:
        data = read_regular_file(path, MAX_HEADER_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise InterfileError(f"cannot read the Interfile header {path}: {exc}") from None
    header = parse_header(data[:MAX_HEADER_BYTES], source=str(path))
    if len(data) > MAX_HEADER_BYTES and not header.ended:
        raise InterfileError(
            f"{path}: no END OF INTERFILE line in the first {MAX_HEADER_BYTES} bytes: "
            "this is not an Interfile header"
        )
    return header


def parse_header(text, *, source="<string>"):
    """Parse Interfile header text (str, or bytes as read from a file) into a Header."""
    if isinstance(text, (bytes, bytearray)):
        text = decode_header_bytes(bytes(text))
    lines = _LINE_BREAK.split(text.rstrip("\x00"))
    entries, warnings, seen = [], [], {}
    ended = False
    position = 0
    while position < len(lines):
        number = position + 1
        line = lines[position]
        position += 1
        while line.endswith("\\") and position < len(lines):  # continuation line
            line = line[:-1] + lines[position]
            position += 1
        if "\x00" in line:
            raise InterfileError(
                f"{source}: line {number}: contains a NUL byte: binary data, not an Interfile header"
            )
        body = _without_comment(line).strip()
        if not body:
            continue
        assign = _ASSIGN.search(body)
        raw_key = (body[: assign.start()] if assign else body).strip()
        if normalise_key(raw_key) == "endofinterfile":
            ended = True
            break
        if assign is None:
            if normalise_key(raw_key) != "interfile":
                warnings.append(f"{source}: line {number}: no ':=' in {body[:60]!r}; line skipped")
            continue
        split = _split_index(raw_key)
        if split is None:
            warnings.append(f"{source}: line {number}: bad index in key {raw_key[:60]!r}; line skipped")
            continue
        key, index = split
        if not key:
            warnings.append(f"{source}: line {number}: no key before ':='; line skipped")
            continue
        if key == "interfile":
            continue
        occurrence = seen.get((key, index), 0)
        seen[(key, index)] = occurrence + 1
        value = body[assign.end() :].strip()
        entries.append(Entry(key, index, value, number, raw_key, occurrence))
    if not entries:
        raise InterfileError(f"{source}: no 'key := value' line found: this is not an Interfile header")
    return Header(source, entries, warnings, ended)


def _without_comment(line):
    """The line up to its first ``;`` outside ``{}``."""
    depth = 0
    for position, char in enumerate(line):
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        elif char == ";" and depth == 0:
            return line[:position]
    return line


def _split_index(raw_key):
    """(normalised key, index or None) from ``name [i] rest``; None if the index is not a number >= 1."""
    start = raw_key.find("[")
    if start < 0:
        return normalise_key(raw_key), None
    end = raw_key.find("]", start)
    if end < 0:
        return None
    try:
        index = int(raw_key[start + 1 : end].strip())
    except ValueError:
        return None
    if index < 1:
        return None
    return normalise_key(raw_key[:start] + raw_key[end + 1 :]), index


# --- dates and times -----------------------------------------------------------------------------


def parse_date(header, entry):
    """DICOM DA (YYYYMMDD) from a date value; the field order comes from the key if it says,

    as in ``%study date (yyyy:mm:dd)``; otherwise it is the standard's yyyy:mm:dd.
    """
    order = "ymd"
    match = _DATE_FORMAT_IN_KEY.search(entry.key)
    if match:
        order = "".join(part[0] for part in match.groups())
    numbers = re.findall(r"\d+", entry.value)
    if len(numbers) != 3 or sorted(order) != ["d", "m", "y"]:
        raise header.fail(entry, "not a date written yyyy:mm:dd")
    fields = dict(zip(order, (int(n) for n in numbers)))
    try:
        date = dt.date(fields["y"], fields["m"], fields["d"])
    except ValueError as exc:
        raise header.fail(entry, f"not a valid date ({exc})") from None
    if date.year < 1000:
        raise header.fail(entry, "not a valid date (year before 1000)")
    return f"{date.year:04d}{date.month:02d}{date.day:02d}"


def parse_time(header, entry):
    """(DICOM TM HHMMSS[.ffffff], UTC offset '+hhmm' or None) from a time value.

    The offset is taken from the value (STIR: ``hh:mm:ss+01:00``) or from the key
    (Siemens: ``%study time (hh:mm:ss GMT+01:00)``).
    """
    match = _TIME_VALUE.fullmatch(entry.value.strip())
    if match is None:
        raise header.fail(entry, "not a time written hh:mm:ss")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if hours > 23 or minutes > 59 or seconds > 60:
        raise header.fail(entry, "not a valid time of day")
    time = f"{hours:02d}{minutes:02d}{seconds:02d}"
    if match[4]:
        time += "." + match[4][:6]
    offset = None
    if match[5]:
        offset = "+0000"
    elif match[6]:
        offset = _offset(header, entry, match[6], match[7], match[8])
    else:
        in_key = _GMT_IN_KEY.search(entry.key)
        if in_key:
            offset = _offset(header, entry, *in_key.groups())
    return time, offset


def _offset(header, entry, sign, hours, minutes):
    hours, minutes = int(hours), int(minutes or 0)
    if hours > 14 or minutes > 59:
        raise header.fail(entry, "time zone offset out of range")
    return f"{sign}{hours:02d}{minutes:02d}"
