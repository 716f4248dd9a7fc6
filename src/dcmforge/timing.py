"""PET frame timing and decay: the per-frame values an SUV calculation reads.

All times are seconds from the series reference time (SeriesDate/SeriesTime,
the acquisition start), which is also the decay reference when
DecayCorrection is START (PS3.3 C.8.9.1.1.4, C.8.9.4.1.2).
"""

import datetime
import math
from typing import NamedTuple

from .errors import MetadataError


class FrameTiming(NamedTuple):
    start: float  # s from the series reference time
    duration: float | None  # s; None when unknown


def frame_timings(frame_count, frame_start=None, frame_duration=None):
    """One FrameTiming per frame, from the friendly metadata lists (seconds)."""
    starts = [0.0] * frame_count if frame_start is None else [float(s) for s in frame_start]
    durations = [None] * frame_count if frame_duration is None else [float(d) for d in frame_duration]
    for name, values in (("frame_start", starts), ("frame_duration", durations)):
        if len(values) != frame_count:
            raise MetadataError(f"{name} has {len(values)} values but the volume has {frame_count} frame(s)")
    if frame_start is None and frame_duration is not None:
        # Back-to-back frames: each starts where the previous one ended.
        starts = [sum(durations[:f]) for f in range(frame_count)]
    for f, (start, duration) in enumerate(zip(starts, durations)):
        if not math.isfinite(start) or start < 0 or (duration is not None and not (math.isfinite(duration) and duration > 0)):
            raise MetadataError(f"frame {f}: start {start} s and duration {duration} s must be finite, start >= 0, duration > 0")
    return [FrameTiming(s, d) for s, d in zip(starts, durations)]


def decay_factor(timing, half_life):
    """Factor that corrected the frame's decay back to the reference time (PS3.3 C.8.9.4.1.3).

    It includes the decay during the frame: exp(l*t0) * l*d / (1 - exp(-l*d)).
    """
    decay_constant = math.log(2) / half_life
    factor = math.exp(decay_constant * timing.start)
    if timing.duration:
        x = decay_constant * timing.duration
        factor *= x / -math.expm1(-x)
    return factor


def reference_time(timing, half_life=None):
    """Seconds from the series reference to the time the pixel values represent.

    With a known half-life: the time at which the activity equals the frame's
    average (decay-weighted); otherwise the middle of the frame.
    """
    if not timing.duration:
        return timing.start
    if half_life is None:
        return timing.start + timing.duration / 2
    decay_constant = math.log(2) / half_life
    x = decay_constant * timing.duration
    return timing.start + math.log(x / -math.expm1(-x)) / decay_constant


def parse_dicom_datetime(date, time):
    """A datetime from DA and TM text (DA is YYYYMMDD; TM may be HH, HHMM, HHMMSS or HHMMSS.FFFFFF)."""
    try:
        # Not strptime: its first call in a process costs about 10 ms (it builds its locale's patterns).
        if not (isinstance(date, str) and len(date) == 8 and date.isascii() and date.isdigit()):
            raise ValueError(date)
        base = datetime.datetime(int(date[:4]), int(date[4:6]), int(date[6:]))
        hours, minutes, seconds = int(time[0:2]), int(time[2:4] or 0), float(time[4:] or 0)
    except (TypeError, ValueError):
        raise MetadataError(f"cannot read date {date!r} and time {time!r} as DICOM DA and TM") from None
    return base + datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)
