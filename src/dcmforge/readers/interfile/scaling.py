"""Value scaling of Interfile images: raw data file values -> image values.

Every dialect's keys (STIR image scaling factors; CASToR rescale slope and
intercept; Siemens %image slope and intercept; a numeric quantification units)
give each frame a factor, or one per plane, and an intercept;
:class:`LazyVolume` applies them to the memory-mapped frames of
:mod:`dcmforge.readers.interfile.layout` one indexed part at a time.
"""

import numpy as np

from ...errors import InterfileError
from .grammar import parse_list
from .numbers import entry_number, list_number, loose_number

SLOPE_KEYS = ("rescale slope", "data rescale slope", "%image slope")
INTERCEPT_KEYS = ("rescale intercept", "data rescale intercept", "%image intercept")


class LazyVolume:
    """An array-like over memory-mapped frames, scaled when indexed.

    ``volume[f]`` (4-D, [t, z, y, x]) or ``volume[z]`` (3-D) reads only the part
    it selects and returns a numpy array raw * factor + intercept, where factor
    is one number per frame or one per plane (STIR per-plane scaling factors).
    Integers, slices and ``...`` are accepted on every axis. ``np.asarray``
    reads everything, so call it only when that is what you want.
    """

    def __init__(self, frames, factors, intercepts):
        self.frames = list(frames)  # each a memmap [z, y, x]
        self.factors = [np.asarray(f, dtype=np.float64) for f in factors]
        self.intercepts = [float(i) for i in intercepts]
        self.scaled = any(np.any(f != 1) for f in self.factors) or any(self.intercepts)
        raw = self.frames[0].dtype
        self.dtype = _scaled_dtype(raw) if self.scaled else raw
        self.shape = ((len(self.frames),) if len(self.frames) > 1 else ()) + tuple(self.frames[0].shape)

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"LazyVolume(shape={self.shape}, dtype={self.dtype}, scaled={self.scaled})"

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        return data if dtype is None else data.astype(dtype)

    def __getitem__(self, key):
        key = _full_key(key, self.ndim)
        if self.ndim == 3:
            return self._read(0, key)
        picked = range(len(self.frames))[key[0]]
        if isinstance(picked, int):
            return self._read(picked, key[1:])
        parts = [self._read(f, key[1:]) for f in picked]
        if not parts:
            return np.empty((0,) + self.frames[0][key[1:]].shape, self.dtype)
        return np.stack(parts)

    def _read(self, frame, key):
        raw = np.asarray(self.frames[frame][key])
        if not self.scaled:
            return np.array(raw)
        factor = self.factors[frame]
        if factor.ndim:  # one factor per plane: follow the plane index
            factor = factor[key[0]]
            if factor.ndim:
                factor = factor.reshape((-1,) + (1,) * (raw.ndim - 1))
        out = raw.astype(self.dtype)
        out *= factor.astype(self.dtype)
        out += self.dtype.type(self.intercepts[frame])
        return out


def _scaled_dtype(raw):
    """float64 where float32 would lose digits of the raw values, else float32."""
    wide = raw.itemsize >= 8 or (raw.kind in "iu" and raw.itemsize >= 4)
    return np.dtype(np.float64 if wide else np.float32)


def _full_key(key, ndim):
    """key as a tuple of ndim ints and slices (``...`` expanded)."""
    key = key if isinstance(key, tuple) else (key,)
    ellipses = [n for n, k in enumerate(key) if k is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        n = ellipses[0]
        key = key[:n] + (slice(None),) * (ndim - len(key) + 1) + key[n + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices for a {ndim}-dimensional volume")
    key = key + (slice(None),) * (ndim - len(key))
    for k in key:
        if not isinstance(k, (int, np.integer, slice)):
            raise TypeError(f"LazyVolume takes integers, slices and '...' as indices, not {type(k).__name__}")
    return tuple(int(k) if isinstance(k, (int, np.integer)) else k for k in key)


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
        return entry_number(header, entry)
    items = parse_list(header, entry)
    values = [list_number(header, entry, item) for item in items]
    if len(values) not in (1, planes):
        raise header.fail(entry, f"expected one factor or one per plane ({planes}), found {len(values)}")
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
