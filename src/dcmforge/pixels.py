"""Pack [z, y, x] voxel slices into 16-bit DICOM stored values.

One packing contract serves PET, CT and integer input.  For slice k, in the
slice's compute type T:

    stored = clip(rint((T(x) - T(intercept[k])) * T(inv_slope[k])), low[k], high[k])

* T is float32 for a slice of float32 voxels whose terms are float32 numbers
  (intercept exact, inv_slope normal: every PET and CT slice but those of
  magnitudes below about 1e-34), else float64 (``narrow`` says which);
* ``T(x)`` is numpy's cast (exact: float32 into float32, integers below 2**53 into float64);
* ``inv_slope[k] = 1.0 / slope[k]``, computed once per slice in float64, then cast to T;
  each operation is one IEEE operation in T, rounded to nearest;
* ``rint`` rounds half to even (``np.rint``);
* ``low, high`` are -32768, 32767 for a signed slice, 0, 65535 for an unsigned one;
* the result is kept as its 16-bit pattern (two's complement when signed) in a
  uint16 array whose bytes are little-endian, as Explicit VR Little Endian
  PixelData must be.

Every step is monotonic, so a slice's smallest and largest stored values are
the contract applied to its extrema (``stored_extrema``): no second pass.

What a reader gets back, stored * slope + intercept, is within half a slope of x
where T is float64. Float32 slices are packed in float32, at half the memory
traffic of float64, and read back within half a slope plus |x - intercept| * 2**-22.4
(FLOAT32_RELATIVE_ERROR),
at most two units in the last place of a float32 near x - intercept (the float32
rounding dcm2niix, for one, applies to every value it reads). Proof: let u = 2**-24,
float32's unit roundoff, and q = (x - intercept) / slope the exact quotient, |q| <= 65535.
The subtraction, the two roundings of inv_slope (float64, then float32) and the
product each multiply by some (1 + d) with |d| <= u (the float64 one by far less),
so the product is q(1 + e) with |e| <= 3u + 3u**2 + u**3 < 2**-22.4; a float32 result
below 2**-126 is off by at most 2**-150 absolutely, far inside the half step. rint
moves it by at most 1/2, so |stored - q| <= 1/2 + |q| * 2**-22.4, which times the slope
is the bound. tests/test_pixels.py holds both backends to it, and to at most one
step from the float64 form, for any slopes, intercepts and values.

The numpy functions here are the contract's definition; ``_numba_kernels``
holds numba versions that give the same bits (tests/test_pixels.py checks).
A series writer uses this module in two streaming passes over the volume, so
that bad voxels are found before any file is written and per-volume decisions
(integer input stored as is) are made once:

    backend = select_backend(volume.size)
    extrema = [slice_extrema(volume[k0:k1], k0, backend) for k0, k1 in chunks]
    mins, maxs = (np.concatenate(e) for e in zip(*extrema))
    scaling = plan_slice_scaling(mins, maxs, volume.dtype, modality)
    smallest, largest = stored_extrema(mins, maxs, *scaling)
    for k0, k1 in chunks:
        pack_slices(volume[k0:k1], *(a[k0:k1] for a in scaling), out[: k1 - k0], backend)
"""

import math
import os
import sys
from typing import NamedTuple

import numpy as np

from .errors import DcmforgeError, MetadataError, VolumeError

# Voxel types a volume may have: numba compiles one kernel per type.
VOXEL_DTYPES = tuple(
    np.dtype(name)
    for name in (
        "float32", "float64",
        "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64",
    )
)

SIGNED_RANGE = (-32768, 32767)
# What packing a float32 slice in float32 may add to a voxel's error, relative to |x - intercept| (see above).
FLOAT32_RELATIVE_ERROR = 2.0**-22.4
UNSIGNED_RANGE = (0, 65535)

# CT pixels: Hounsfield units stored signed with RescaleSlope 1; air (-1024 HU) is stored as 0.
CT_RESCALE_INTERCEPT = -1024.0

# RescaleSlope is a DS (at most 16 characters).  Slopes get at most this many
# significant digits, rounded up, so that f"{slope:.10g}" fits and reads back
# as exactly the slope used for packing (and no value is pushed past 16 bits).
SLOPE_DIGITS = 10

# The smallest slope whose inverse is a finite float64 with full precision.
_SMALLEST_SLOPE = np.finfo(np.float64).tiny

# PixelData is little-endian; a big-endian host byteswaps the packed buffer.
_BYTESWAP_PACKED = sys.byteorder != "little"

BACKENDS = ("numpy", "numba", "auto")
BACKEND_ENV_VAR = "DCMFORGE_BACKEND"

# "auto" picks numba from this many voxels up.  benchmarks/bench_kernels.py
# measured (2 shared cores, float32): a fresh process pays 0.45-0.8 s to import
# numba and load the cached kernels; both passes then cost 0.6 ns per voxel
# against numpy's 2.1-2.4, so numba pays off from 280-480 million voxels (a
# 440x440x600 volume is 116 million).  Taken above the middle because numba's
# threads lose most when other processes hold the cores.
NUMBA_MIN_VOXELS = 400_000_000

# The numba kernels run over the slices in parallel from this many voxels up; below, one
# thread (waking the others costs more than they save on a few slices).
PARALLEL_MIN_VOXELS = 1 << 20


class SliceScaling(NamedTuple):
    """Per-slice rescaling: one entry per slice of the volume."""

    slopes: np.ndarray  # RescaleSlope, float64, never 0
    intercepts: np.ndarray  # RescaleIntercept, float64
    signed: np.ndarray  # PixelRepresentation 1 (two's complement) where True


# --- checks -------------------------------------------------------------------


def _check_voxels(src):
    if not isinstance(src, np.ndarray) or src.ndim != 3:
        shape = getattr(src, "shape", None)
        raise VolumeError(f"voxels must be a 3-d numpy array [z, y, x], got shape {shape}")
    if src.dtype.newbyteorder("=") not in VOXEL_DTYPES:
        raise VolumeError(
            f"voxel type {src.dtype} cannot be stored; use float32, float64 or an integer type"
        )
    if src.shape[1] == 0 or src.shape[2] == 0:
        raise VolumeError(f"slices of shape {src.shape[1:]} hold no voxels")


def _check_packing_arrays(src, out, per_slice):
    _check_voxels(src)
    if not (
        isinstance(out, np.ndarray)
        and out.dtype == np.dtype("=u2")
        and out.flags.c_contiguous
        and out.flags.writeable
    ):
        raise VolumeError("out must be a writeable C-contiguous native uint16 array")
    if out.shape != src.shape:
        raise VolumeError(f"out has shape {out.shape}, the voxels {src.shape}")
    for name, values in per_slice.items():
        if np.shape(values) != src.shape[:1]:
            raise VolumeError(f"{name} has shape {np.shape(values)}, one entry per slice of {src.shape[0]}")


def _raise_not_finite(src, mins, maxs, k0):
    """Name the first slice (as a volume index) holding NaN or infinity, and where."""
    bad = ~(np.isfinite(mins) & np.isfinite(maxs))
    if not bad.any():
        return
    k = int(np.argmax(bad))
    plane = src[k]
    row, column = np.argwhere(~np.isfinite(plane))[0]
    value = plane[row, column]
    raise VolumeError(
        f"slice {k0 + k} holds {value} at row {row}, column {column}; "
        "NaN and infinite values cannot be stored"
    )


# --- the numpy reference ------------------------------------------------------


def _quantize(x, intercepts, inv_slopes, lows, highs, out):
    """The packing contract on x (scalars or per-slice arrays), in the type of out (float32 or float64)."""
    kind = out.dtype
    np.subtract(x, intercepts.astype(kind), out=out, dtype=kind)  # dtype: the compute type's loop, whatever x is
    np.multiply(out, inv_slopes.astype(kind), out=out)
    np.rint(out, out=out)
    np.clip(out, lows, highs, out=out)
    return out


def _quantize_slices(x, terms):
    """The contract on one value per slice (x: float64 holding the voxels' values exactly), each in its T."""
    *terms, narrow = terms
    x = np.asarray(x, np.float64)
    values = _quantize(x, *terms, np.empty(len(narrow)))
    if narrow.any():  # only those slices: the others' terms need not be float32 numbers
        tight = [term[narrow] for term in terms]
        values[narrow] = _quantize(x[narrow].astype(np.float32), *tight, np.empty(int(narrow.sum()), np.float32))
    return values


def _slice_extrema_numpy(src, mins, maxs):
    for k in range(src.shape[0]):
        plane = src[k]
        mins[k] = plane.min()  # NaN propagates, so the finiteness check sees it
        maxs[k] = plane.max()


def _pack_slices_numpy(src, intercepts, inv_slopes, lows, highs, narrow, out, in_range, scratch):
    # One slice at a time keeps the temporary small (and in cache). Steps that
    # change no bit are left out: subtracting 0, multiplying by 1, and the clip of a
    # slice whose extrema land in range (the contract is monotonic).
    for k in range(src.shape[0]):
        target = out[k].view(np.int16) if lows[k] < 0 else out[k]
        # the float64 scratch, or its first half as the float32 slice
        values = scratch.reshape(-1).view(np.float32)[: scratch.size].reshape(scratch.shape) if narrow[k] else scratch
        intercept, inv_slope = values.dtype.type(intercepts[k]), values.dtype.type(inv_slopes[k])
        if not in_range[k]:
            _quantize(src[k], intercepts[k], inv_slopes[k], lows[k], highs[k], values)
            np.copyto(target, values, casting="unsafe")  # exact: values are whole and in range
            continue
        # Casting first is faster than a ufunc that casts as it goes (numpy buffers that).
        np.copyto(values, src[k], casting="unsafe")  # T(x): exact
        if intercept != 0.0:
            np.subtract(values, intercept, out=values)
        if inv_slope != 1.0:
            np.multiply(values, inv_slope, out=values)
        np.rint(values, out=values)
        np.copyto(target, values, casting="unsafe")  # exact: values are whole and in range


# --- the numba path -----------------------------------------------------------


def _numba_kernels():
    from . import _numba_kernels  # imports numba: only when a kernel runs

    return _numba_kernels


def _in_parallel(src, parallel):
    return src.size >= PARALLEL_MIN_VOXELS if parallel is None else parallel


def _kernel_input(src):
    """src as the one layout the kernels are compiled for: C order, native bytes, read-only.

    Numba cannot read non-native byte order; Fortran order or a strided chunk
    would be walked across the cache lines; one layout also means one compiled
    kernel per voxel type.  A C-ordered native chunk (memmap included) is not copied.
    """
    array = np.ascontiguousarray(src, dtype=src.dtype.newbyteorder("="))
    view = array.view(np.ndarray)  # a new view: never change the caller's flags
    view.flags.writeable = False
    return view


# --- public functions ---------------------------------------------------------


def select_backend(n_voxels, requested="auto"):
    """Resolve a backend request to "numpy" or "numba".

    An explicit "numpy" or "numba" wins; "auto" is replaced by the
    DCMFORGE_BACKEND environment variable when that is set.  Left with "auto",
    numba is used when its kernels are already loaded in this process (nothing
    left to pay) or when the volume has at least NUMBA_MIN_VOXELS voxels.
    A writer calls this once with the volume's voxel count, not per chunk.
    """
    if requested == "auto":
        requested = os.environ.get(BACKEND_ENV_VAR) or "auto"
        where = f"environment variable {BACKEND_ENV_VAR}"
    else:
        where = "backend"
    if requested not in BACKENDS:
        raise DcmforgeError(f"{where}: {requested!r} is not one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested
    if __package__ + "._numba_kernels" in sys.modules or n_voxels >= NUMBA_MIN_VOXELS:
        return "numba"
    return "numpy"


def slice_extrema(src, k0=0, backend="auto", parallel=None):
    """Smallest and largest value of every slice of src, as two float64 arrays.

    src is a chunk volume[k0:k1]; a NaN or infinite voxel raises VolumeError
    naming its slice as k0 + i, with its row and column.  backend: see
    select_backend ("auto" here would judge the chunk's size, not the volume's).
    parallel: whether the numba kernel runs over the slices in parallel; None:
    from PARALLEL_MIN_VOXELS voxels up.
    """
    _check_voxels(src)
    n = src.shape[0]
    mins = np.empty(n, np.float64)
    maxs = np.empty(n, np.float64)
    if select_backend(src.size, backend) == "numba":
        kernels = _numba_kernels()
        kernel = kernels.slice_extrema if _in_parallel(src, parallel) else kernels.slice_extrema_serial
        kernel(_kernel_input(src), mins, maxs)
    else:
        _slice_extrema_numpy(src, mins, maxs)
    _raise_not_finite(src, mins, maxs, k0)
    return mins, maxs


def plan_slice_scaling(mins, maxs, dtype, modality, empty_slope=None, first=0):
    """RescaleSlope, RescaleIntercept and signedness for every slice of a volume.

    mins, maxs: slice_extrema of *all* slices of the volume (integer input is
    judged on the whole volume, see _plan_pet).  dtype: the volume's voxel type.
    modality: "PT", "CT" or "NM".  empty_slope: the slope for all-zero slices when
    none of these slices has values (a streaming writer's last slope; see
    _fit_16_bits).  first: the volume index of these slices' first, for
    errors (a writer may plan a few slices at a time).  Raises VolumeError for
    values that cannot be stored.
    """
    mins, maxs = _per_slice_extrema(mins, maxs)
    plan = _SCALING_POLICIES.get(modality)
    if plan is None:
        known = ", ".join(_SCALING_POLICIES)
        raise MetadataError(f"Modality {modality!r} has no pixel scaling policy (known: {known})")
    return plan(mins, maxs, np.dtype(dtype), empty_slope, first)


def plan_series_scaling(mins, maxs, dtype, modality, empty_slope=None, first=0, signed=False):
    """plan_slice_scaling with one PixelRepresentation for every slice: signed for all if any needs it.

    Readers such as dicom-numpy refuse a series whose files differ in
    PixelRepresentation. ``signed``: slices written before these were signed,
    so these are too. A slice planned unsigned among signed ones is planned
    again as if it held -max: signed, with slope max/32767, the slope a signed
    slice of that peak gets; every slice keeps its own slope.
    """
    scaling = plan_slice_scaling(mins, maxs, dtype, modality, empty_slope, first)
    if scaling.signed.all() or not (signed or scaling.signed.any()):
        return scaling
    mins, maxs = _per_slice_extrema(mins, maxs)
    scaling = plan_slice_scaling(np.where(scaling.signed, mins, -maxs), maxs, dtype, modality, empty_slope, first)
    return scaling._replace(signed=np.ones(mins.size, bool))  # all-zero slices too


def plan_volume_scaling(mins, maxs, dtype, modality):
    """One RescaleSlope and RescaleIntercept for every slice: plan_slice_scaling of the whole volume's extrema.

    For a multi-frame file read by readers that apply one rescale to all its
    slices (DICOM frames); a voxel's error is then at most half the volume's slope.
    """
    mins, maxs = _per_slice_extrema(mins, maxs)
    whole = plan_slice_scaling(mins.min(keepdims=True), maxs.max(keepdims=True), dtype, modality)
    return SliceScaling(*(np.repeat(values, mins.size) for values in whole))


def _per_slice_extrema(mins, maxs):
    """mins and maxs as float64 arrays of one entry per slice (at least one)."""
    mins = np.asarray(mins, np.float64)
    maxs = np.asarray(maxs, np.float64)
    if mins.ndim != 1 or mins.shape != maxs.shape or mins.size == 0:
        raise VolumeError(f"need one min and one max per slice, got shapes {mins.shape}, {maxs.shape}")
    return mins, maxs


def _plan_pet(mins, maxs, dtype, empty_slope, first=0):
    # Integer input (counts) that fits 16 bits everywhere is stored as is, with
    # slope 1 on every slice.  Judging per slice instead would let the slope
    # jump between 1 and a fraction from slice to slice, which viewers show as
    # a jump in quantitation; hence the whole volume's extrema.
    if dtype.kind in "iu":
        low, high = mins.min(), maxs.max()
        for signed, (lo, hi) in ((False, UNSIGNED_RANGE), (True, SIGNED_RANGE)):
            if lo <= low and high <= hi:
                n = mins.size
                return SliceScaling(np.ones(n), np.zeros(n), np.full(n, signed))
    return _fit_16_bits(mins, maxs, empty_slope, first)


def _fit_16_bits(mins, maxs, empty_slope=None, first=0):
    """Per slice: signed with slope peak/32767 if it holds negative values, else unsigned with max/65535.

    No slope is a whole number: GDCM (ITK, SimpleITK) reads a series in the
    pixel type that the first file's slope calls for, an integer type when the
    slope is whole, and would truncate and wrap every other slice's real values.
    So an all-zero slice takes the slope of the nearest slice with values (the
    larger of two as near), or empty_slope, or the slope of a slice of peak 1;
    and a whole slope becomes the next one up at SLOPE_DIGITS digits (_not_whole).
    """
    signed = mins < 0
    peak = np.maximum(np.abs(mins), np.abs(maxs))
    exact = peak / np.where(signed, SIGNED_RANGE[1], UNSIGNED_RANGE[1])
    too_small = (exact > 0) & (exact < _SMALLEST_SLOPE)
    if too_small.any():
        k = int(np.argmax(too_small))
        raise VolumeError(
            f"slice {first + k}: largest magnitude {float(peak[k])!r} is too small to scale into 16 bits"
        )
    slopes = np.array([_not_whole(_round_up_slope(s)) if s > 0 else 0.0 for s in exact])
    empty = slopes == 0
    if empty.any():
        slopes[empty] = _nearest_slopes(slopes, empty, empty_slope)
    return SliceScaling(slopes, np.zeros(mins.size), signed)


def _nearest_slopes(slopes, empty, empty_slope):
    """For each empty slice, the slope of the nearest slice with values (the larger of two as near)."""
    filled = np.flatnonzero(~empty)
    if filled.size == 0:
        return _not_whole(empty_slope or _round_up_slope(1.0 / UNSIGNED_RANGE[1]))
    k = np.flatnonzero(empty)
    after = np.minimum(np.searchsorted(filled, k), filled.size - 1)
    before = np.maximum(after - 1, 0)
    gap_after, gap_before = np.abs(filled[after] - k), np.abs(k - filled[before])
    slope_after, slope_before = slopes[filled[after]], slopes[filled[before]]
    return np.where(
        gap_before < gap_after,
        slope_before,
        np.where(gap_after < gap_before, slope_after, np.maximum(slope_before, slope_after)),
    )


def _not_whole(slope):
    """slope, or the next SLOPE_DIGITS-digit value above it when it is a whole number.

    From 10**(SLOPE_DIGITS - 1) up every such value is whole (voxels above 6e13): left as it is.
    """
    if slope != math.floor(slope) or slope >= 10.0 ** (SLOPE_DIGITS - 1):
        return slope
    from decimal import Decimal  # only for a whole slope: most series never load it

    exact = Decimal(slope)
    return float(exact + Decimal(1).scaleb(exact.adjusted() - SLOPE_DIGITS + 1))


def _round_up_slope(slope):
    """slope (> 0) rounded up to SLOPE_DIGITS significant digits (the nearest float to that decimal).

    In integers on the float's exact ratio n/d, once per slice: Decimal took four times as long.
    """
    n, d = slope.as_integer_ratio()
    exponent = len(str(n)) - len(str(d))  # the decimal exponent of n/d, or one more
    if (d * 10**exponent > n) if exponent >= 0 else (d > n * 10**-exponent):
        exponent -= 1
    shift = SLOPE_DIGITS - 1 - exponent
    numerator, denominator = (n * 10**shift, d) if shift >= 0 else (n, d * 10**-shift)
    digits = -(-numerator // denominator)  # the ceiling: SLOPE_DIGITS digits (or 10**SLOPE_DIGITS)
    # float() of a decimal >= slope is >= slope: rounding to nearest is monotonic.
    return float(f"{digits}e{-shift}")


def _plan_ct(mins, maxs, dtype, empty_slope, first=0):
    n = mins.size
    lowest = np.rint(mins - CT_RESCALE_INTERCEPT)
    highest = np.rint(maxs - CT_RESCALE_INTERCEPT)
    bad = (lowest < SIGNED_RANGE[0]) | (highest > SIGNED_RANGE[1])
    if bad.any():
        k = int(np.argmax(bad))
        value = mins[k] if lowest[k] < SIGNED_RANGE[0] else maxs[k]
        low, high = (bound + CT_RESCALE_INTERCEPT for bound in SIGNED_RANGE)
        raise VolumeError(
            f"slice {first + k}: {value:g} HU is outside the CT range {low:g} to {high:g} HU "
            f"(signed 16 bits, RescaleIntercept {CT_RESCALE_INTERCEPT:g})"
        )
    return SliceScaling(np.ones(n), np.full(n, CT_RESCALE_INTERCEPT), np.ones(n, bool))


def _plan_nm(mins, maxs, dtype, empty_slope, first=0):
    """Unsigned 16 bits, as NM images store them; a negative minimum is carried by RescaleIntercept.

    Integer input whose range fits 65536 values is stored as it is (slope 1, the
    intercept its minimum when negative). Otherwise the slope spans the lowest
    value (or 0) to the highest in 65535 steps, rounded up, and the intercept is
    the lowest value rounded down, both to SLOPE_DIGITS digits so that DS holds
    them exactly: every value is then within half a slope of its stored one.
    ``empty_slope`` is not needed: write/nm.py plans the volume as one slice.
    """
    lows = np.minimum(mins, 0.0)
    unsigned = np.zeros(mins.size, bool)
    if dtype.kind in "iu" and np.all(maxs - lows <= UNSIGNED_RANGE[1]):
        return SliceScaling(np.ones(mins.size), lows, unsigned)
    intercepts = np.array([-_round_up_slope(-low) if low < 0 else 0.0 for low in lows])
    exact = (maxs - intercepts) / UNSIGNED_RANGE[1]
    too_small = (exact > 0) & (exact < _SMALLEST_SLOPE)
    if too_small.any():
        k = int(np.argmax(too_small))
        raise VolumeError(f"slice {first + k}: the range of its values is too small to scale into 16 bits")
    slopes = np.array([_round_up_slope(s) if s > 0 else 1.0 for s in exact])
    return SliceScaling(slopes, intercepts, unsigned)


_SCALING_POLICIES = {"PT": _plan_pet, "CT": _plan_ct, "NM": _plan_nm}


_FLOAT32 = np.finfo(np.float32)


def _packing_terms(slopes, intercepts, signed, dtype):
    """The per-slice terms of the contract: intercept, 1/slope, low, high (float64), and narrow (T is float32)."""
    signed = np.asarray(signed, bool)
    intercepts = np.asarray(intercepts, np.float64)
    inv_slopes = 1.0 / np.asarray(slopes, np.float64)
    if np.dtype(dtype).newbyteorder("=") == np.float32:
        narrow = (intercepts.astype(np.float32) == intercepts) & (inv_slopes >= _FLOAT32.tiny) & (
            inv_slopes <= _FLOAT32.max)  # fmt: skip
    else:
        narrow = np.zeros(signed.shape, bool)
    return (
        intercepts,
        inv_slopes,
        np.where(signed, float(SIGNED_RANGE[0]), float(UNSIGNED_RANGE[0])),
        np.where(signed, float(SIGNED_RANGE[1]), float(UNSIGNED_RANGE[1])),
        narrow,
    )


def _needs_no_clip(extrema, terms):
    """Per slice: True where the contract's values for the slice's extrema lie within low..high unclipped."""
    intercepts, inv_slopes, lows, highs, narrow = terms
    unbounded = (intercepts, inv_slopes, np.full(lows.shape, -np.inf), np.full(lows.shape, np.inf), narrow)
    low, high = (_quantize_slices(x, unbounded) for x in extrema)
    return (lows <= low) & (high <= highs)


def stored_extrema(mins, maxs, slopes, intercepts, signed, dtype):
    """Smallest and largest stored value per slice (int64), for Smallest/LargestImagePixelValue.

    mins, maxs: slice_extrema of voxels of type dtype. The contract is monotonic,
    so these are the contract applied to the extrema, each slice in its compute type.
    """
    terms = _packing_terms(slopes, intercepts, signed, dtype)
    return tuple(_quantize_slices(x, terms).astype(np.int64) for x in (mins, maxs))


def pack_slices(src, slopes, intercepts, signed, out, backend="auto", extrema=None, scratch=None, parallel=None):
    """Pack the chunk src into out (same shape, uint16, little-endian bytes), in place.

    src must be finite (slice_extrema checks it); slopes, intercepts and signed
    are the chunk's entries of a plan_slice_scaling result; backend as for
    slice_extrema, and parallel.  extrema: src's (mins, maxs) when known, which lets the
    numpy path skip clipping slices that need none (the bits are the same).
    scratch: a float64 array of one slice's shape for the numpy path to reuse
    (a writer that packs a slice or two at a time would otherwise allocate,
    and fault in, a fresh one per call). Returns out.
    """
    _check_packing_arrays(src, out, {"slopes": slopes, "intercepts": intercepts, "signed": signed})
    terms = _packing_terms(slopes, intercepts, signed, src.dtype)
    if select_backend(src.size, backend) == "numba":
        kernels = _numba_kernels()
        kernel = kernels.pack_slices if _in_parallel(src, parallel) else kernels.pack_slices_serial
        kernel(_kernel_input(src), *terms, out)
    else:
        in_range = np.zeros(src.shape[0], bool) if extrema is None else _needs_no_clip(extrema, terms)
        if scratch is None or scratch.shape != src.shape[1:] or scratch.dtype != np.float64:
            scratch = np.empty(src.shape[1:], np.float64)
        _pack_slices_numpy(src, *terms, out, in_range, scratch)
    if _BYTESWAP_PACKED:
        out.byteswap(inplace=True)
    return out
