"""Is the header's byte order the data's? A wrong 'imagedata byte order' gives an image of garbage.

Read the other way round, float data turns into denormals, NaN and values beyond
1e30 (a PET image of slopes like 3.4e-43); integer data into values whose most
significant byte varies more than the least significant one. A few blocks of the data
are decoded both ways: when the header's order looks implausible and the other
order does not, the float case is refused and the integer case warned about, both
naming the key and the value to write.
"""

import numpy as np

from ...errors import InterfileError

KEY = "imagedata byte order"
ORDER_NAMES = {"<": "LITTLEENDIAN", ">": "BIGENDIAN"}
_BLOCKS, _BLOCK_VALUES = 16, 1024  # evenly spaced contiguous blocks: 16 Ki values, plenty for a share of 5 %
_TOO_SMALL, _TOO_LARGE = 1e-30, 1e30
_BAD_SHARE = 0.05  # of the nonzero values: more than this is not an image
_MORE_VARIED = 4  # integers whose high byte takes this many times the low byte's values are suspect


def check_byte_order(header, frames, warnings):
    """Refuse (float) or warn about (integers) data that only the other byte order makes plausible."""
    dtype = frames[0].dtype
    if dtype.itemsize == 1:
        return
    stated = _sample(frames)
    order = _order(dtype)
    other = ORDER_NAMES[">" if order == "<" else "<"]
    fix = f"change '{KEY}' to {other}"
    if dtype.kind == "f":
        swapped = stated.view(stated.dtype.newbyteorder())  # the same bytes, read the other way
        bad = _implausible_floats(stated)
        if bad > _BAD_SHARE and _implausible_floats(swapped) == 0:
            raise InterfileError(
                f"{header.source}: read as '{KEY} := {ORDER_NAMES[order]}' the values are not an image "
                f"({bad:.0%} of them NaN, infinite, below {_TOO_SMALL:g} or above {_TOO_LARGE:g}) but read as "
                f"{other} they are: {fix}"
            )
        return
    reason = _integer_suspicion(stated)
    if reason:
        warnings.append(f"{header.source}: the values look byte-swapped ({reason}): if the image is noise, {fix}")


def _sample(frames):
    """Up to _BLOCKS blocks of _BLOCK_VALUES consecutive values, spread over the frames."""
    flat = [frame.reshape(-1) for frame in frames]
    total = sum(len(f) for f in flat)
    starts = np.linspace(0, max(total - _BLOCK_VALUES, 0), _BLOCKS).astype(np.int64)
    blocks, base = [], 0
    for values in flat:
        for start in starts[(starts >= base) & (starts < base + len(values))]:
            blocks.append(np.array(values[start - base : start - base + _BLOCK_VALUES]))
        base += len(values)
    return np.concatenate(blocks)


def _implausible_floats(values):
    """Share of the nonzero values that no image holds."""
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return 0.0
    magnitude = np.abs(nonzero)  # in the data's own type: float32 holds both bounds, as a normal number
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(magnitude) | (magnitude < _TOO_SMALL) | (magnitude > _TOO_LARGE)
    return float(np.mean(bad))


def _integer_suspicion(stated):
    """Why the integers look swapped, or "".

    In an image the most significant byte changes slowly (few distinct values) and the
    least significant one fast; read the other way round, it is the reverse.
    """
    nonzero = stated[stated != 0]
    if nonzero.size < 64:
        return ""
    columns = nonzero.view(np.uint8).reshape(-1, nonzero.dtype.itemsize)
    most, least = (0, -1) if _order(nonzero.dtype) == ">" else (-1, 0)
    high, low = len(np.unique(columns[:, most])), len(np.unique(columns[:, least]))
    if high >= _MORE_VARIED * low:
        return f"the most significant byte takes {high} values, the least significant {low}"
    return ""


def _order(dtype):
    return dtype.byteorder if dtype.byteorder in "<>" else ("<" if np.little_endian else ">")
