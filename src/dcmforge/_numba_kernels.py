"""Numba versions of the pixel kernels; pixels.py defines what they compute.

Imported only by pixels._numba_kernels(), when a kernel first runs: importing
numba costs about half a second.  The kernels take the arrays prepared by
pixels.py (C-ordered, native byte order, read-only voxels; float64 per-slice
terms, and ``narrow``: the slices computed in float32) and fill preallocated outputs in place, one slice per prange step.

No fastmath: it would let LLVM reorder or contract the float64 arithmetic
(and assume no NaN), and the results must equal the numpy reference bit for bit.
"""

import numba as nb
import numpy as np


@nb.njit(nogil=True, cache=True)
def _plane_extrema(plane):  # pragma: no cover (compiled)
    """(min, max) of one plane as float64; min is NaN if the plane holds NaN or inf."""
    # Per-column running extrema: the loop over a row is then element-wise,
    # which LLVM vectorizes; a single running min would be a float reduction,
    # which it may not reorder without fastmath.
    low = plane[0].copy()
    high = plane[0].copy()
    poison = np.zeros(plane.shape[1])  # x * 0.0 is NaN only for NaN and inf
    for i in range(plane.shape[0]):
        row = plane[i]
        for j in range(row.shape[0]):
            value = row[j]
            low[j] = min(low[j], value)
            high[j] = max(high[j], value)
            poison[j] += value * 0.0
    return (np.nan if np.isnan(poison.sum()) else np.float64(low.min())), np.float64(high.max())


@nb.njit(nogil=True, cache=True)
def _pack_plane(plane, dest, intercept, inv_slope, low, high):  # pragma: no cover (compiled)
    for i in range(plane.shape[0]):
        for j in range(plane.shape[1]):
            value = np.rint((np.float64(plane[i, j]) - intercept) * inv_slope)
            value = min(max(value, low), high)
            dest[i, j] = np.int64(value) & 0xFFFF  # two's complement pattern of a signed value


@nb.njit(nogil=True, cache=True)
def _pack_plane_float32(plane, dest, intercept, inv_slope, low, high):  # pragma: no cover (compiled)
    # float32 voxels, float32 terms: every operation in float32 (numba keeps numpy's scalar types)
    c, m, lo, hi = np.float32(intercept), np.float32(inv_slope), np.float32(low), np.float32(high)
    for i in range(plane.shape[0]):
        for j in range(plane.shape[1]):
            value = np.rint((plane[i, j] - c) * m)
            value = min(max(value, lo), hi)
            dest[i, j] = np.int64(value) & 0xFFFF


@nb.njit(nogil=True, cache=True)
def _pack_one(plane, dest, intercept, inv_slope, low, high, narrow):  # pragma: no cover (compiled)
    if narrow:
        _pack_plane_float32(plane, dest, intercept, inv_slope, low, high)
    else:
        _pack_plane(plane, dest, intercept, inv_slope, low, high)


# Each kernel twice: over the slices in parallel (large chunks), and one slice after
# another, for the few slices a series writer holds in the cache at a time, where
# starting the threads would cost more than they save.


@nb.njit(parallel=True, nogil=True, cache=True)
def slice_extrema(src, mins, maxs):  # pragma: no cover (compiled)
    """mins[k], maxs[k] = min, max of src[k] as float64; mins[k] = NaN if src[k] holds NaN or inf."""
    for k in nb.prange(src.shape[0]):
        mins[k], maxs[k] = _plane_extrema(src[k])


@nb.njit(nogil=True, cache=True)
def slice_extrema_serial(src, mins, maxs):  # pragma: no cover (compiled)
    for k in range(src.shape[0]):
        mins[k], maxs[k] = _plane_extrema(src[k])


@nb.njit(parallel=True, nogil=True, cache=True)
def pack_slices(src, intercepts, inv_slopes, lows, highs, narrow, out):  # pragma: no cover (compiled)
    """out[k] = 16-bit pattern of
    clip(rint((T(src[k]) - T(intercepts[k])) * T(inv_slopes[k])), lows[k], highs[k]), T float32 where narrow[k]."""
    for k in nb.prange(src.shape[0]):
        _pack_one(src[k], out[k], intercepts[k], inv_slopes[k], lows[k], highs[k], narrow[k])


@nb.njit(nogil=True, cache=True)
def pack_slices_serial(src, intercepts, inv_slopes, lows, highs, narrow, out):  # pragma: no cover (compiled)
    for k in range(src.shape[0]):
        _pack_one(src[k], out[k], intercepts[k], inv_slopes[k], lows[k], highs[k], narrow[k])
