"""Value scaling of Interfile images: raw data file values -> image values.

Every dialect's keys (STIR image scaling factors; CASToR rescale slope and
intercept; Siemens %image slope and intercept; a numeric quantification units)
give each frame a factor, or one per plane, and an intercept;
:class:`dcmforge.readers.lazy.LazyVolume` applies them to the memory-mapped frames of
:mod:`dcmforge.readers.interfile.layout` one indexed part at a time.
"""

import numpy as np

from ...errors import InterfileError
from .grammar import parse_list
from .numbers import entry_number, list_number, loose_number

SLOPE_KEYS = ("rescale slope", "data rescale slope", "%image slope")
INTERCEPT_KEYS = ("rescale intercept", "data rescale intercept", "%image intercept")


def scaling_from_header(header, frames, planes, warnings):
    """(factor per frame, a number or one per plane; intercept per frame) from every dialect's keys.

    value = raw * image scaling factor[f] (STIR) * rescale slope (CASToR) or %image slope
    (Siemens) + intercept. A numeric quantification units replaces image scaling factors
    that are all 1 (STIR) and multiplies the slope (CASToR); both readings agree.
    """
    factors = []
    explicit = header.indexed("image scaling factor")
    if not explicit and header.has("image scaling factor"):
        explicit = {1: header.get("image scaling factor")}
    for frame in range(frames):
        entry = explicit.get(frame + 1)
        factors.append(1.0 if entry is None else _plane_factors(header, entry, planes))
    units = _per_frame_numbers(header, ("quantification units",), frames, strict=False)
    if units is not None:
        for frame, unit in enumerate(units):
            factor = np.asarray(factors[frame])
            if unit == 1 or np.all(factor == unit):
                continue
            if not np.all(factor == 1):
                raise header.fail(
                    header.get("quantification units"),
                    "conflicts with 'image scaling factor': give one or the other, or equal values",
                )
            factors[frame] = unit
    slopes = _per_frame_numbers(header, SLOPE_KEYS, frames) or [1.0] * frames
    if 0.0 in slopes:
        raise InterfileError(f"{header.source}: a rescale slope of 0 would erase the image")
    intercepts = _per_frame_numbers(header, INTERCEPT_KEYS, frames) or [0.0] * frames
    ignored = header.number("data rescale offset", default=0.0)
    if ignored:
        warnings.append(
            f"{header.source}: data rescale offset := {ignored:g} ignored (CASToR writes it but reads only "
            "'rescale intercept')"
        )
    return [np.asarray(f, dtype=np.float64) * s for f, s in zip(factors, slopes)], intercepts


def _plane_factors(header, entry, planes):
    if not entry.value.startswith("{"):
        values = [entry_number(header, entry)]
    else:
        values = [list_number(header, entry, item) for item in parse_list(header, entry)]
    if len(values) not in (1, planes):
        raise header.fail(entry, f"expected one factor or one per plane ({planes}), found {len(values)}")
    if 0.0 in values:
        raise header.fail(entry, "a scaling factor of 0 would erase the image")
    return values[0] if len(values) == 1 else np.array(values)


def _per_frame_numbers(header, keys, frames, strict=True):
    """One number per frame from the first of keys present: repeated once per frame (CASToR
    frame blocks) or written once. None when absent, or (strict=False) when not a number."""
    for key in keys:
        entries = header.all(key)
        if not entries:
            continue
        if not strict and any(loose_number(e.value) is None for e in entries):
            return None  # e.g. quantification units := Bq/ml, a unit
        values = [entry_number(header, e) for e in entries]
        if len(values) == frames:
            return values
        if len(set(values)) == 1:
            return [values[0]] * frames
        raise header.fail(entries[-1], f"{len(values)} different values for {frames} frame(s)")
    return None
