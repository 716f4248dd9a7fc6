"""Numbers in Interfile values, read one way for every interfile module.

``entry_number`` and ``entry_count`` read a whole value and fail naming the
header's file, line and key; ``list_number`` reads one item of a ``{a, b}``
list the same way; ``loose_number`` says whether a value is a number at all
(a quantification unit may be a word or a factor).
"""

import math


def entry_number(header, entry):
    try:
        number = float(entry.value)
    except ValueError:
        raise header.fail(entry, "not a number") from None
    if not math.isfinite(number):
        raise header.fail(entry, "not a finite number")
    return number


def entry_count(header, entry, minimum=1):
    number = entry_number(header, entry)
    if number != int(number):
        raise header.fail(entry, "not a whole number")
    if number < minimum:
        raise header.fail(entry, f"must be at least {minimum}")
    return int(number)


def loose_number(text):
    """text as a float, or None when it is not a number (a unit, a word)."""
    try:
        return float(text)
    except ValueError:
        return None


def list_number(header, entry, item):
    """item of the {list} value of entry as a finite number; otherwise the header's error naming entry."""
    number = loose_number(item)
    if number is None or not math.isfinite(number):
        raise header.fail(entry, f"{item!r} in the list is not a finite number")
    return number
