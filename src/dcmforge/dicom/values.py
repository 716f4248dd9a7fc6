"""Reading a dataset's values the same way everywhere: one value or many, empty or not, as text or number;
writing dates and times as DICOM text (DA, TM, DT) one way; and keying and copying plain values (text,
numbers, lists and str-keyed dicts of them) for what a process remembers from one series to the next."""

import math


def values_of(value):
    """A value as a list of single values: None and "" are no values; a str or bytes is one."""
    kind = type(value)
    if kind is str:  # the common cases first: a value of metadata is mostly text or a number
        return [value] if value else []
    if kind is int or kind is float:
        return [value]
    if kind is list:
        return value.copy()
    if value is None:
        return []
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return [value] if len(value) else []
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def is_empty(value):
    """True for a value that encodes to zero length: None, "", b"", [] or [""]."""
    kind = type(value)
    if kind is str:
        return not value
    if kind is int or kind is float:
        return False
    if getattr(value, "ndim", 0) > 0 and value.dtype.kind not in "US":
        return value.size == 0  # numbers (pixel data included): no need to list every value
    singles = values_of(value)
    return not singles or (len(singles) == 1 and singles[0] in ("", None))


def text_value(dataset, keyword, position=1):
    """Value ``position`` (1-based) of ``keyword`` as stripped text, or None."""
    singles = values_of(dataset.get(keyword))
    if len(singles) < position or not isinstance(singles[position - 1], str):
        return None
    return singles[position - 1].strip()


def number_value(dataset, keyword, position=1):
    """Value ``position`` (1-based) of ``keyword`` as a float (DS/IS text included), or None."""
    singles = values_of(dataset.get(keyword))
    if len(singles) < position:
        return None
    try:
        number = float(singles[position - 1])
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


# Formatted, not strftime: a series writes several dates and times, and strftime (through the C library, its
# locale and a time tuple) costs a few times as much; its %Y also drops the leading zeros of a year before 1000.
def dicom_date(moment):
    """DA text of a date or datetime: YYYYMMDD."""
    return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"


def dicom_time(moment):
    """TM text of a time or datetime: HHMMSS, with .FFFFFF only when there are microseconds."""
    text = f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    return text + f".{moment.microsecond:06d}" if moment.microsecond else text


def dicom_datetime(moment):
    """DT text of a datetime, as local time (without its offset from UTC)."""
    return dicom_date(moment) + dicom_time(moment)


# Deeper than this, a value is not keyed (a table that holds itself is refused by the metadata reader, not here).
_KEY_DEPTH = 16


def plain_key(value, depth=0):
    """A hashable key equal only for plain values that are the same in every respect, or None for others
    (arrays, bytes, dates, subclasses). 1 == 1.0 == True and 0.0 == -0.0 in Python: type and sign are in it."""
    kind = type(value)
    if kind is str or kind is int:
        return kind, value
    if kind is float:
        return (kind, value) if value else (kind, repr(value))
    if depth > _KEY_DEPTH:
        return None
    if kind is list or kind is tuple:
        singles = tuple([plain_key(single, depth + 1) for single in value])
        return None if None in singles else (kind, singles)
    if kind is dict:
        if not all(type(key) is str for key in value):
            return None
        singles = tuple([plain_key(single, depth + 1) for single in value.values()])
        return None if None in singles else (kind, tuple(value), singles)
    return None


def plain_copy(value):
    """A deep copy; the plain data of datasets and metadata is copied without deepcopy's bookkeeping."""
    kind = type(value)
    if kind is str or kind is int or kind is float or value is None:
        return value
    if kind is list:
        return [plain_copy(single) for single in value]
    if kind is dict:
        return {key: plain_copy(single) for key, single in value.items()}
    import copy  # here: datasets and metadata are plain data, and a conversion never gets this far

    return copy.deepcopy(value)
