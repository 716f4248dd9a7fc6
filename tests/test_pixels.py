"""Pixel packing: the numpy contract, the numba kernels' bit equality, the scaling policy."""

import contextlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dcmforge import pixels
from dcmforge.errors import DcmforgeError, MetadataError, VolumeError

# Two shared cores: few examples; no deadline, as the first example may compile a kernel.
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

FLOAT_EXPONENTS = {np.dtype("float32"): (-35, 35), np.dtype("float64"): (-290, 300)}
# What packing float32 slices in float32 adds to a voxel's error, relative to |x - intercept| (pixels.py)
FLOAT32_ROUNDING = 2**-22.4


def _float32(volume):
    return volume.dtype.newbyteorder("=") == np.float32


def _as_stored(out, signed):
    """The stored values of each slice, read the way PixelRepresentation says."""
    return [plane.view(np.int16) if s else plane for plane, s in zip(out, signed)]


@st.composite
def float_volumes(draw, shape, dtype):
    if draw(st.booleans()):
        # halves beyond the 16-bit ranges: rounding ties and clipping under slope 1
        return draw(hnp.arrays(np.int32, shape, elements=st.integers(-140000, 140000))).astype(dtype) / 2
    # mantissa in [-1, 1] (or 0) times a power of ten: huge and tiny magnitudes,
    # never so tiny that the policy must refuse the slice.
    mantissa = st.one_of(st.just(0.0), st.floats(1e-6, 1.0), st.floats(-1.0, -1e-6))
    values = draw(hnp.arrays(np.float64, shape, elements=mantissa))
    low, high = FLOAT_EXPONENTS[dtype]
    exponent = draw(st.integers(low, high))
    return (values * 10.0**exponent).astype(dtype)


@st.composite
def integer_volumes(draw, shape, dtype):
    info = np.iinfo(dtype)
    # ranges that fit uint16, fit int16, or need scaling
    low, high = draw(st.sampled_from([(0, 65535), (-32768, 32767), (-5, 5), (info.min, info.max)]))
    low, high = max(low, info.min), min(high, info.max)
    return draw(hnp.arrays(dtype, shape, elements=st.integers(low, high)))


@st.composite
def volumes(draw, dtypes=pixels.VOXEL_DTYPES):
    """Small volumes of any supported voxel type, layout and byte order, some slices zeroed."""
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(1, 9)))
    dtype = draw(st.sampled_from(dtypes))
    make = float_volumes if dtype.kind == "f" else integer_volumes
    volume = draw(make(shape, dtype))
    for k in draw(st.sets(st.integers(0, shape[0] - 1))):
        volume[k] = 0
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        volume = np.asfortranarray(volume)
    elif layout == "strided":
        spaced = np.zeros((shape[0], shape[1], 2 * shape[2]), dtype)
        spaced[:, :, ::2] = volume
        volume = spaced[:, :, ::2]
    if draw(st.booleans()):
        volume = volume.astype(volume.dtype.newbyteorder("S"))
    return volume


@contextlib.contextmanager
def numba_kernels(kind):
    """Run the numba kernels over the slices in parallel, or one slice after another."""
    saved = pixels.PARALLEL_MIN_VOXELS
    pixels.PARALLEL_MIN_VOXELS = 0 if kind == "parallel" else 2**62
    try:
        yield
    finally:
        pixels.PARALLEL_MIN_VOXELS = saved


def _pack(volume, scaling, backend, extrema=None):
    out = np.empty(volume.shape, np.uint16)
    pixels.pack_slices(volume, *scaling, out, backend, extrema=extrema)
    return out


@pytest.mark.slow
@SETTINGS
@given(volumes(), st.integers(0, 1000))
def test_numba_kernels_equal_numpy_reference(volume, k0):
    mins, maxs = pixels.slice_extrema(volume, k0, "numpy")
    for kind in ("parallel", "serial"):
        with numba_kernels(kind):
            numba_mins, numba_maxs = pixels.slice_extrema(volume, k0, "numba")
        np.testing.assert_array_equal(numba_mins, mins)
        np.testing.assert_array_equal(numba_maxs, maxs)
    exact = volume.astype(np.float64)
    np.testing.assert_array_equal(mins, exact.min(axis=(1, 2)))
    np.testing.assert_array_equal(maxs, exact.max(axis=(1, 2)))

    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
    reference = _pack(volume, scaling, "numpy")
    for kind in ("parallel", "serial"):
        with numba_kernels(kind):
            np.testing.assert_array_equal(_pack(volume, scaling, "numba"), reference)

    smallest, largest = pixels.stored_extrema(mins, maxs, *scaling, volume.dtype)
    stored = _as_stored(reference, scaling.signed)
    np.testing.assert_array_equal(smallest, [plane.min() for plane in stored])
    np.testing.assert_array_equal(largest, [plane.max() for plane in stored])


@pytest.mark.slow
@SETTINGS
@given(volumes(), st.sampled_from([pixels.plan_slice_scaling, pixels.plan_volume_scaling]))
def test_every_plan_reads_back_within_half_a_step_with_no_whole_slope_where_it_scales(volume, plan):
    mins, maxs = pixels.slice_extrema(volume)
    scaling = plan(mins, maxs, volume.dtype, "PT")
    assert (scaling.slopes > 0).all() and (scaling.intercepts == 0).all()
    if not (scaling.slopes == 1.0).all():  # scaled (not integers stored as they are): no whole slope below 1e9
        assert all(s != np.floor(s) or s >= 1e9 for s in scaling.slopes), scaling.slopes
    if plan is pixels.plan_volume_scaling:
        assert len(set(scaling.slopes)) == 1 and len(set(scaling.signed)) == 1
    stored = _as_stored(_pack(volume, scaling, "numpy"), scaling.signed)
    for plane, expected, slope in zip(stored, volume.astype(np.float64), scaling.slopes):
        error = np.abs(plane * slope - expected)
        allowed = 0.5 * slope * (1 + 1e-9) + (FLOAT32_ROUNDING if _float32(volume) else 1e-12) * np.abs(expected)
        assert (error <= allowed).all(), (slope, error.max())


@pytest.mark.slow
@SETTINGS
@given(volumes(), st.data())
def test_numba_pack_equals_numpy_for_any_slopes_and_intercepts(volume, data):
    # The contract is general (not only the plan's terms): ties and clipping included.
    n = volume.shape[0]
    terms = st.sampled_from([1.0, 0.5, 2.0, 0.25, 3.0, 1e-3, 1e6])
    slopes = data.draw(st.lists(terms | st.floats(1e-12, 1e12), min_size=n, max_size=n))
    intercepts = data.draw(st.lists(st.sampled_from([0.0, -1024.0, 0.5, -0.5]), min_size=n, max_size=n))
    signed = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    scaling = (np.array(slopes), np.array(intercepts), np.array(signed))
    reference = _pack(volume, scaling, "numpy")
    for kind in ("parallel", "serial"):
        with numba_kernels(kind):
            np.testing.assert_array_equal(_pack(volume, scaling, "numba"), reference)
    # Given the extrema, the numpy path leaves out the steps that change no bit: still the same bits.
    extrema = pixels.slice_extrema(volume, 0, "numpy")
    np.testing.assert_array_equal(_pack(volume, scaling, "numpy", extrema), reference)


@pytest.mark.slow
@SETTINGS
@given(volumes())
def test_every_voxel_reads_back_within_half_a_slope(volume):
    mins, maxs = pixels.slice_extrema(volume)
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
    stored = _as_stored(_pack(volume, scaling, "numpy"), scaling.signed)
    for k, plane in enumerate(stored):
        slope = scaling.slopes[k]
        decoded = plane.astype(np.float64) * slope + scaling.intercepts[k]
        exact = volume[k].astype(np.float64)
        error = np.abs(decoded - exact)
        # slope/2 from rounding; 1e-9 slope covers float64 rounding of the check itself; float32 slices are
        # packed in float32 (pixels.py: the bound and its proof)
        allowed = slope * (0.5 + 1e-9) + (FLOAT32_ROUNDING * np.abs(exact) if _float32(volume) else 0.0)
        assert (error <= allowed).all(), (k, slope, error.max())


@pytest.mark.slow
@SETTINGS
@given(volumes(dtypes=(np.dtype("float32"),)), st.data())
def test_float32_slices_are_the_float64_contract_within_float32_rounding(volume, data):
    """For any slopes and intercepts: at most one step from the float64 form, and within the stated bound."""
    n = volume.shape[0]
    slopes = np.array(data.draw(st.lists(st.floats(1e-30, 1e30), min_size=n, max_size=n)))
    intercepts = np.array(data.draw(st.lists(st.sampled_from([0.0, -1024.0, 0.5, 0.1]), min_size=n, max_size=n)))
    signed = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    stored = _pack(volume, (slopes, intercepts, signed), "numpy")
    for kind in ("parallel", "serial"):
        with numba_kernels(kind):
            np.testing.assert_array_equal(_pack(volume, (slopes, intercepts, signed), "numba"), stored)
    exact = volume.astype(np.float64)
    for k, plane in enumerate(_as_stored(stored, signed)):
        low, high = pixels.SIGNED_RANGE if signed[k] else pixels.UNSIGNED_RANGE
        quotient = (exact[k] - intercepts[k]) / slopes[k]
        float64_form = np.clip(np.rint((exact[k] - intercepts[k]) * (1.0 / slopes[k])), low, high)
        assert (np.abs(plane - float64_form) <= 1).all()
        inside = (low <= quotient) & (quotient <= high)  # where no clipping decides the value
        error = np.abs(plane - quotient)[inside]
        assert (error <= 0.5 + FLOAT32_ROUNDING * np.abs(quotient[inside]) + 1e-9).all(), (k, slopes[k])


def test_float32_slices_with_terms_beyond_float32_are_packed_in_float64():
    volume = np.array([[[1e-38, 5e-39]], [[3.0, 1.5]]], np.float32)  # the first slice's 1/slope overflows float32
    mins, maxs = pixels.slice_extrema(volume)
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
    float64_form = np.rint(volume[0].astype(np.float64) * (1.0 / scaling.slopes[0]))
    assert float64_form[0, 0] == 65535 and 30000 < float64_form[0, 1] < 35000
    for backend in ("numpy", "numba"):
        stored = _pack(volume, scaling, backend)
        np.testing.assert_array_equal(stored[0], float64_form)  # in float32, 1/slope would be inf: 65535 everywhere
    smallest, largest = pixels.stored_extrema(mins, maxs, *scaling, volume.dtype)
    np.testing.assert_array_equal(largest, [65535, 65535])


@SETTINGS
@given(st.floats(1e-300, 1e300), st.booleans())
def test_slope_has_ten_digits_rounded_up(peak, negative):
    mins = np.array([-peak if negative else 0.0])
    scaling = pixels.plan_slice_scaling(mins, np.array([peak]), np.float64, "PT")
    slope = scaling.slopes[0]
    exact = peak / (32767 if negative else 65535)
    assert exact <= slope <= exact * (1 + 1e-9)
    text = f"{slope:.10g}"
    assert len(text) <= 16 and float(text) == slope
    assert scaling.signed[0] == negative


@SETTINGS
@given(
    st.integers(1, 4), st.integers(1, 5), st.integers(1, 5), st.data(),
    st.sampled_from([np.nan, np.inf, -np.inf]), st.sampled_from(["numpy", "numba"]),
    st.sampled_from(["<f4", ">f4", "<f8", ">f8"]), st.sampled_from(["C", "F"]),
)
def test_nan_and_inf_name_the_slice_row_and_column(nz, ny, nx, data, bad, backend, dtype, order):
    volume = np.ones((nz, ny, nx), dtype, order=order)
    k = data.draw(st.integers(0, nz - 1))
    row, column = data.draw(st.integers(0, ny - 1)), data.draw(st.integers(0, nx - 1))
    volume[k, row, column] = bad
    volume[k:, -1, -1] = bad  # later slices (and maybe later voxels) hold bad values too
    first = np.argwhere(~np.isfinite(volume[k]))[0]
    with pytest.raises(VolumeError, match=rf"slice {40 + k} holds .* at row {first[0]}, column {first[1]};"):
        pixels.slice_extrema(volume, 40, backend)


def test_numpy_backend_finds_nan_in_an_otherwise_finite_slice():
    volume = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    volume[1, 2, 1] = np.nan
    for backend in ("numpy", "numba"):
        with pytest.raises(VolumeError, match=r"slice 1 holds nan at row 2, column 1"):
            pixels.slice_extrema(volume, 0, backend)


# --- the scaling policy -----------------------------------------------------


def test_float_slices_choose_signed_or_unsigned_and_all_zero_takes_its_neighbours_slope():
    # float64: the float32 form rounds 1/slope itself, and its x.5 steps may round either way (pixels.py)
    volume = np.array([[[0.0, 1.0, 2.0]], [[-3.0, 0.0, 1.5]], [[0.0, 0.0, 0.0]]], np.float64)
    mins, maxs = pixels.slice_extrema(volume)
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
    np.testing.assert_array_equal(scaling.signed, [False, True, False])
    np.testing.assert_array_equal(scaling.intercepts, [0.0, 0.0, 0.0])
    assert 2 / 65535 <= scaling.slopes[0] <= 2 / 65535 * (1 + 1e-9)
    assert 3 / 32767 <= scaling.slopes[1] <= 3 / 32767 * (1 + 1e-9)
    assert scaling.slopes[2] == scaling.slopes[1]  # the nearest slice with values
    stored = _as_stored(_pack(volume, scaling, "numpy"), scaling.signed)
    # the slope is rounded up, so x.5 steps land just below the half and round down
    np.testing.assert_array_equal(stored[0], [[0, 32767, 65535]])
    np.testing.assert_array_equal(stored[1], [[-32767, 0, 16383]])
    np.testing.assert_array_equal(stored[2], [[0, 0, 0]])
    out = _pack(volume, scaling, "numpy")
    assert out[1, 0, 0] == 65536 - 32767  # two's complement pattern in the uint16 buffer


def test_empty_slices_take_the_nearest_slope_the_larger_of_two_as_near():
    maxs = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 4.0, 0.0, 2.0, 0.0])
    scaling = pixels.plan_slice_scaling(np.zeros(10), maxs, np.float32, "PT")
    a, b, c = (pixels.plan_slice_scaling([0.0], [m], np.float32, "PT").slopes[0] for m in (1.0, 4.0, 2.0))
    np.testing.assert_array_equal(scaling.slopes, [a, a, a, a, b, b, b, b, c, c])
    # a series of empty slices: the slope given for them (a streaming writer's last), else peak 1's
    assert pixels.plan_slice_scaling([0.0], [0.0], np.float32, "PT", 0.25).slopes[0] == 0.25
    assert pixels.plan_slice_scaling([0.0], [0.0], np.float32, "PT").slopes[0] == a
    assert pixels.plan_slice_scaling([0.0], [0.0], np.float32, "PT", 1.0).slopes[0] == 1.000000001


@pytest.mark.parametrize(
    "peak, slope", [(65535.0, 1.000000001), (3 * 65535.0, 3.000000001), (65535e6, 1000000.001), (65535e9, 1e9)]
)
def test_no_float_slice_gets_a_whole_slope(peak, slope):
    # GDCM reads a whole series as integers when the first file's slope is whole
    scaling = pixels.plan_slice_scaling([0.0, 0.0], [peak, 0.5], np.float64, "PT")
    assert scaling.slopes[0] == slope
    assert scaling.slopes[0] != np.floor(scaling.slopes[0]) or slope >= 1e9  # 10 digits: whole from 1e9 up


@pytest.mark.parametrize(
    "values, dtype, signed",
    [
        ([0, 65535], np.uint32, False),
        ([0, 65535], np.int64, False),
        ([-32768, 32767], np.int32, True),
        ([-1, 7], np.int8, True),
        ([0, 255], np.uint8, False),
    ],
)
def test_integers_that_fit_16_bits_are_stored_as_they_are(values, dtype, signed):
    volume = np.array(values, dtype).reshape(2, 1, 1)
    mins, maxs = pixels.slice_extrema(volume)
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
    np.testing.assert_array_equal(scaling.slopes, [1.0, 1.0])
    np.testing.assert_array_equal(scaling.signed, [signed, signed])
    stored = _as_stored(_pack(volume, scaling, "numba"), scaling.signed)
    np.testing.assert_array_equal(np.ravel(stored), values)


def test_integer_fit_is_judged_on_the_whole_volume():
    # slice 0 alone fits uint16, but slice 1 does not: both are scaled, per slice
    volume = np.array([[[0, 1000]], [[0, 70000]]], np.int32)
    mins, maxs = pixels.slice_extrema(volume)
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
    assert 1000 / 65535 <= scaling.slopes[0] <= 1000 / 65535 * (1 + 1e-9)
    assert 70000 / 65535 <= scaling.slopes[1] <= 70000 / 65535 * (1 + 1e-9)
    np.testing.assert_array_equal(scaling.signed, [False, False])
    # a volume fitting int16 but with a negative slice: every slice signed, slope 1
    volume = np.array([[[0, 1000]], [[-5, 3]]], np.int32)
    scaling = pixels.plan_slice_scaling(*pixels.slice_extrema(volume), volume.dtype, "PT")
    np.testing.assert_array_equal(scaling.slopes, [1.0, 1.0])
    np.testing.assert_array_equal(scaling.signed, [True, True])


def test_magnitudes_too_small_for_a_slope_are_refused():
    mins, maxs = np.array([0.0, 0.0]), np.array([1.0, 1e-305])
    with pytest.raises(VolumeError, match=r"slice 1: largest magnitude 1e-305 is too small"):
        pixels.plan_slice_scaling(mins, maxs, np.float64, "PT")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_largest_finite_values_are_packed(dtype):
    top = np.finfo(dtype).max
    volume = np.array([[[-top, 0, top]], [[0, top / 4, top]]], dtype)
    mins, maxs = pixels.slice_extrema(volume)
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
    for backend in ("numpy", "numba"):
        stored = _as_stored(_pack(volume, scaling, backend), scaling.signed)
        np.testing.assert_array_equal(stored[0], [[-32767, 0, 32767]])
        np.testing.assert_array_equal(stored[1], [[0, 16384, 65535]])


def test_unknown_modality_and_bad_extrema_are_refused():
    with pytest.raises(MetadataError, match=r"Modality 'MR' has no pixel scaling policy"):
        pixels.plan_slice_scaling([0.0], [1.0], np.float32, "MR")
    with pytest.raises(VolumeError, match=r"one min and one max per slice"):
        pixels.plan_slice_scaling([0.0, 1.0], [1.0], np.float32, "PT")
    with pytest.raises(VolumeError, match=r"one min and one max per slice"):
        pixels.plan_slice_scaling([], [], np.float32, "PT")


# --- CT -----------------------------------------------------------------------


def test_ct_stores_hounsfield_units_plus_1024_signed():
    volume = np.array([
        [[-1024.0, 0.0, 1000.4, 1000.5, 1001.5]],
        [[-33792.0, -33792.5, 31743.0, 31743.4, 3.0]],  # the range's edges, ties to even
    ])
    mins, maxs = pixels.slice_extrema(volume)
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "CT")
    np.testing.assert_array_equal(scaling.slopes, [1.0, 1.0])
    np.testing.assert_array_equal(scaling.intercepts, [-1024.0, -1024.0])
    np.testing.assert_array_equal(scaling.signed, [True, True])
    for backend in ("numpy", "numba"):
        stored = _as_stored(_pack(volume, scaling, backend), scaling.signed)
        np.testing.assert_array_equal(stored[0], [[0, 1024, 2024, 2024, 2026]])
        np.testing.assert_array_equal(stored[1], [[-32768, -32768, 32767, 32767, 1027]])
    smallest, largest = pixels.stored_extrema(mins, maxs, *scaling, volume.dtype)
    np.testing.assert_array_equal(smallest, [0, -32768])
    np.testing.assert_array_equal(largest, [2026, 32767])


@pytest.mark.parametrize(
    "value, shown", [(31743.5, "31743.5"), (40000.0, "40000"), (-33793.0, "-33793"), (-1e6, "-1e\\+06")]
)
def test_ct_values_out_of_range_name_slice_and_value(value, shown):
    volume = np.zeros((3, 2, 2), np.float32)
    volume[2, 1, 0] = value
    mins, maxs = pixels.slice_extrema(volume)
    with pytest.raises(VolumeError, match=rf"slice 2: {shown} HU is outside the CT range -33792 to 31743 HU"):
        pixels.plan_slice_scaling(mins, maxs, volume.dtype, "CT")


@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
                  elements=st.floats(-33792.0, 31743.0)))
def test_ct_reads_back_within_half_a_unit(volume):
    mins, maxs = pixels.slice_extrema(volume)
    scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "CT")
    reference = _pack(volume, scaling, "numpy")
    np.testing.assert_array_equal(_pack(volume, scaling, "numba"), reference)
    decoded = reference.view(np.int16).astype(np.float64) - 1024.0
    assert np.abs(decoded - volume).max() <= 0.5


# --- inputs and outputs -------------------------------------------------------


def test_numba_reads_a_read_only_memmap_chunk(tmp_path):
    path = tmp_path / "volume.f32"
    rng = np.random.default_rng(1)
    rng.standard_normal((6, 5, 7)).astype(np.float32).tofile(path)
    volume = np.memmap(path, np.float32, "r", shape=(6, 5, 7))
    chunk = volume[2:5]
    extrema = pixels.slice_extrema(chunk, 2, "numba")
    np.testing.assert_array_equal(extrema, pixels.slice_extrema(chunk, 2, "numpy"))
    scaling = pixels.plan_slice_scaling(*extrema, chunk.dtype, "PT")
    np.testing.assert_array_equal(_pack(chunk, scaling, "numba"), _pack(chunk, scaling, "numpy"))


def test_numba_path_leaves_the_callers_array_writeable():
    volume = np.ones((2, 3, 3), np.float32)
    pixels.slice_extrema(volume, 0, "numba")
    assert volume.flags.writeable


@pytest.mark.parametrize(
    "volume, match",
    [
        (np.zeros((3, 3)), r"3-d numpy array \[z, y, x\], got shape \(3, 3\)"),
        ([[[1.0]]], r"got shape None"),
        (np.zeros((1, 2, 2), bool), r"voxel type bool cannot be stored"),
        (np.zeros((1, 2, 2), np.complex64), r"voxel type complex64 cannot be stored"),
        (np.zeros((1, 2, 2), np.float16), r"voxel type float16 cannot be stored"),
        (np.zeros((2, 0, 3), np.float32), r"slices of shape \(0, 3\) hold no voxels"),
    ],
)
def test_unsupported_voxels_are_refused(volume, match):
    with pytest.raises(VolumeError, match=match):
        pixels.slice_extrema(volume)


def test_bad_output_buffers_and_scaling_lengths_are_refused():
    volume = np.ones((2, 3, 4), np.float32)
    ones, zeros, no = np.ones(2), np.zeros(2), np.zeros(2, bool)
    bad_outs = [
        np.empty((2, 3, 4), np.int16),
        np.empty((2, 3, 4), ">u2"),
        np.empty((2, 4, 3), np.uint16).transpose(0, 2, 1),
    ]
    for out in bad_outs:
        with pytest.raises(VolumeError, match=r"out must be a writeable C-contiguous native uint16"):
            pixels.pack_slices(volume, ones, zeros, no, out)
    with pytest.raises(VolumeError, match=r"out has shape \(1, 3, 4\), the voxels \(2, 3, 4\)"):
        pixels.pack_slices(volume, ones, zeros, no, np.empty((1, 3, 4), np.uint16))
    with pytest.raises(VolumeError, match=r"slopes has shape \(3,\), one entry per slice of 2"):
        pixels.pack_slices(volume, np.ones(3), zeros, no, np.empty((2, 3, 4), np.uint16))
    with pytest.raises(VolumeError, match=r"signed has shape \(\), one entry per slice of 2"):
        pixels.pack_slices(volume, ones, zeros, True, np.empty((2, 3, 4), np.uint16))


# --- backend choice -----------------------------------------------------------


def test_explicit_backend_wins_and_env_var_replaces_auto(monkeypatch):
    monkeypatch.setenv("DCMFORGE_BACKEND", "numba")
    assert pixels.select_backend(10) == "numba"
    assert pixels.select_backend(10, "numpy") == "numpy"
    monkeypatch.setenv("DCMFORGE_BACKEND", "numpy")
    assert pixels.select_backend(10**12) == "numpy"
    assert pixels.select_backend(10, "numba") == "numba"
    monkeypatch.setenv("DCMFORGE_BACKEND", "cuda")
    with pytest.raises(DcmforgeError, match=r"environment variable DCMFORGE_BACKEND: 'cuda' is not one of"):
        pixels.select_backend(10)
    with pytest.raises(DcmforgeError, match=r"backend: 'fast' is not one of numpy, numba, auto"):
        pixels.select_backend(10, "fast")


def test_auto_uses_numba_for_large_volumes_or_once_its_kernels_are_loaded(monkeypatch):
    monkeypatch.delenv("DCMFORGE_BACKEND", raising=False)
    monkeypatch.delitem(sys.modules, "dcmforge._numba_kernels", raising=False)
    assert pixels.select_backend(pixels.NUMBA_MIN_VOXELS - 1) == "numpy"
    assert pixels.select_backend(pixels.NUMBA_MIN_VOXELS) == "numba"
    monkeypatch.setitem(sys.modules, "dcmforge._numba_kernels", object())
    assert pixels.select_backend(10) == "numba"


def test_numba_is_imported_only_when_a_kernel_runs():
    script = textwrap.dedent(
        """
        import os, sys
        import numpy as np
        os.environ.pop("DCMFORGE_BACKEND", None)
        import dcmforge, dcmforge.pixels as pixels
        assert "numba" not in sys.modules, "import"
        volume = np.ones((2, 3, 3), np.float32)
        mins, maxs = pixels.slice_extrema(volume)
        scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, "PT")
        pixels.stored_extrema(mins, maxs, *scaling, volume.dtype)
        pixels.pack_slices(volume, *scaling, np.empty((2, 3, 3), np.uint16))
        assert "numba" not in sys.modules, "numpy backend"
        pixels.slice_extrema(volume, 0, "numba")
        assert "numba" in sys.modules, "numba backend"
        print("ok")
        """
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(pixels.__file__)))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _round_up_slope_by_decimal(slope):
    """The reference: Decimal's exact value quantized up to SLOPE_DIGITS significant digits."""
    from decimal import ROUND_CEILING, Decimal

    exact = Decimal(slope)
    step = Decimal(1).scaleb(exact.adjusted() - pixels.SLOPE_DIGITS + 1)
    return float(exact.quantize(step, rounding=ROUND_CEILING))


@settings(max_examples=2000, deadline=None)
@given(st.one_of(
    st.floats(min_value=5e-324, max_value=1e300, allow_nan=False),
    st.integers(-300, 300).map(lambda e: 10.0**e),  # powers of ten and their neighbours: the exponent's edges
    st.integers(-300, 300).map(lambda e: np.nextafter(10.0**e, 0.0)),
    st.integers(-300, 300).map(lambda e: np.nextafter(10.0**e, np.inf)),
))  # fmt: skip
def test_slopes_round_up_as_decimal_rounds_them(slope):
    got = pixels._round_up_slope(np.float64(slope))
    assert got == _round_up_slope_by_decimal(float(slope))
    assert got >= slope
