"""The volume a reader returns when its values are scaled: memory-mapped frames, scaled when indexed.

Interfile (per-frame or per-plane factors) and NIfTI (scl_slope, scl_inter) use it;
it lives apart from both so that one reader does not load the other.
"""

import numpy as np


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
