"""NIfTI inputs: files written by nibabel, converted by dcmforge, read back by SimpleITK and dcm2niix.

The expected geometry is the file's own (sform, else qform) as nibabel reads it, turned
from RAS into LPS here; the expected values are nibabel's scaled voxels. check_series
(tests/test_series.py) compares both readers' affines within 1e-4 mm and every voxel
within half its slice's RescaleSlope, and runs dciodvfy/dcentvfy.
"""

import gzip
import json
import subprocess
import sys
import zlib

import numpy as np
import pydicom
import pytest
from fuzzing import read_image_or_our_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import RAS_TO_LPS
from test_series import PET_METADATA, check_series
from volumes import activity, oblique_affine

import dcmforge
from dcmforge.convert import CONVERTED, convert_one
from dcmforge.errors import DcmforgeError, GeometryError, NiftiError

nib = pytest.importorskip("nibabel")


def ras(lps):
    """An LPS affine as NIfTI stores it (RAS); the same matrix turns it back."""
    return RAS_TO_LPS @ lps


def nifti(path, volume_zyx, affine_ras, *, kind=nib.Nifti1Image, qform=None, sform_code=1, qform_code=0,
          dtype=None, units=("mm", "sec"), frame_step=None):
    """Write volume [z, y, x] (or [t, z, y, x]) as nibabel's [x, y, z(, t)] with the given header."""
    data = np.asarray(volume_zyx).T
    image = kind(data, None)
    image.header.set_sform(affine_ras, code=sform_code)
    image.header.set_qform(affine_ras if qform is None else qform, code=qform_code)
    image.header.set_xyzt_units(*units)
    if frame_step is not None:
        zooms = list(image.header.get_zooms())
        zooms[3] = frame_step
        image.header.set_zooms(zooms)
    if dtype is not None:
        image.set_data_dtype(dtype)
    nib.save(image, str(path))
    return path


def meta_file(folder):
    path = folder / "meta.json"
    path.write_text(json.dumps(PET_METADATA))
    return path


def convert(path, tmp_path, **options):
    out = tmp_path / "series"
    result = convert_one(path, out, {"meta": str(meta_file(tmp_path)), **options})
    assert result.status == CONVERTED, result.message
    return sorted(out.glob("*.dcm")), result


def expected_values(path):
    """What nibabel says the file holds (scaled), as [z, y, x] or [t, z, y, x]."""
    return np.asarray(nib.load(str(path)).dataobj, dtype=np.float64).T


# -- geometry, read back by SimpleITK and dcm2niix ------------------------------------------------


def test_oblique_sform_wins_over_a_different_qform(tmp_path):
    lps = oblique_affine()
    other = np.diag([5.0, 5.0, 5.0, 1.0])
    path = nifti(tmp_path / "oblique.nii", activity((5, 6, 7)), ras(lps), qform=other, sform_code=2, qform_code=1)
    paths, result = convert(path, tmp_path)
    assert "sform (code 2)" in result.message
    check_series(paths, expected_values(path), lps, tmp_path, dtype=np.float32)


def test_qform_only(tmp_path):
    lps = oblique_affine(spacing=(1.5, 2.5, 3.0), degrees=20.0)
    path = nifti(tmp_path / "qform.nii.gz", activity((4, 5, 6)), np.eye(4), qform=ras(lps), sform_code=0, qform_code=1)
    stored = nib.load(str(path)).header.get_qform()  # float32 quaternion: the file's own affine
    np.testing.assert_allclose(stored, ras(lps), atol=1e-4)
    paths, result = convert(path, tmp_path)
    assert "qform (code 1)" in result.message
    check_series(paths, expected_values(path), ras(stored), tmp_path, dtype=np.float32)


@pytest.mark.parametrize("storage", ["RAS", "LAS"])
def test_ras_and_las_storage(tmp_path, storage):
    flip_x = -1.0 if storage == "LAS" else 1.0
    affine = np.array([[2.0 * flip_x, 0, 0, -40.0], [0, 2.5, 0, -30.0], [0, 0, 3.0, 12.0], [0, 0, 0, 1]])
    path = nifti(tmp_path / f"{storage}.nii", activity((3, 4, 5), seed=3), affine)
    paths, _ = convert(path, tmp_path)
    lps = ras(affine)
    # LPS x of a RAS-stored file steps towards the patient's right, of an LAS-stored file towards the left.
    assert np.sign(lps[0, 0]) == (-1 if storage == "RAS" else 1)
    check_series(paths, expected_values(path), lps, tmp_path, dtype=np.float32)


def test_dynamic_4d_frames_from_pixdim4(tmp_path):
    volume = activity((3, 4, 5, 6), seed=4)
    lps = oblique_affine(degrees=10.0)
    path = nifti(tmp_path / "dyn.nii", volume, ras(lps), units=("mm", "msec"), frame_step=30000.0)
    paths, _ = convert(path, tmp_path)
    check_series(paths, expected_values(path), lps, tmp_path, dtype=np.float32)
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    assert {d.ActualFrameDuration for d in datasets} == {30000}  # ms: 30000 ms in the file, 30 s per frame
    references = sorted({float(d.FrameReferenceTime) for d in datasets})  # decay-weighted frame middles
    assert references[0] == pytest.approx(15000, abs=10) and references[1] - references[0] == pytest.approx(30000, abs=1)
    assert {d.NumberOfTimeSlices for d in datasets} == {3} and datasets[0].SeriesType[0] == "DYNAMIC"


def test_frame_times_in_the_metadata_file_replace_pixdim4(tmp_path):
    path = nifti(tmp_path / "dyn.nii", activity((2, 2, 3, 3)), np.eye(4), frame_step=10.0)
    meta = tmp_path / "frames.json"
    meta.write_text(json.dumps({**PET_METADATA, "frame_start": [0, 100], "frame_duration": [100, 200]}))
    out = tmp_path / "series"
    result = convert_one(path, out, {"meta": str(meta)})
    assert result.status == CONVERTED, result.message
    durations = {pydicom.dcmread(p, stop_before_pixels=True).ActualFrameDuration for p in out.glob("*.dcm")}
    assert durations == {100000, 200000}


def test_scaled_int16_is_stored_with_its_slope(tmp_path):
    values = activity((4, 5, 6), seed=5) - 200.0  # negative values too: nibabel picks slope and intercept
    path = nifti(tmp_path / "scaled.nii", values, np.diag([2.0, 2.0, 2.0, 1.0]), dtype=np.int16)
    proxy = nib.load(str(path)).dataobj
    assert proxy.slope != 1.0 and proxy.inter != 0.0  # really scaled
    image = dcmforge.read_nifti(path)
    assert isinstance(image.volume.frames[0], np.memmap)  # uncompressed: still memory-mapped under the scaling
    paths, _ = convert(path, tmp_path)
    check_series(paths, expected_values(path), ras(np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path, dtype=np.float32)


def test_the_command_converts_a_nifti_file(tmp_path):
    lps = oblique_affine(degrees=45.0)
    path = nifti(tmp_path / "scan.nii.gz", activity((3, 4, 5), seed=6), ras(lps))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "dcmforge.cli", "convert", str(path), "--out", str(out), "--meta", str(meta_file(tmp_path))],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "sform (code 1), RAS turned into LPS" in done.stdout
    check_series(sorted((out / "scan").glob("*.dcm")), expected_values(path), lps, tmp_path, dtype=np.float32)


# -- the header's other fields ------------------------------------------------------------------


@pytest.mark.parametrize("unit, factor", [("mm", 1.0), ("meter", 1000.0), ("micron", 0.001)])
def test_spatial_units_become_mm(tmp_path, unit, factor):
    affine = np.diag([0.002, 0.003, 0.004, 1.0]) / factor * 1000
    affine[3, 3] = 1.0
    path = nifti(tmp_path / "u.nii", activity((2, 3, 4)), affine, units=(unit, "sec"))
    image = dcmforge.read_nifti(path)
    np.testing.assert_allclose(image.spacing, (2.0, 3.0, 4.0), rtol=1e-6)


def test_two_pair_and_nifti2_files_read_alike(tmp_path):
    volume, affine = activity((2, 3, 4)), ras(oblique_affine())
    single = dcmforge.read_image(nifti(tmp_path / "one.nii", volume, affine))
    pair = dcmforge.read_image(nifti(tmp_path / "pair.hdr", volume, affine, kind=nib.Nifti1Pair))
    two = dcmforge.read_image(nifti(tmp_path / "two.nii", volume, affine, kind=nib.Nifti2Image))
    assert (pair.data_path.name, pair.format, two.dialect) == ("pair.img", "NIfTI", "NIfTI-2")
    for image in (pair, two):
        np.testing.assert_allclose(image.affine, single.affine, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(image.volume), volume)


def test_no_geometry_is_refused_unless_the_options_place_it(tmp_path):
    path = nifti(tmp_path / "bare.nii", activity((2, 3, 4)), np.diag([2.0, 3.0, 4.0, 1.0]), sform_code=0)
    with pytest.raises(NiftiError, match="neither sform_code nor qform_code.*--first-voxel"):
        dcmforge.read_nifti(path)
    image = dcmforge.read_image(path, first_voxel=(1.0, 2.0, 3.0))
    np.testing.assert_allclose(image.affine, [[-2, 0, 0, 1], [0, -3, 0, 2], [0, 0, 4, 3], [0, 0, 0, 1]])
    image = dcmforge.read_image(path, first_voxel=(0, 0, 0), spacing=(1.0, 1.0, 5.0))
    assert image.spacing == (1.0, 1.0, 5.0) and any("method 1" in w for w in image.warnings)


def test_a_sheared_sform_is_refused(tmp_path):
    sheared = np.array([[2.0, 0, 0.5, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])
    path = nifti(tmp_path / "shear.nii", activity((2, 3, 4)), sheared)
    with pytest.raises(GeometryError, match="sheared"):
        dcmforge.read_nifti(path)


def test_descrip_and_intent_are_notes(tmp_path):
    path = nifti(tmp_path / "d.nii", activity((2, 3, 4)), np.eye(4))
    image = nib.load(str(path))
    image.header["descrip"] = b"SUV bw, Bq/ml x 1000"
    image.header.set_intent("estimate", name="denoised")
    nib.save(image, str(path))
    read = dcmforge.read_nifti(path)
    assert any("descrip := 'SUV bw, Bq/ml x 1000'" in w and "not used for quantitation" in w for w in read.warnings)
    assert any("intent 1001 'denoised'" in w for w in read.warnings)
    assert "Units" not in read.metadata


def test_options_of_other_formats_are_refused(tmp_path):
    path = nifti(tmp_path / "x.nii", activity((2, 3, 4)), np.eye(4))
    with pytest.raises(DcmforgeError, match="--dialect cannot be used with NIfTI input"):
        dcmforge.read_image(path, dialect="stir")


def test_import_dcmforge_does_not_import_nibabel():
    code = "import sys, dcmforge, dcmforge.readers.choose; dcmforge.read_nifti; print('nibabel' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_an_uncompressed_file_is_read_without_gzip(tmp_path):
    """gzip, zlib and the inflate bounds load for a .nii.gz only: a one-file convert of a .nii does not pay for them."""
    path = nifti(tmp_path / "x.nii", activity((2, 3, 4)), np.eye(4))
    code = (f"import sys, dcmforge; dcmforge.read_image({str(path)!r}); "
            "print(sorted(m for m in sys.modules if m in ('gzip', 'zlib', 'dcmforge.readers.inflate')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_convert_reads_nifti_without_nibabel(tmp_path):
    """The runtime reads NIfTI with numpy alone: importing nibabel costs more than a small conversion."""
    path = nifti(tmp_path / "x.nii.gz", activity((2, 3, 4)), ras(oblique_affine()))
    code = (
        "import sys; sys.modules['nibabel'] = None\n"  # what an environment without nibabel gives
        "from dcmforge.convert import convert_one\n"
        f"result = convert_one({str(path)!r}, {str(tmp_path / 'out')!r}, {{'meta': {str(meta_file(tmp_path))!r}}})\n"
        "print(result.status)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == CONVERTED, done.stderr


# -- nibabel, the reference reader, as the oracle ---------------------------------------------------

ROTATIONS = st.tuples(*[st.floats(-180, 180)] * 3)


def _rotation(degrees):
    a, b, c = np.radians(degrees)
    about_x = [[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]
    about_y = [[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]]
    about_z = [[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]]
    return np.array(about_z) @ np.array(about_y) @ np.array(about_x)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from([nib.Nifti1Image, nib.Nifti2Image, nib.Nifti1Pair]),
    big_endian=st.booleans(),
    degrees=ROTATIONS,
    steps=st.tuples(*[st.floats(0.1, 8.0)] * 3),
    flip=st.sampled_from([1.0, -1.0]),  # a left-handed index space: qfac -1 in the qform
    origin=st.tuples(*[st.floats(-300, 300)] * 3),
    use_sform=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64, np.int16, np.uint8, np.int32, np.uint16]),
    slope=st.sampled_from([0.0, 1.0, 2.5, -0.5]),
    inter=st.sampled_from([0.0, 10.0]),
    units=st.sampled_from([("mm", "sec"), ("meter", "msec"), ("micron", "usec"), ("unknown", "unknown")]),
    frames=st.integers(1, 3),
    toffset=st.floats(0, 100),
    gz=st.booleans(),
)
def test_values_geometry_and_frames_are_nibabels(tmp_path, kind, big_endian, degrees, steps, flip, origin, use_sform,
                                                 dtype, slope, inter, units, frames, toffset, gz):
    ras_affine = np.eye(4)
    ras_affine[:3, :3] = _rotation(degrees) @ np.diag([steps[0], steps[1], steps[2] * flip])
    ras_affine[:3, 3] = origin
    pair = kind is nib.Nifti1Pair
    header = kind.header_class(endianness=">" if big_endian else "<")
    data = (np.random.default_rng(1).random((4, 3, 2, frames)) * 100).astype(dtype)
    header.set_data_shape(data.shape if frames > 1 else data.shape[:3])
    header.set_data_dtype(dtype)
    header.set_sform(ras_affine, code=1 if use_sform else 0)
    header.set_qform(ras_affine, code=0 if use_sform else 2)
    header.set_xyzt_units(*units)
    header["pixdim"][4] = 2.0
    header["toffset"] = toffset
    header["scl_slope"], header["scl_inter"] = slope, inter  # written as they are: no writer's own scaling
    offset = 0 if pair else header.sizeof_hdr + 4  # a single file: the header, four bytes of no extension, voxels
    header.set_data_offset(offset)
    voxels = bytes(offset - header.sizeof_hdr if offset else 0) + data.astype(header.get_data_dtype()).tobytes("F")
    opener = gzip.open if gz else open
    path = tmp_path / ("f" + (".hdr" if pair else ".nii") + (".gz" if gz else ""))
    with opener(path, "wb") as file:
        header.write_to(file)
        if not pair:
            file.write(voxels)
    if pair:
        with opener(tmp_path / ("f.img" + (".gz" if gz else "")), "wb") as file:
            file.write(voxels)

    oracle = nib.load(str(path))
    ours = dcmforge.read_nifti(path)
    to_mm = {"meter": 1000.0, "micron": 1e-3}.get(units[0], 1.0)
    expected = oracle.affine.copy()
    expected[:3] *= to_mm
    np.testing.assert_allclose(ours.affine, RAS_TO_LPS @ expected, rtol=1e-6, atol=1e-4)
    # the same values, to the float32 rounding of scaling float32 voxels (LazyVolume keeps their type)
    np.testing.assert_allclose(np.asarray(ours.volume, dtype=np.float64), expected_values(path), rtol=2e-7, atol=0)
    assert ours.dialect == ("NIfTI-2" if kind is nib.Nifti2Image else "NIfTI-1")
    if frames > 1 and units[1] != "unknown":
        to_s = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}[units[1]]
        zooms = oracle.header.get_zooms()
        assert ours.metadata["frame_duration"] == pytest.approx([zooms[3] * to_s] * frames)
        assert ours.metadata["frame_start"][0] == pytest.approx(float(oracle.header["toffset"]) * to_s)


# -- fuzzing: an image or our own error --------------------------------------------------------------


def _valid_bytes(kind):
    image = kind(activity((2, 3, 4)).T, ras(oblique_affine()))
    image.header.set_xyzt_units("mm", "sec")
    return image.to_bytes()


VALID = {"n1": _valid_bytes(nib.Nifti1Image), "n2": _valid_bytes(nib.Nifti2Image)}


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(sorted(VALID)),
    edits=st.lists(st.tuples(st.integers(0, 560), st.binary(min_size=1, max_size=8)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 700)),
    gzip=st.booleans(),
)
def test_fuzzed_headers_give_an_image_or_our_error(tmp_path, kind, edits, cut, gzip):
    data = bytearray(VALID[kind])
    for offset, chunk in edits:
        data[offset : offset + len(chunk)] = chunk
    if cut is not None:
        data = data[:cut]
    path = tmp_path / ("f.nii.gz" if gzip else "f.nii")
    path.write_bytes(zlib.compress(bytes(data), wbits=31) if gzip else bytes(data))
    read_image_or_our_error(path)
