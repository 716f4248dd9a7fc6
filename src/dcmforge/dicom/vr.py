"""Value representations: one table of rules, one encoder per VR.

``encode_value(vr, value, codec)`` turns a Python or numpy value into the
bytes of a DICOM value field, padded to even length, or raises
``EncodingError``. The caller (``encode.py``) adds keyword and tag to the
error; this module knows only VRs.

References: PS3.5 section 6.2 (VR table), 6.1 (character repertoires),
9.1 (UID syntax).
"""

import datetime
import math
import re
import struct
from typing import NamedTuple

import numpy as np

from ..errors import EncodingError
from .uids import is_valid_uid
from .values import dicom_date, dicom_datetime, dicom_time


class VRRule(NamedTuple):
    """One row of PS3.5 Table 6.2-1 as the encoder needs it."""

    kind: str  # how a value is encoded: "text", "number", "tag", "words" (numbers as one stream), "bytes", "sequence"
    long_header: bool  # reserved 2 bytes + 32-bit length (PS3.5 7.1.2)
    pad: bytes  # appended to an odd-length value
    max_length: int | None  # per value; characters for text, bytes otherwise
    multi_valued: bool  # values joined with a backslash (text VRs)


_SPACE, _NUL = b" ", b"\x00"

# fmt: off
VR_RULES = {
    # text VRs in the default repertoire
    "AE": VRRule("text",     False, _SPACE, 16,    True),
    "AS": VRRule("text",     False, _SPACE, 4,     True),
    "CS": VRRule("text",     False, _SPACE, 16,    True),
    "DA": VRRule("text",     False, _SPACE, 8,     True),
    "DS": VRRule("text",     False, _SPACE, 16,    True),
    "DT": VRRule("text",     False, _SPACE, 26,    True),
    "IS": VRRule("text",     False, _SPACE, 12,    True),
    "TM": VRRule("text",     False, _SPACE, 14,    True),
    "UI": VRRule("text",     False, _NUL,   64,    True),
    "UR": VRRule("text",     True,  _SPACE, None,  False),
    # text VRs affected by SpecificCharacterSet
    "SH": VRRule("text",     False, _SPACE, 16,    True),
    "LO": VRRule("text",     False, _SPACE, 64,    True),
    "PN": VRRule("text",     False, _SPACE, 64,    True),
    "ST": VRRule("text",     False, _SPACE, 1024,  False),
    "LT": VRRule("text",     False, _SPACE, 10240, False),
    "UC": VRRule("text",     True,  _SPACE, None,  True),
    "UT": VRRule("text",     True,  _SPACE, None,  False),
    # binary numbers and tags
    "AT": VRRule("tag",      False, _NUL,   None,  False),
    "FL": VRRule("number",   False, _NUL,   None,  False),
    "FD": VRRule("number",   False, _NUL,   None,  False),
    "SS": VRRule("number",   False, _NUL,   None,  False),
    "US": VRRule("number",   False, _NUL,   None,  False),
    "SL": VRRule("number",   False, _NUL,   None,  False),
    "UL": VRRule("number",   False, _NUL,   None,  False),
    "SV": VRRule("number",   True,  _NUL,   None,  False),
    "UV": VRRule("number",   True,  _NUL,   None,  False),
    # byte streams
    "OB": VRRule("bytes",    True,  _NUL,   None,  False),
    "OD": VRRule("words",    True,  _NUL,   None,  False),
    "OF": VRRule("words",    True,  _NUL,   None,  False),
    "OL": VRRule("words",    True,  _NUL,   None,  False),
    "OV": VRRule("words",    True,  _NUL,   None,  False),
    "OW": VRRule("words",    True,  _NUL,   None,  False),
    "UN": VRRule("bytes",    True,  _NUL,   None,  False),
    "SQ": VRRule("sequence", True,  _NUL,   None,  False),
}
# fmt: on

# Only these VRs may hold characters outside the default repertoire (PS3.5 6.1.2.3).
CHARSET_VRS = frozenset({"SH", "LO", "PN", "ST", "LT", "UC", "UT"})

# Numeric VRs as little-endian numpy dtypes; O* streams accept any array of that element type.
NUMBER_DTYPES = {
    "US": "<u2", "SS": "<i2", "UL": "<u4", "SL": "<i4", "UV": "<u8", "SV": "<i8",
    "FL": "<f4", "FD": "<f8",
    "OW": "<u2", "OL": "<u4", "OV": "<u8", "OF": "<f4", "OD": "<f8",
}

# Integer streams whose values are raw bits, signed or not.
_WORD_STREAMS = frozenset({"OW", "OL", "OV"})

# The binary integer VRs (and integer word streams) as struct codes with their ranges.
INTEGER_FORMATS = {
    "US": ("H", 0, 2**16 - 1), "SS": ("h", -(2**15), 2**15 - 1),
    "UL": ("L", 0, 2**32 - 1), "SL": ("l", -(2**31), 2**31 - 1),
    "UV": ("Q", 0, 2**64 - 1), "SV": ("q", -(2**63), 2**63 - 1),
    "OW": ("H", 0, 2**16 - 1), "OL": ("L", 0, 2**32 - 1), "OV": ("Q", 0, 2**64 - 1),
}

SHORT_LENGTH_LIMIT = 0xFFFE  # largest even value a 16-bit length field holds
LONG_LENGTH_LIMIT = 0xFFFFFFFE  # 0xFFFFFFFF means "undefined length"

# SpecificCharacterSet values dcmforge writes and the Python codec for each.
CHARACTER_SETS = {
    "": "ascii",
    "ISO_IR 6": "ascii",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 192": "utf-8",
}

# re.ASCII: \d is 0-9 only, not every Unicode digit (int("١٢") would be 12).
_CS_RE = re.compile(r"[A-Z0-9_ ]*")
_AS_RE = re.compile(r"\d{3}[DWMY]", re.ASCII)
_DS_RE = re.compile(r" *[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)? *", re.ASCII)
_IS_RE = re.compile(r" *[+-]?\d+ *", re.ASCII)
_DA_RE = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_TM_RE = re.compile(r"([01]\d|2[0-3])(([0-5]\d)(([0-5]\d|60)(\.\d{1,6})?)?)?", re.ASCII)
_DT_RE = re.compile(
    r"\d{4}((0[1-9]|1[0-2])((0[1-9]|[12]\d|3[01])(([01]\d|2[0-3])(([0-5]\d)(([0-5]\d|60)"
    r"(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?",
    re.ASCII,
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")  # LT/ST/UT keep CR LF FF TAB ESC

INT32_RANGE = (-(2**31), 2**31 - 1)


def _fail(reason, vr, value):
    raise EncodingError(reason, vr=vr, value=value)


def _values(value):
    """A value as a list of single values (a scalar becomes a list of one)."""
    if isinstance(value, (str, bytes)):
        return [value]
    if isinstance(value, np.ndarray):
        return list(value.ravel())  # numpy scalars: a float32 keeps its own shortest text
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


# -- numbers written as text -------------------------------------------------


def format_ds(number):
    """The shortest DS text (at most 16 characters) that keeps as much precision as fits."""
    try:
        x = float(number)
    except OverflowError:
        raise ValueError("too large for a DS") from None
    if not math.isfinite(x):
        raise ValueError("DS cannot hold NaN or infinity")
    if x == 0.0:
        return "0"  # also turns -0.0 into 0
    # The shortest round-trip text in the value's own precision first (0.1 stays "0.1"
    # for float32 input), then fewer significant digits until it fits.
    text = (str(number) if isinstance(number, np.floating) else repr(x)).removesuffix(".0")
    if len(text) <= 16:
        return text
    for digits in range(16, 0, -1):
        text = format(x, f".{digits}g")
        # Rounding up near the largest double (1.797693135e+308) would read back as infinity.
        if len(text) <= 16 and math.isfinite(float(text)):
            return text
    raise ValueError("does not fit in 16 characters")  # unreachable for finite doubles


def _ds_text(value, vr):
    if type(value) is not float and isinstance(value, str):
        if not _DS_RE.fullmatch(value) or len(value) > 16:
            _fail("not a decimal string of at most 16 characters", vr, value)
        return value.strip()
    if type(value) is not float and (
        isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating))
    ):
        _fail("DS needs a number or a decimal string", vr, value)
    try:
        return format_ds(value)
    except ValueError as exc:
        _fail(str(exc), vr, value)


def _is_text(value, vr):
    if isinstance(value, str):
        if not _IS_RE.fullmatch(value) or len(value) > 12:
            _fail("not an integer string of at most 12 characters", vr, value)
        number = int(value)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        number = int(value)
    else:
        _fail("IS needs an integer", vr, value)
    if not INT32_RANGE[0] <= number <= INT32_RANGE[1]:
        _fail("IS must lie in -2^31 .. 2^31-1", vr, value)
    return str(number)


# -- dates and times ---------------------------------------------------------


def _da_text(value, vr):
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return dicom_date(value)
    if not isinstance(value, str):
        _fail("DA needs YYYYMMDD text or a datetime.date", vr, value)
    match = _DA_RE.fullmatch(value)
    try:
        datetime.date(*map(int, match.groups()))
    except (AttributeError, ValueError):
        _fail("not a valid date YYYYMMDD", vr, value)
    return value


def _tm_text(value, vr):
    if isinstance(value, (datetime.datetime, datetime.time)):
        return dicom_time(value)
    if not isinstance(value, str) or not _TM_RE.fullmatch(value):
        _fail("not a valid time HHMMSS.FFFFFF", vr, value)
    return value


def _dt_text(value, vr):
    if isinstance(value, datetime.datetime):
        return dicom_datetime(value) + (value.strftime("%z") if value.utcoffset() is not None else "")
    if not isinstance(value, str) or not _DT_RE.fullmatch(value):
        _fail("not a valid date-time YYYYMMDDHHMMSS.FFFFFF&ZZXX", vr, value)
    return value


# -- other text --------------------------------------------------------------


def _check_ui(text, vr):
    if not is_valid_uid(text):
        _fail("a UID is digits and dots, no leading zeros in a component, at most 64 characters", vr, text)
    return text


def _check_cs(text, vr):
    if not _CS_RE.fullmatch(text):
        _fail("CS allows only upper-case A-Z, 0-9, space and underscore", vr, text)
    return text


def _check_as(text, vr):
    if not _AS_RE.fullmatch(text):
        _fail("AS is nnnD, nnnW, nnnM or nnnY", vr, text)
    return text


def _check_plain(text, vr):
    if _CONTROL_RE.search(text):
        _fail("control characters are not allowed", vr, text)
    return text


def _check_text(text, vr):
    if _TEXT_CONTROL_RE.search(text):
        _fail("control characters other than CR, LF, FF, TAB and ESC are not allowed", vr, text)
    return text


def _check_pn(text, vr):
    _check_plain(text, vr)
    groups = text.split("=")
    if len(groups) > 3:
        _fail("a person name has at most 3 component groups", vr, text)
    for group in groups:
        if len(group) > 64:
            _fail("a person name component group has at most 64 characters", vr, text)
        if group.count("^") > 4:
            _fail("a person name has at most 5 components", vr, text)
    return text


def _check_ur(text, vr):
    if text != text.lstrip(" ") or "\\" in text:
        _fail("a URI has no leading spaces and no backslash", vr, text)
    return text


def _as_string(value, vr):
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and vr not in ("CS", "AE", "AS", "UI"):
        return str(value)
    _fail("needs text", vr, value)


# Each text VR: a function from one single value to its text (checked).
TEXT_ENCODERS = {
    "AE": lambda v, vr: _check_plain(_as_string(v, vr).strip(), vr),
    "AS": lambda v, vr: _check_as(_as_string(v, vr), vr),
    "CS": lambda v, vr: _check_cs(_as_string(v, vr).strip(), vr),
    "DA": _da_text,
    "DS": _ds_text,
    "DT": _dt_text,
    "IS": _is_text,
    "TM": _tm_text,
    "UI": lambda v, vr: _check_ui(_as_string(v, vr), vr),
    "UR": lambda v, vr: _check_ur(_as_string(v, vr), vr),
    "SH": lambda v, vr: _check_plain(_as_string(v, vr), vr),
    "LO": lambda v, vr: _check_plain(_as_string(v, vr), vr),
    "UC": lambda v, vr: _check_plain(_as_string(v, vr), vr),
    "PN": lambda v, vr: _check_pn(_as_string(v, vr), vr),
    "ST": lambda v, vr: _check_text(_as_string(v, vr), vr),
    "LT": lambda v, vr: _check_text(_as_string(v, vr), vr),
    "UT": lambda v, vr: _check_text(_as_string(v, vr), vr),
}


def _character_set_name(codec):
    """The SpecificCharacterSet term of a Python codec, for error messages."""
    return next((name for name, known in CHARACTER_SETS.items() if name and known == codec), codec)


def _encode_text(vr, value, codec):
    rule = VR_RULES[vr]
    values = _values(value)
    if len(values) > 1 and not rule.multi_valued:
        _fail("this VR holds a single value", vr, value)
    encoder = TEXT_ENCODERS[vr]
    texts = []
    for single in values:
        if single is None or (isinstance(single, str) and not single):
            texts.append("")
            continue
        text = encoder(single, vr)
        if rule.multi_valued and "\\" in text:
            _fail("a backslash would split the value in two", vr, single)
        # PN's limit is per component group (checked in _check_pn); a name may have three.
        if rule.max_length is not None and vr != "PN" and len(text) > rule.max_length:
            _fail(f"longer than the {rule.max_length} characters this VR allows", vr, single)
        texts.append(text)
    joined = "\\".join(texts)
    try:
        data = joined.encode(codec if vr in CHARSET_VRS else "ascii")
    except UnicodeEncodeError:
        if vr in CHARSET_VRS:
            where = f"character set {_character_set_name(codec)} ({codec})"
        else:
            where = "the default repertoire (ASCII) this VR is limited to"
        _fail(f"has characters outside {where}", vr, value)
    return data


# -- binary ------------------------------------------------------------------


def _encode_numbers(vr, value):
    if vr in INTEGER_FORMATS and isinstance(value, (int, list, tuple)):
        numbers = _values(value)
        if all(type(number) is int for number in numbers):
            # Checked as Python ints (numpy would hold [2**64 - 1, 0] as float64 and lose
            # digits), and packed by struct: the per-slice path writes many of these.
            code, low, high = INTEGER_FORMATS[vr]
            if not all(low <= number <= high for number in numbers):
                _fail(f"out of range {low}..{high}", vr, value)
            return struct.pack(f"<{len(numbers)}{code}", *numbers)
    dtype = np.dtype(NUMBER_DTYPES[vr])
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) % dtype.itemsize:
            _fail(f"byte length is not a multiple of {dtype.itemsize}", vr, value)
        return data
    try:
        source = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting such as [1, [2, 3]]
        _fail("needs numbers (a flat list or an array)", vr, value)
    if source.dtype == dtype:
        return source.tobytes()  # already exact; tobytes also makes it C-ordered
    if (
        vr in _WORD_STREAMS
        and isinstance(value, np.ndarray)  # a list of Python ints has no width of its own
        and source.dtype.kind in "iu"
        and source.dtype.itemsize == dtype.itemsize
    ):
        # Words are raw bits: signed pixel data (PixelRepresentation 1) is written as OW too.
        return source.astype(source.dtype.newbyteorder("<")).tobytes()
    if source.dtype.kind not in "iufb":
        _fail("needs numbers", vr, value)
    if dtype.kind in "iu":
        if source.dtype.kind == "f":
            with np.errstate(invalid="ignore"):  # NaN and infinities: refused below, without numpy's warning
                whole = np.all(np.equal(np.mod(source, 1), 0))
            if not whole:
                _fail("needs integers", vr, value)
        info = np.iinfo(dtype)
        # ">= max + 1": for floats, max itself rounds up to 2**63 (or 2**64), which does not fit.
        if source.size and (source.min() < info.min or source.max() >= info.max + 1):
            _fail(f"out of range {info.min}..{info.max}", vr, value)
    elif dtype.kind == "f" and source.size and dtype.itemsize == 4:
        finite = np.isfinite(source)
        if np.any(finite & (np.abs(np.where(finite, source, 0)) > np.finfo(np.float32).max)):
            _fail("out of the float32 range", vr, value)
    return source.astype(dtype).tobytes()


def _encode_bytes(vr, value):
    if isinstance(value, np.ndarray):
        return value.tobytes()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    _fail("needs bytes", vr, value)


def _encode_tags(vr, value):
    from .tags import tag_of  # the tag table loads only when an AT is written

    out = bytearray()
    # A tuple is one (group, element) pair; a list holds several tags.
    singles = [value] if isinstance(value, (tuple, str, int, np.integer)) else list(value)
    for single in singles:
        try:
            tag = tag_of(int(single) if isinstance(single, np.integer) else single)
        except EncodingError:
            _fail("not a tag or keyword", vr, single)
        out += np.array([tag >> 16, tag & 0xFFFF], "<u2").tobytes()
    return bytes(out)


# How each kind of VR becomes bytes; the kind is VR_RULES' first column.
_ENCODERS = {
    "text": _encode_text,
    "number": lambda vr, value, codec: _encode_numbers(vr, value),
    "words": lambda vr, value, codec: _encode_numbers(vr, value),
    "bytes": lambda vr, value, codec: _encode_bytes(vr, value),
    "tag": lambda vr, value, codec: _encode_tags(vr, value),
}


def vrs_of_kind(*kinds):
    """The VRs whose values are encoded as one of ``kinds`` (see ``VRRule.kind``)."""
    return frozenset(vr for vr, rule in VR_RULES.items() if rule.kind in kinds)


def encode_value(vr, value, codec="ascii"):
    """The value field of one element (not SQ), padded to even length.

    ``codec`` is the Python codec of the dataset's SpecificCharacterSet; it
    applies only to the VRs in ``CHARSET_VRS``.
    """
    rule = VR_RULES.get(vr)
    if rule is None or rule.kind not in _ENCODERS:
        _fail("not a VR dcmforge can encode here", vr, value)
    if value is None or (isinstance(value, str) and not value):
        return b""  # present but empty (Type 2), whatever the VR
    data = _ENCODERS[rule.kind](vr, value, codec)
    if len(data) % 2:
        data += rule.pad
    limit = LONG_LENGTH_LIMIT if rule.long_header else SHORT_LENGTH_LIMIT
    if len(data) > limit:
        _fail(f"{len(data)} bytes do not fit the {limit}-byte length field", vr, f"<{len(data)} bytes>")
    return data
