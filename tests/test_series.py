"""write_series and SeriesWriter, proved with independent readers: SimpleITK, dcm2niix, pydicom, dicom3tools.

Every written series is read back by ITK's GDCM series reader and by dcm2niix (its
NIfTI read by tests/oracles.py): origin, spacing and direction must equal the input
within GEOMETRY_TOLERANCE mm, and every voxel must come back within half its slice's
RescaleSlope. pydicom reads every file; dciodvfy and dcentvfy report no error and no warning.
"""

import datetime
import json
import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_tools import dcentvfy, dciodvfy
from oracles import (
    RAS_TO_LPS,
    affine_from_spacing,
    geometry_error,
    matched_to,
    read_with_dcm2niix,
    read_with_pydicom,
    read_with_simpleitk,
    rescaled,
    allowed_value_error,
)
from volumes import activity, oblique_affine

from dcmforge import SeriesWriter, pixels, write_series
from dcmforge.dicom.part10 import file_meta
from dcmforge.write import plan as plan_module, series as series_module
from dcmforge.write.commit import SeriesFolder
from dcmforge.errors import DcmforgeError, GeometryError, MetadataError, OutputExistsError, VolumeError

GEOMETRY_TOLERANCE = 1e-4  # mm
F18_HALF_LIFE = 6586.2  # s (109.77 min)
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

# Fixed times (creation included) so that seeded runs are byte-for-byte reproducible.
PET_METADATA = {
    "isotope": "F-18",
    "acquisition_datetime": "2025-01-31T10:45:00",
    "PatientID": "PHANTOM-1",
    "InstanceCreationDate": "20250131",
    "InstanceCreationTime": "120000",
}
CT_METADATA = {key: value for key, value in PET_METADATA.items() if key != "isotope"}


def rng(seed=0):
    return np.random.default_rng(seed)


# -- the oracle check, shared by every well-formed case ---------------------------------------


def stacks_of(volume):
    """The volume's 3-D stacks: itself, or each frame of a [t, z, y, x] volume."""
    return [volume] if volume.ndim == 3 else list(volume)


def check_series(paths, volume, affine, work_dir, *, all_files_to_dciodvfy=False, dtype=None):
    """Everything an independent reader can say about a written series; returns the largest geometry error.

    dtype: the voxel type the series was packed from (the packing contract's bound depends on it), by default
    the volume's own."""
    dtype = np.asarray(volume).dtype if dtype is None else np.dtype(dtype)
    volume = np.asarray(volume, dtype=np.float64)
    stacks = stacks_of(volume)
    slices = volume.shape[-3]
    assert len(paths) == volume.size // (volume.shape[-1] * volume.shape[-2])
    assert all(path.parent == paths[0].parent for path in paths)

    # pydicom: every file, its UIDs, its place in the series, its pixels.
    datasets = read_with_pydicom(paths)
    sop_uids = [ds.SOPInstanceUID for ds in datasets]
    assert len(set(sop_uids)) == len(paths)
    assert [ds.file_meta.MediaStorageSOPInstanceUID for ds in datasets] == sop_uids
    for keyword in ("SeriesInstanceUID", "FrameOfReferenceUID", "StudyInstanceUID", "SOPClassUID"):
        assert len({ds[keyword].value for ds in datasets}) == 1, keyword
    assert [ds.InstanceNumber for ds in datasets] == list(range(1, len(paths) + 1))
    slopes = np.array([float(ds.RescaleSlope) for ds in datasets]).reshape(len(stacks), slices)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    for n, ds in enumerate(datasets):
        frame, k = divmod(n, slices)
        expected = stacks[frame][k]
        assert (ds.Rows, ds.Columns) == expected.shape
        np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [spacing[1], spacing[0]], atol=1e-6)
        np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient],
                                   np.concatenate([affine[:3, 0] / spacing[0], affine[:3, 1] / spacing[1]]), atol=1e-6)
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], affine[:3, 3] + k * affine[:3, 2],
                                   atol=GEOMETRY_TOLERANCE)
        stored = ds.pixel_array
        signed = ds.PixelRepresentation == 1
        assert stored.dtype == (np.int16 if signed else np.uint16)
        for keyword, value in (("SmallestImagePixelValue", stored.min()), ("LargestImagePixelValue", stored.max())):
            assert ds[keyword].VR == ("SS" if signed else "US"), (keyword, n)
            assert ds[keyword].value == value, (keyword, n)
        excess = (np.abs(rescaled(ds) - expected) - allowed_value_error(slopes[frame, k], expected, dtype)).max()
        assert excess <= 0, f"file {n}: a voxel is off by {excess} more than allowed, slope {slopes[frame, k]}"

    worst = 0.0
    # SimpleITK, one stack at a time (a dynamic series repeats its positions per frame).
    for frame, stack in enumerate(stacks):
        image = read_with_simpleitk(paths[frame * slices : (frame + 1) * slices])
        assert not np.isnan(image.affine).any() or volume.shape[-2] == 1  # see read_with_simpleitk
        worst = max(worst, _compare(matched_to(image, affine), stack, affine, slopes[frame], f"ITK frame {frame}"))
    # dcm2niix, the whole series at once (it passes over images one pixel wide: "No valid DICOM images").
    if min(volume.shape[-2:]) > 1:
        image = read_with_dcm2niix(paths[0].parent, work_dir / "nifti")
        assert image.array.shape == volume.shape
        worst = max(worst, _compare(matched_to(image, affine), volume, affine, slopes, "dcm2niix"))

    # dicom3tools: the IOD per file, consistency across the series.
    checked = paths if all_files_to_dciodvfy or len(paths) <= 4 else [paths[0], paths[len(paths) // 2], paths[-1]]
    for path in checked:
        report = dciodvfy(path)
        assert report.errors == [] and report.warnings == [], report.output
    report = dcentvfy(paths)
    assert report.errors == [] and report.warnings == [], report.output
    return worst


def _compare(image, expected, affine, slopes, reader):
    error = geometry_error(image, affine)
    assert error <= GEOMETRY_TOLERANCE, f"{reader}: geometry off by {error} mm\n{image.affine}\n{affine}"
    assert image.array.shape == expected.shape, reader
    # Half a slope per slice; a relative 1e-6 for readers that hand back float32 (dcm2niix).
    tolerance = 0.5 * np.asarray(slopes)[..., None, None] * (1 + 1e-9) + 1e-6 * np.abs(expected)
    excess = np.abs(image.array - expected) - tolerance
    assert excess.max() <= 0, f"{reader}: a voxel is off by more than half a slope (worst excess {excess.max()})"
    return error


def write_and_check(volume, tmp_path, *, expected_affine=None, **kwargs):
    """write_series into tmp_path/"series", then check_series; returns (paths, pydicom datasets)."""
    kwargs.setdefault("metadata", PET_METADATA if kwargs.get("modality", "PT") == "PT" else CT_METADATA)
    if expected_affine is None:
        expected_affine = _expected(kwargs)
    paths = write_series(volume, tmp_path / "series", **kwargs)
    check_series(paths, volume, expected_affine, tmp_path)
    return paths, read_with_pydicom(paths)


def _expected(kwargs):
    if kwargs.get("affine") is not None:
        affine = np.asarray(kwargs["affine"], float)
        return RAS_TO_LPS @ affine if kwargs.get("affine_convention") == "RAS" else affine
    return affine_from_spacing(kwargs["spacing"], kwargs.get("origin", (0, 0, 0)),
                               kwargs.get("orientation", (1, 0, 0, 0, 1, 0)))


def test_the_nifti_reader_agrees_with_simpleitk(tmp_path):
    """The oracle's own NIfTI-1 reader, checked against ITK's on what dcm2niix wrote (oblique, per-slice slopes)."""
    volume = activity((3, 4, 5))
    write_series(volume, tmp_path / "series", axes="zyx", affine=oblique_affine(), affine_convention="LPS", metadata=PET_METADATA)
    ours = read_with_dcm2niix(tmp_path / "series", tmp_path / "nifti")
    (nii,) = (tmp_path / "nifti").glob("*.nii")
    itk = sitk.ReadImage(str(nii), sitk.sitkFloat64)
    itk_affine = np.eye(4)
    itk_affine[:3, :3] = np.asarray(itk.GetDirection()).reshape(3, 3) * itk.GetSpacing()
    itk_affine[:3, 3] = itk.GetOrigin()
    np.testing.assert_allclose(ours.affine, itk_affine, atol=1e-5)
    np.testing.assert_array_equal(ours.array, sitk.GetArrayFromImage(itk))


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 7, 5), (4, 5, 7), (2, 1, 3), (3, 3, 1), (5, 2, 2)], ids=str)
def test_odd_and_non_square_shapes_read_back(tmp_path, shape):
    volume = activity(shape, seed=sum(shape))
    _, datasets = write_and_check(volume, tmp_path, spacing=(2.0, 3.0, 4.0), origin=(-10.5, 20.25, -30.0))
    assert all((ds.Rows, ds.Columns) == shape[1:] for ds in datasets)
    assert {ds.NumberOfSlices for ds in datasets} == {shape[0]}


def test_a_single_slice(tmp_path):
    volume = activity((1, 6, 4))
    paths, datasets = write_and_check(volume, tmp_path, spacing=(2.0, 3.0, 4.5), origin=(1, 2, 3))
    assert len(paths) == 1
    assert float(datasets[0].SliceThickness) == 4.5
    # With one slice there is no step between slices: dcm2niix takes SliceThickness, ITK the normal.
    nifti = read_with_dcm2niix(paths[0].parent, tmp_path / "single")
    np.testing.assert_allclose(nifti.affine[:3, 2], [0, 0, 4.5], atol=1e-5)
    itk = read_with_simpleitk(paths)
    np.testing.assert_allclose(itk.affine[:3, 2] / np.linalg.norm(itk.affine[:3, 2]), [0, 0, 1], atol=1e-9)


# -- values ----------------------------------------------------------------------------------


def test_negative_values_are_stored_signed(tmp_path):
    volume = (rng(1).standard_normal((3, 5, 6)) * 50).astype(np.float32)
    volume[1] = np.abs(volume[1])  # one slice without negatives: signed too, one PixelRepresentation per series
    _, datasets = write_and_check(volume, tmp_path, spacing=(1, 1, 1))
    assert [ds.PixelRepresentation for ds in datasets] == [1, 1, 1]
    for ds, k in zip(datasets, range(3)):
        assert ds["SmallestImagePixelValue"].VR == ds["LargestImagePixelValue"].VR == "SS"
        assert (ds.SmallestImagePixelValue < 0) == (k != 1)
        # The most negative voxel (or the largest magnitude) uses the full signed range.
        assert max(-ds.SmallestImagePixelValue, ds.LargestImagePixelValue) == 32767
        exact = np.abs(volume[k]).max() / 32767
        assert exact <= float(ds.RescaleSlope) <= exact * (1 + 1e-9)  # 10 digits, rounded up


def test_all_zero_slices(tmp_path):
    volume = activity((4, 3, 5))
    volume[0] = 0
    volume[2] = 0
    _, datasets = write_and_check(volume, tmp_path, spacing=(1, 2, 3))
    for k in (0, 2):
        ds = datasets[k]
        assert not ds.pixel_array.any()
        assert (ds.SmallestImagePixelValue, ds.LargestImagePixelValue) == (0, 0)
        assert float(ds.RescaleSlope) > 0  # a slope of 0 would be meaningless to readers


def test_a_volume_of_zeros(tmp_path):
    write_and_check(np.zeros((2, 3, 3), np.float64), tmp_path, spacing=(1, 1, 1))


def _memmap(tmp_path, volume):
    path = tmp_path / "voxels.raw"
    written = np.memmap(path, dtype=volume.dtype, mode="w+", shape=volume.shape)
    written[:] = volume
    written.flush()
    del written
    return np.memmap(path, dtype=volume.dtype, mode="r", shape=volume.shape)


LAYOUTS = {
    "big-endian float32": lambda v, tmp: v.astype(">f4"),
    "big-endian float64": lambda v, tmp: v.astype(">f8"),
    "Fortran order": lambda v, tmp: np.asfortranarray(v),
    "strided view": lambda v, tmp: np.repeat(v, 2, axis=2)[:, :, ::2],
    "memmap": lambda v, tmp: _memmap(tmp, v),
    "big-endian memmap": lambda v, tmp: _memmap(tmp, v.astype(">f4")),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_any_memory_layout_gives_the_same_files(tmp_path, layout):
    volume = (rng(2).standard_normal((3, 5, 4)) * 100).astype(np.float32)
    given = LAYOUTS[layout](volume, tmp_path)
    assert np.array_equal(given, volume)
    paths, _ = write_and_check(given, tmp_path, spacing=(2, 2, 3), seed="layout")
    reference = write_series(volume, tmp_path / "reference", spacing=(2, 2, 3), metadata=PET_METADATA, seed="layout")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in reference]


@pytest.mark.parametrize(
    "dtype, low, high, signed",
    [("int16", -1000, 3000, 1), ("uint16", 0, 65535, 0), ("int32", -32768, 32767, 1), ("uint8", 0, 255, 0),
     ("int64", 0, 65535, 0)],
)
def test_integer_input_that_fits_is_stored_as_is(tmp_path, dtype, low, high, signed):
    volume = rng(3).integers(low, high, (3, 4, 5), endpoint=True).astype(dtype)
    volume[0, 0, 0], volume[-1, -1, -1] = low, high
    volume[1] = max(low, 0) + 7  # a slice of one value: still slope 1 (no per-slice jump)
    _, datasets = write_and_check(volume, tmp_path, spacing=(1, 1, 1))
    for k, ds in enumerate(datasets):
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.PixelRepresentation) == (1.0, 0.0, signed)
        assert np.array_equal(ds.pixel_array, volume[k])


@pytest.mark.parametrize("low, high", [(0, 100_000), (-40_000, 40_000), (-5, 65535)])
def test_integer_input_that_does_not_fit_is_scaled(tmp_path, low, high):
    volume = rng(4).integers(low, high, (3, 4, 5), endpoint=True).astype(np.int32)
    volume[0, 0, 0], volume[2, 3, 4] = low, high
    _, datasets = write_and_check(volume, tmp_path, spacing=(1, 1, 1))
    assert any(float(ds.RescaleSlope) != 1.0 for ds in datasets)
    assert datasets[0].PixelRepresentation == (1 if low < 0 else 0)


# -- geometry ------------------------------------------------------------------------------


def test_oblique_geometry_reads_back(tmp_path):
    affine = oblique_affine()
    write_and_check(activity((4, 5, 6)), tmp_path, axes="zyx", affine=affine, affine_convention="LPS")


def test_ras_and_lps_affines_give_the_same_files(tmp_path):
    lps = oblique_affine(spacing=(1.5, 2.5, 3.0), origin=(12.0, -40.0, 7.5))
    volume = activity((3, 4, 5))
    from_lps, _ = write_and_check(volume, tmp_path, axes="zyx", affine=lps, affine_convention="LPS", seed=11)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    from_ras = write_series(volume, tmp_path / "ras", axes="zyx", affine=ras, affine_convention="RAS",
                            metadata=PET_METADATA, seed=11)
    assert [p.read_bytes() for p in from_ras] == [p.read_bytes() for p in from_lps]


def test_spacing_form_and_its_affine_give_the_same_files(tmp_path):
    volume = activity((3, 4, 5))
    orientation = (0, 1, 0, 0, 0, -1)  # sagittal
    kwargs = dict(metadata=PET_METADATA, seed=3)
    by_spacing = write_series(volume, tmp_path / "a", spacing=(2, 3, 4), origin=(5, 6, 7),
                              orientation=orientation, **kwargs)
    affine = affine_from_spacing((2, 3, 4), (5, 6, 7), orientation)
    by_affine = write_series(volume, tmp_path / "b", axes="zyx", affine=affine, affine_convention="LPS", **kwargs)
    assert [p.read_bytes() for p in by_spacing] == [p.read_bytes() for p in by_affine]
    check_series(by_spacing, volume, affine, tmp_path)


@pytest.mark.parametrize("orientation", [(-1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, -1, 0), (1, 0, 0, 0, -1, 0)], ids=str)
def test_feet_first_and_prone_orientations(tmp_path, orientation):
    _, datasets = write_and_check(activity((4, 3, 5)), tmp_path, spacing=(2, 3, 4), origin=(10, -20, 30),
                                  orientation=orientation)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    np.testing.assert_allclose(np.diff(positions, axis=0), np.tile(normal * 4, (3, 1)), atol=1e-9)
    # SliceLocation is the position along the normal: it grows by the slice spacing.
    np.testing.assert_allclose(np.diff([float(ds.SliceLocation) for ds in datasets]), 4, atol=1e-6)


@pytest.mark.parametrize("convention", ["LPS", "RAS"])
def test_slices_going_against_the_normal(tmp_path, convention):
    affine = np.diag([2.0, 3.0, -4.0, 1.0])
    affine[:3, 3] = (10, -20, 30)
    _, datasets = write_and_check(activity((5, 3, 4)), tmp_path, axes="zyx", affine=affine, affine_convention=convention)
    locations = [float(ds.SliceLocation) for ds in datasets]
    np.testing.assert_allclose(np.diff(locations), -4, atol=1e-6)  # file order is the volume's, not sorted
    assert float(datasets[0].SliceThickness) == 4.0


# -- modalities -------------------------------------------------------------------------------


def test_ct_hounsfield_units_round_trip(tmp_path):
    volume = rng(5).integers(-1024, 3000, (3, 5, 4), endpoint=True).astype(np.float32)
    volume[0, 0, 0], volume[1] = -1024, 0  # air, and a slice of water
    volume[2, 0, 0] = -2000  # below air: still fits the signed range
    _, datasets = write_and_check(volume, tmp_path, spacing=(0.5, 0.5, 1.25), modality="CT")
    for k, ds in enumerate(datasets):
        assert ds.SOPClassUID == CT_IMAGE_STORAGE and ds.Modality == "CT"
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.PixelRepresentation) == (1.0, -1024.0, 1)
        assert np.array_equal(rescaled(ds), volume[k])  # whole HU come back exactly
    assert [ds.SmallestImagePixelValue for ds in datasets] == [0, 1024, -976]  # air, water, -2000 HU
    assert datasets[1].LargestImagePixelValue == 1024


def test_ct_values_outside_the_signed_range_are_refused(tmp_path):
    volume = np.zeros((3, 2, 2), np.float32)
    volume[1, 0, 1] = 40000
    with pytest.raises(VolumeError, match="slice 1"):
        write_series(volume, tmp_path / "ct", spacing=(1, 1, 1), modality="CT", metadata=CT_METADATA)
    assert all_entries(tmp_path / "ct") == []


def test_pet_series_carries_the_pet_identity(tmp_path):
    _, datasets = write_and_check(activity((2, 3, 3)), tmp_path, spacing=(1, 1, 1))
    ds = datasets[0]
    assert ds.SOPClassUID == PET_IMAGE_STORAGE and ds.Modality == "PT"
    assert "NumberOfTimeSlices" not in ds
    assert ds.SeriesType[0] == "STATIC"
    assert ds.SeriesDate == "20250131" and ds.SeriesTime.startswith("104500")
    item = ds.RadiopharmaceuticalInformationSequence[0]
    assert float(item.RadionuclideHalfLife) == F18_HALF_LIFE


def test_dynamic_pet(tmp_path):
    starts, durations = [0.0, 60.0, 180.0], [60.0, 120.0, 300.0]
    frames, slices = len(starts), 4
    volume = activity((frames, slices, 5, 6), seed=9)
    volume[1] *= 0.25  # frames with different peaks: different slopes per frame
    metadata = {**PET_METADATA, "frame_start": starts, "frame_duration": durations, "corrections": ["decay"]}
    paths, datasets = write_and_check(volume, tmp_path, spacing=(2, 2, 3.27), origin=(-5, 5, -60), metadata=metadata)
    assert len(paths) == frames * slices
    acquisition = datetime.datetime(2025, 1, 31, 10, 45)
    decay_constant = math.log(2) / F18_HALF_LIFE
    for n, ds in enumerate(datasets):
        frame, k = divmod(n, slices)
        assert ds.NumberOfTimeSlices == frames and ds.NumberOfSlices == slices
        assert ds.SeriesType[0] == "DYNAMIC"
        assert ds.ImageIndex == frame * slices + k + 1 == ds.InstanceNumber  # PS3.3 C.8.9.4.1.9
        start, duration = starts[frame], durations[frame]
        assert ds.AcquisitionDate == "20250131"
        assert ds.AcquisitionTime == (acquisition + datetime.timedelta(seconds=start)).strftime("%H%M%S")
        assert float(ds.ActualFrameDuration) == duration * 1000
        # The reference time is when the activity equals the frame's average: decay-weighted, within the frame.
        average = (math.exp(-decay_constant * start) - math.exp(-decay_constant * (start + duration))) / (
            decay_constant * duration
        )
        reference = -math.log(average) / decay_constant
        assert start < reference < start + duration / 2
        assert math.isclose(float(ds.FrameReferenceTime), 1000 * reference, abs_tol=1e-3)
        # DecayFactor (DecayCorrection START): corrects the frame's average activity back to the series time.
        assert ds.DecayCorrection == "START"
        assert math.isclose(float(ds.DecayFactor), 1 / average, rel_tol=1e-9)
        assert math.isclose(float(ds.DecayFactor), math.exp(decay_constant * float(ds.FrameReferenceTime) / 1000),
                            rel_tol=1e-7)
    # Every frame repeats the slice positions.
    positions = [tuple(float(v) for v in ds.ImagePositionPatient) for ds in datasets]
    assert positions[:slices] * frames == positions


def test_back_to_back_frames_from_durations_alone(tmp_path):
    volume = activity((2, 2, 3, 3))
    metadata = {**PET_METADATA, "frame_duration": [30, 90]}
    paths = write_series(volume, tmp_path / "series", spacing=(1, 1, 1), metadata=metadata)
    datasets = read_with_pydicom(paths)
    assert [ds.AcquisitionTime for ds in datasets] == ["104500", "104500", "104530", "104530"]
    assert [float(ds.ActualFrameDuration) for ds in datasets] == [30000, 30000, 90000, 90000]


def test_frame_timings_must_match_the_frames(tmp_path):
    metadata = {**PET_METADATA, "frame_start": [0, 60], "frame_duration": [60, 60]}
    with pytest.raises(MetadataError, match="frame_start"):
        write_series(activity((3, 2, 2, 2)), tmp_path / "series", spacing=(1, 1, 1), metadata=metadata)
    assert not list((tmp_path / "series").glob("*"))


def test_only_pet_can_be_dynamic(tmp_path):
    with pytest.raises(VolumeError, match=r"\[t, z, y, x\]"):
        write_series(np.zeros((2, 2, 2, 2)), tmp_path / "ct", spacing=(1, 1, 1), modality="CT")


# -- UIDs ---------------------------------------------------------------------------------------


def uids_of(paths):
    datasets = read_with_pydicom(paths)
    series = [(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID) for ds in datasets]
    return series, [ds.SOPInstanceUID for ds in datasets]


def test_seeded_runs_repeat_their_uids_and_unseeded_runs_do_not(tmp_path):
    volume = activity((3, 2, 2))

    def run(name, seed):
        return uids_of(write_series(volume, tmp_path / name, spacing=(1, 1, 1), metadata=PET_METADATA, seed=seed))

    first, again, other_seed = run("a", 42), run("b", 42), run("c", 43)
    unseeded, unseeded_again = run("d", None), run("e", None)
    assert first == again
    for one, two in ((first, other_seed), (unseeded, unseeded_again), (first, unseeded)):
        assert set(one[0][0]).isdisjoint(two[0][0])  # study, series, frame of reference
        assert set(one[1]).isdisjoint(two[1])  # every SOP instance
    for series, sops in (first, unseeded):
        assert len(set(series)) == 1 and len(set(sops)) == len(sops) == 3
        assert len(set(series[0])) == 3  # study, series and frame of reference UIDs differ


def test_seeded_runs_give_identical_files(tmp_path):
    volume = activity((3, 4, 2))
    a = write_series(volume, tmp_path / "a", spacing=(1, 1, 1), metadata=PET_METADATA, seed="run-7")
    b = write_series(volume, tmp_path / "b", spacing=(1, 1, 1), metadata=PET_METADATA, seed="run-7")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_given_uids_are_kept(tmp_path):
    given = {"StudyInstanceUID": "1.2.3.4", "FrameOfReferenceUID": "1.2.3.5"}
    series, sops = uids_of(write_series(activity((2, 2, 2)), tmp_path / "s", spacing=(1, 1, 1),
                                        metadata={**PET_METADATA, **given}))
    assert {(study, frame) for study, _, frame in series} == {("1.2.3.4", "1.2.3.5")}


def test_one_seed_for_pet_and_ct_still_gives_distinct_series(tmp_path):
    volume = activity((2, 2, 2))
    pet, pet_sops = uids_of(write_series(volume, tmp_path / "pt", spacing=(1, 1, 1), metadata=PET_METADATA, seed=5))
    ct, ct_sops = uids_of(write_series(volume, tmp_path / "ct", spacing=(1, 1, 1), metadata=CT_METADATA,
                                       modality="CT", seed=5))
    assert pet[0][1] != ct[0][1]
    assert set(pet_sops).isdisjoint(ct_sops)


# -- bad input: an error, and nothing left behind ------------------------------------------------


def all_entries(folder):
    """Every name in folder, hidden temporaries included."""
    return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("slice_index", [0, 2, 4])
def test_non_finite_voxels_name_the_slice_and_write_nothing(tmp_path, bad, slice_index):
    volume = activity((5, 4, 3)).astype(np.float64)
    volume[slice_index, 2, 1] = bad
    with pytest.raises(VolumeError, match=rf"slice {slice_index} holds {bad} at row 2, column 1"):
        write_series(volume, tmp_path / "series", spacing=(1, 1, 1), metadata=PET_METADATA)
    assert all_entries(tmp_path) == []  # nor a private folder beside it


def test_non_finite_voxel_in_a_dynamic_volume_names_frame_and_slice(tmp_path):
    volume = activity((2, 4, 3, 3))
    volume[1, 1, 0, 0] = np.nan
    with pytest.raises(VolumeError, match=r"frame 1.*slice 1\b"):
        write_series(volume, tmp_path / "series", spacing=(1, 1, 1), metadata=PET_METADATA)


def test_non_finite_voxel_in_a_dynamic_volume_writes_nothing(tmp_path):
    volume = activity((2, 4, 3, 3))
    volume[1, 1, 0, 0] = np.nan
    with pytest.raises(VolumeError, match="holds nan"):
        write_series(volume, tmp_path / "series", spacing=(1, 1, 1), metadata=PET_METADATA)
    assert all_entries(tmp_path) == []  # nor a private folder beside it


def test_an_existing_series_is_not_overwritten_unless_asked(tmp_path):
    out = tmp_path / "series"
    paths = write_series(activity((3, 2, 2), seed=1), out, spacing=(1, 1, 1), metadata=PET_METADATA)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}
    with pytest.raises(OutputExistsError, match=rf"{out} exists; pass overwrite=True"):
        write_series(activity((3, 2, 2), seed=2), out, spacing=(1, 1, 1), metadata=PET_METADATA)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        SeriesWriter(out, (3, 2, 2), spacing=(1, 1, 1), metadata=PET_METADATA)
    assert all_entries(out) == sorted(before)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths} == before

    replaced = activity((3, 2, 2), seed=2)
    again = write_series(replaced, out, spacing=(1, 1, 1), metadata=PET_METADATA, overwrite=True)
    assert again == paths and all_entries(out) == sorted(before)
    assert all(p.read_bytes() != before[p.name][0] for p in paths)
    check_series(again, replaced, affine_from_spacing((1, 1, 1)), tmp_path)


def test_a_streaming_series_ended_early_is_removed(tmp_path):
    out = tmp_path / "series"
    volume = activity((4, 3, 2))
    with pytest.raises(VolumeError, match="ended after 2 of 4 images; its files were removed"):
        with SeriesWriter(out, volume.shape, spacing=(1, 1, 1), metadata=PET_METADATA) as series:
            series.write_slice(volume[0])
            series.write_slice(volume[1])
            assert not out.exists()  # the files are in a private folder until the series is whole
            (private,) = all_entries(tmp_path)
            assert private.startswith(".series.dcmforge-")
            assert all_entries(tmp_path / private) == [".dcmforge-writer.lock", "PT_0001.dcm", "PT_0002.dcm"]
    assert all_entries(tmp_path) == []  # nor a private folder beside it


def test_an_exception_in_the_block_removes_the_files_and_propagates(tmp_path):
    out = tmp_path / "series"
    volume = activity((4, 3, 2))

    class ReconstructionFailed(Exception):
        pass

    with pytest.raises(ReconstructionFailed):
        with SeriesWriter(out, volume.shape, spacing=(1, 1, 1), metadata=PET_METADATA) as series:
            series.write_slices(volume[:3])
            raise ReconstructionFailed
    assert all_entries(tmp_path) == []  # nor a private folder beside it


def test_a_bad_slice_while_streaming_removes_the_files(tmp_path):
    out = tmp_path / "series"
    volume = activity((4, 3, 2))
    volume[2, 1, 1] = np.nan
    with pytest.raises(VolumeError, match="slice 2 holds nan at row 1, column 1"):
        with SeriesWriter(out, volume.shape, spacing=(1, 1, 1), metadata=PET_METADATA) as series:
            for image in volume:
                series.write_slice(image)
    assert all_entries(tmp_path) == []  # nor a private folder beside it


@pytest.mark.parametrize(
    "feed, message",
    [
        (lambda s, v: s.write_slices(np.concatenate([v, v[:1]])), "the series has 4 images; 5 were given"),
        (lambda s, v: s.write_slice(v[0].T), r"expected slices of shape \(n, 3, 2\)"),
        (lambda s, v: s.write_slices(v[0]), r"3-d numpy array \[z, y, x\], got shape \(3, 2\)"),
    ],
    ids=["too many slices", "wrong slice shape", "2-D given as slices"],
)
def test_streaming_refuses_what_does_not_fit_the_series(tmp_path, feed, message):
    out = tmp_path / "series"
    volume = activity((4, 3, 2))
    with pytest.raises(VolumeError, match=message):
        with SeriesWriter(out, volume.shape, spacing=(1, 1, 1), metadata=PET_METADATA) as series:
            feed(series, volume)
    assert all_entries(tmp_path) == []  # nor a private folder beside it


SHEARED = np.array([[1.0, 0, 0.5, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


@pytest.mark.parametrize(
    "geometry, message",
    [
        (dict(axes="zyx", affine=SHEARED, affine_convention="LPS"), "sheared"),
        (dict(axes="zyx", affine=np.diag([1.0, 0, 1, 1]), affine_convention="RAS"), "zero spacing along axis y"),
        (dict(axes="zyx", affine=np.eye(4)), "convention"),
        (dict(axes="zyx", affine=np.eye(3), affine_convention="LPS"), "4x4"),
        (dict(spacing=(0, 1, 1)), "spacing must be positive"),
        (dict(spacing=(1, 1, -2)), "spacing must be positive"),
        (dict(spacing=(1, 1)), "spacing must be 3"),
        (dict(spacing=(1, 1, 1), orientation=(1, 0, 0, 1, 0, 0)), "not perpendicular"),
        (dict(spacing=(1, 1, 1), orientation=(2, 0, 0, 0, 1, 0)), "not a unit vector"),
        (dict(spacing=(1, 1, 1), origin=(0, np.nan, 0)), "origin"),
    ],
    ids=["sheared", "zero column", "no convention", "3x3", "zero spacing", "negative spacing", "two spacings",
         "parallel cosines", "long cosine", "NaN origin"],
)
def test_geometry_that_cannot_be_a_slice_stack_is_refused(tmp_path, geometry, message):
    out = tmp_path / "series"
    with pytest.raises(GeometryError, match=message):
        write_series(activity((2, 2, 2)), out, metadata=PET_METADATA, **geometry)
    assert all_entries(tmp_path) == []  # nor a private folder beside it


def test_no_geometry_at_all_is_refused(tmp_path):
    with pytest.raises(DcmforgeError, match="spacing"):
        write_series(activity((2, 2, 2)), tmp_path / "series", metadata=PET_METADATA)


@pytest.mark.parametrize(
    "metadata, keyword",
    [({"Modality": "CT"}, "Modality"), ({"modality": "CT"}, "modality"),
     ({"SOPClassUID": CT_IMAGE_STORAGE}, "SOPClassUID")],
)
def test_metadata_contradicting_the_image_is_an_error_naming_the_keyword(tmp_path, metadata, keyword):
    out = tmp_path / "series"
    with pytest.raises(MetadataError, match=keyword):
        write_series(activity((2, 3, 4)), out, spacing=(1, 2, 3), metadata={**PET_METADATA, **metadata})
    assert all_entries(tmp_path) == []  # nor a private folder beside it


@pytest.mark.parametrize(
    "metadata, keyword",
    [({"PixelSpacing": [3, 3]}, "PixelSpacing"), ({"Rows": 99}, "Rows"), ({"SliceThickness": 9}, "SliceThickness"),
     ({"ImageOrientationPatient": [0, 1, 0, 0, 0, -1]}, "ImageOrientationPatient"),
     ({"NumberOfSlices": 7}, "NumberOfSlices")],
)
def test_metadata_contradicting_the_geometry_is_not_used_and_named(tmp_path, caplog, metadata, keyword):
    # The image header (or the call's geometry) decides geometry; a metadata value for it is
    # reported by keyword and not written (the earlier J-PET files carry such values).
    with caplog.at_level("WARNING", logger="dcmforge"):
        paths = write_series(activity((2, 3, 4)), tmp_path / "series", spacing=(1, 2, 3),
                             metadata={**PET_METADATA, **metadata})
    assert any(keyword in message and "not used" in message for message in caplog.messages)
    first = read_with_pydicom(paths)[0]
    assert [float(v) for v in first.PixelSpacing] == [2.0, 1.0] and first.Rows == 3 and first.NumberOfSlices == 2


def test_metadata_agreeing_with_the_geometry_is_accepted(tmp_path):
    metadata = {**PET_METADATA, "PixelSpacing": [2, 1], "Rows": 3, "Columns": 4, "Modality": "PT"}
    paths = write_series(activity((2, 3, 4)), tmp_path / "series", spacing=(1, 2, 3), metadata=metadata)
    assert [float(v) for v in read_with_pydicom(paths)[0].PixelSpacing] == [2.0, 1.0]


@pytest.mark.parametrize("shape", [(0, 2, 2), (2, 0, 2), (2, 2), (1, 1, 1, 1, 1)], ids=str)
def test_shapes_that_are_not_volumes_are_refused(tmp_path, shape):
    with pytest.raises(VolumeError, match="shape"):
        write_series(np.zeros(shape, np.float32), tmp_path / "series", spacing=(1, 1, 1), metadata=PET_METADATA)


@pytest.mark.parametrize("dtype", ["float16", "complex64", "bool"])
def test_voxel_types_that_cannot_be_stored_are_refused(tmp_path, dtype):
    with pytest.raises(VolumeError, match=dtype):
        write_series(np.zeros((2, 2, 2), dtype), tmp_path / "series", spacing=(1, 1, 1), metadata=PET_METADATA)
    assert all_entries(tmp_path) == []  # nor a private folder beside it


# -- streaming equals the whole volume; backends equal each other ----------------------------


def test_streaming_slice_by_slice_equals_write_series(tmp_path):
    volume = (rng(6).standard_normal((5, 4, 3)) * 10).astype(np.float32)
    affine = oblique_affine()
    kwargs = dict(axes="zyx", affine=affine, affine_convention="LPS", metadata=PET_METADATA, seed="stream")
    whole = write_series(volume, tmp_path / "whole", **kwargs)
    with SeriesWriter(tmp_path / "streamed", volume.shape, **kwargs) as series:
        for image in volume:
            series.write_slice(image)
    assert series.paths == [tmp_path / "streamed" / p.name for p in whole]
    assert [p.read_bytes() for p in series.paths] == [p.read_bytes() for p in whole]
    check_series(series.paths, volume, affine, tmp_path)


def test_streaming_in_chunks_and_frames_equals_write_series(tmp_path):
    volume = activity((2, 4, 3, 3), seed=8)
    kwargs = dict(spacing=(2, 2, 2), metadata={**PET_METADATA, "frame_duration": [60, 60]}, seed="frames")
    whole = write_series(volume, tmp_path / "whole", **kwargs)
    with SeriesWriter(tmp_path / "frames", volume.shape, workers=1, **kwargs) as series:
        series.write_frame(volume[0])
        series.write_slices(volume[1, :3])
        series.write_slice(volume[1, 3])
    assert [p.read_bytes() for p in series.paths] == [p.read_bytes() for p in whole]


def pixel_bytes(paths):
    return [read_with_pydicom([p])[0].PixelData for p in paths]


BACKEND_INPUTS = {
    "float32 with negatives": lambda: (rng(7).standard_normal((3, 5, 4)) * 1e3).astype(np.float32),
    "float64 tiny and huge": lambda: np.stack([rng(7).random((5, 4)) * 1e-30, rng(8).random((5, 4)) * 1e30,
                                               np.zeros((5, 4))]),
    "big-endian Fortran": lambda: np.asfortranarray((rng(9).random((3, 5, 4)) * 7).astype(">f8")),
    "int16 as is": lambda: rng(10).integers(-500, 500, (3, 5, 4)).astype(np.int16),
    "int32 scaled": lambda: rng(11).integers(-10**6, 10**6, (3, 5, 4)).astype(np.int32),
    "uint64 scaled": lambda: rng(12).integers(0, 2**40, (3, 5, 4)).astype(np.uint64),
}


@pytest.mark.parametrize("name", BACKEND_INPUTS)
def test_numpy_and_numba_backends_write_identical_pixels(tmp_path, name):
    volume = BACKEND_INPUTS[name]()
    kwargs = dict(spacing=(1, 1, 1), metadata=PET_METADATA, seed="backends")
    by_numpy = write_series(volume, tmp_path / "numpy", backend="numpy", **kwargs)
    by_numba = write_series(volume, tmp_path / "numba", backend="numba", **kwargs)
    assert pixel_bytes(by_numpy) == pixel_bytes(by_numba)
    assert [p.read_bytes() for p in by_numpy] == [p.read_bytes() for p in by_numba]


def test_ct_backends_write_identical_pixels(tmp_path):
    volume = rng(13).uniform(-1024, 3000, (3, 5, 4))  # fractional HU: rounding must agree
    volume[0, 0, :] = [-1023.5, -1022.5, 0.5, 1.5]  # ties round to even in both
    kwargs = dict(spacing=(1, 1, 1), metadata=CT_METADATA, modality="CT", seed="ct")
    assert pixel_bytes(write_series(volume, tmp_path / "a", backend="numpy", **kwargs)) == pixel_bytes(
        write_series(volume, tmp_path / "b", backend="numba", **kwargs)
    )


def test_unknown_backend_is_refused(tmp_path):
    with pytest.raises(DcmforgeError, match="'gpu' is not one of numpy, numba, auto"):
        write_series(activity((2, 2, 2)), tmp_path / "s", spacing=(1, 1, 1), metadata=PET_METADATA, backend="gpu")


# -- chunks, workers, failures while writing ---------------------------------------------------


@pytest.fixture
def two_slice_chunks(monkeypatch):
    """write_series takes two 3x4 slices at a time, in both passes (the real window is 512 Ki voxels,
    the real chunk 16 Mi)."""
    monkeypatch.setattr(plan_module, "CHUNK_VOXELS", 2 * 3 * 4)
    monkeypatch.setattr(series_module, "WINDOW_VOXELS", 2 * 3 * 4)
    return monkeypatch


@pytest.mark.parametrize("zeros", [(), (0,), (1, 2), (0, 1, 2, 3), (3, 4, 6), (6,), (0, 1, 2, 3, 4, 5, 6)],
                         ids=lambda zeros: "all-zero " + ",".join(map(str, zeros)))
def test_chunked_writing_gives_the_same_files(tmp_path, two_slice_chunks, zeros):
    # All-zero slices take their nearest neighbour's slope, which may be windows away.
    volume = (rng(14).standard_normal((7, 3, 4)) * 20).astype(np.float32)
    volume[4] = np.abs(volume[4]) * 1000  # neighbours with different slopes
    volume[list(zeros)] = 0
    kwargs = dict(spacing=(1, 2, 3), metadata=PET_METADATA, seed="chunks")
    chunked = write_series(volume, tmp_path / "chunked", **kwargs)
    two_slice_chunks.undo()
    whole = write_series(volume, tmp_path / "whole", **kwargs)
    assert [p.read_bytes() for p in chunked] == [p.read_bytes() for p in whole]


def test_large_slices_go_a_larger_window_at_a_time_with_the_same_files(tmp_path, monkeypatch):
    monkeypatch.setattr(series_module, "LARGE_SLICE_VOXELS", 3 * 4)
    monkeypatch.setattr(series_module, "LARGE_WINDOW_VOXELS", 2 * 3 * 4)
    windows, chunks = [], series_module.chunks
    monkeypatch.setattr(series_module, "chunks", lambda shape, voxels: windows.append(voxels) or chunks(shape, voxels))
    volume = (rng(16).standard_normal((7, 3, 4)) * 20).astype(np.float32)
    volume[[1, 2]] = 0
    kwargs = dict(spacing=(1, 2, 3), metadata=PET_METADATA, seed="large")
    large = write_series(volume, tmp_path / "large", **kwargs)
    monkeypatch.undo()
    whole = write_series(volume, tmp_path / "whole", **kwargs)
    assert windows == [2 * 3 * 4]
    assert [p.read_bytes() for p in large] == [p.read_bytes() for p in whole]


@pytest.mark.parametrize("slice_voxels, kernels", [(3 * 4, {"slice_extrema", "pack_slices"}),
                                                   (100, {"slice_extrema_serial", "pack_slices_serial"})])
def test_only_large_slices_are_packed_in_parallel(tmp_path, monkeypatch, slice_voxels, kernels):
    # However many small slices a window holds, one thread packs them (waking the others costs more).
    compiled, called = pixels._numba_kernels(), set()

    class Recorded:
        def __getattr__(self, name):
            called.add(name)
            return getattr(compiled, name)

    monkeypatch.setattr(pixels, "_numba_kernels", Recorded)
    monkeypatch.setattr(pixels, "PARALLEL_MIN_VOXELS", 3 * 4)  # every window of 3x4 slices would qualify
    monkeypatch.setattr(series_module, "LARGE_SLICE_VOXELS", slice_voxels)
    write_series(activity((7, 3, 4)), tmp_path / "series", spacing=(1, 1, 1), metadata=PET_METADATA, backend="numba")
    assert called == kernels


def test_integer_input_is_judged_on_the_whole_volume_across_chunks(tmp_path, two_slice_chunks):
    volume = rng(15).integers(0, 1000, (5, 3, 4)).astype(np.int16)
    volume[4, 0, 0] = -1  # only the last chunk holds a negative value: every slice is stored signed
    paths, datasets = write_and_check(volume, tmp_path, spacing=(1, 1, 1))
    assert [ds.PixelRepresentation for ds in datasets] == [1] * 5
    assert all(float(ds.RescaleSlope) == 1.0 for ds in datasets)


def test_a_bad_voxel_in_the_last_chunk_writes_nothing(tmp_path, two_slice_chunks):
    volume = activity((5, 3, 4))
    volume[4, 2, 3] = np.inf
    with pytest.raises(VolumeError, match="slice 4 holds inf at row 2, column 3"):
        write_series(volume, tmp_path / "series", spacing=(1, 1, 1), metadata=PET_METADATA)
    assert all_entries(tmp_path) == []  # nor a private folder beside it


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_any_number_of_workers_writes_the_same_files(tmp_path, workers):
    volume = activity((5, 3, 4))
    kwargs = dict(spacing=(1, 1, 1), metadata=PET_METADATA, seed="workers")
    whole = write_series(volume, tmp_path / "whole", **kwargs)
    with SeriesWriter(tmp_path / "streamed", volume.shape, workers=workers, **kwargs) as series:
        series.write_slices(volume)
    assert [p.read_bytes() for p in series.paths] == [p.read_bytes() for p in whole]


@pytest.mark.parametrize("workers", [
    1,
    2,
])
def test_a_failed_file_write_removes_the_series_and_names_the_file(tmp_path, monkeypatch, workers):
    def disk_full_at_image_3(real_write):
        def write(folder, name, pieces, *args):
            if name == "PT_0003.dcm":
                raise OSError(28, "No space left on device")
            return real_write(folder, name, pieces, *args)

        return write

    # A PET file whose window close() writes is written by write_kept, the others by write.
    for method in ("write", "write_kept"):
        monkeypatch.setattr(SeriesFolder, method, disk_full_at_image_3(getattr(SeriesFolder, method)))
    volume = activity((5, 3, 4))
    with pytest.raises(OSError, match="No space left") as raised:
        with SeriesWriter(tmp_path / "series", volume.shape, spacing=(1, 1, 1), metadata=PET_METADATA,
                          workers=workers) as series:
            series.write_slices(volume)
    assert all_entries(tmp_path) == []  # nor a private folder beside it
    notes = getattr(raised.value, "__notes__", [])
    assert any("image 3 of 5" in note and "PT_0003.dcm" in note for note in notes), notes


@pytest.mark.parametrize("kept", [100, 2])
def test_the_default_window_is_written_into_the_files_before_the_last_images_only(tmp_path, two_slice_chunks, kept):
    # Known from the last images' extrema on, the window goes into their files at once; close() writes it
    # into the earlier files through the descriptors their writes kept open (as many as the process can
    # spare), or opens them again.
    import pydicom

    two_slice_chunks.setattr(series_module, "_KEPT_DESCRIPTORS", threading.BoundedSemaphore(kept))
    patched, real_patch = [], SeriesFolder.patch

    def recorded(folder, name, offset, data, fd=None):
        patched.append((name, fd is not None))
        return real_patch(folder, name, offset, data, fd)

    two_slice_chunks.setattr(SeriesFolder, "patch", recorded)
    volume = activity((7, 3, 4))  # written two slices at a time: images 1-6, then image 7
    for series in ("one", "two"):  # the second takes the descriptors the first gave back
        patched.clear()
        paths = write_series(volume, tmp_path / series, spacing=(1, 1, 1), metadata=PET_METADATA)
        assert patched == [(f"PT_{n:04d}.dcm", n <= kept) for n in range(1, 7)]
    windows = {(float(ds.WindowCenter), float(ds.WindowWidth)) for ds in map(pydicom.dcmread, paths)}
    assert windows == {plan_module.pet_window(volume.max(axis=(1, 2)))}


def test_where_the_descriptor_limit_is_unknown_every_window_file_is_opened_again():
    # sysconf gives -1 for a limit it does not know: no descriptor is kept (nor does the import fail).
    script = (
        "import os\nos.sysconf = lambda name: -1\nfrom dcmforge.write import series\n"
        "assert not series._KEPT_DESCRIPTORS.acquire(blocking=False)"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_close_without_a_block(tmp_path):
    volume = activity((3, 3, 4))
    series = SeriesWriter(tmp_path / "series", volume.shape, spacing=(1, 1, 1), metadata=PET_METADATA)
    series.write_slices(volume[:2])
    with pytest.raises(VolumeError, match="ended after 2 of 3 images"):
        series.close()
    assert all_entries(tmp_path) == []  # nor a private folder beside it
    complete = SeriesWriter(tmp_path / "again", volume.shape, spacing=(1, 1, 1), metadata=PET_METADATA)
    complete.write_slices(volume)
    paths = complete.close()
    assert [p.name for p in paths] == ["PT_0001.dcm", "PT_0002.dcm", "PT_0003.dcm"]
    check_series(paths, volume, affine_from_spacing((1, 1, 1)), tmp_path)


# -- metadata as given ------------------------------------------------------------------------


def test_metadata_from_a_json_or_toml_file_equals_the_mapping(tmp_path):
    volume = activity((2, 3, 3))
    json_file = tmp_path / "meta.json"
    json_file.write_text(json.dumps(PET_METADATA))
    toml_file = tmp_path / "meta.toml"
    toml_file.write_text("".join(f'{key} = "{value}"\n' for key, value in PET_METADATA.items()))
    written = [
        write_series(volume, tmp_path / name, spacing=(1, 1, 1), metadata=metadata, seed="file")
        for name, metadata in (("dict", PET_METADATA), ("json", json_file), ("toml", str(toml_file)))
    ]
    assert [p.read_bytes() for p in written[1]] == [p.read_bytes() for p in written[0]]
    assert [p.read_bytes() for p in written[2]] == [p.read_bytes() for p in written[0]]


def test_without_an_isotope_nothing_is_decay_corrected(tmp_path):
    metadata = {key: value for key, value in PET_METADATA.items() if key != "isotope"}
    _, datasets = write_and_check(activity((2, 3, 3)), tmp_path, spacing=(1, 1, 1), metadata=metadata)
    for ds in datasets:
        assert ds.DecayCorrection == "NONE" and "DecayFactor" not in ds
        assert "DECY" not in list(ds.CorrectedImage)


def test_a_nested_list_is_taken_like_an_array(tmp_path):
    volume = activity((2, 3, 3))
    kwargs = dict(spacing=(1, 1, 1), metadata=PET_METADATA, seed="list")
    from_list = write_series(volume.tolist(), tmp_path / "list", **kwargs)
    from_array = write_series(volume.astype(np.float64), tmp_path / "array", **kwargs)
    assert [p.read_bytes() for p in from_list] == [p.read_bytes() for p in from_array]


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_releasing_a_memory_mapped_chunk_keeps_its_values(tmp_path, mode):
    # The pages go back to the kernel (re-read from the file when touched again); a
    # copy-on-write mapping's private changes must not be dropped with them.
    path = tmp_path / "volume.raw"
    values = np.arange(4 * 64 * 64, dtype=np.float32).reshape(4, 64, 64)
    values.tofile(path)
    volume = np.memmap(path, np.float32, mode, shape=values.shape)
    expected = values.copy()
    if mode == "c":
        volume[1, 2, 3] = expected[1, 2, 3] = -1.0
    chunk = volume[1:3]
    plan_module.release_pages(chunk)
    plan_module.release_pages(values[1:3])  # not a mapping: nothing to do
    np.testing.assert_array_equal(volume, expected)


# -- the per-slice elements spliced into the shared header --------------------------------------


@pytest.mark.parametrize(
    "volume, kwargs",
    [
        (activity((4, 3, 5)), dict(spacing=(1.1, 2.2, 3.3))),
        ((rng(20).standard_normal((4, 3, 5)) * 1e-3).astype(np.float64), dict(axes="zyx", affine=oblique_affine(),
                                                                          affine_convention="LPS")),
        (activity((3, 4, 3, 5)), dict(spacing=(2, 2, 2), metadata={**PET_METADATA, "frame_duration": [30, 60, 90],
                                                                   "PatientName": "Müller^Jürgen"})),
        (activity((4, 3, 5)), dict(spacing=(1, 1, 1), metadata=CT_METADATA, modality="CT")),
        (activity((3, 3, 5)), dict(spacing=(1, 1, 1), metadata={k: v for k, v in PET_METADATA.items() if k != "isotope"})),
        (rng(21).integers(-300, 3000, (3, 3, 5)).astype(np.int16), dict(spacing=(1, 1, 1))),
    ],
    ids=["PET", "signed, oblique", "dynamic, UTF-8", "CT", "no decay factor", "integer counts"],
)
def test_spliced_headers_equal_the_generic_encoding(tmp_path, monkeypatch, volume, kwargs):
    elements = series_module._SliceElements
    spliced, made = elements.header, elements.__init__
    writers, checked = [], []

    def recorded(self, writer, codec):
        writers.append(writer)
        made(self, writer, codec)

    def compared(self, n, packed, i):
        header = spliced(self, n, packed, i)
        (writer,) = writers
        values = writer._slice_values(n, packed, i)
        generic = b"".join([file_meta(writer.shared["SOPClassUID"], values["SOPInstanceUID"]), *writer.template.render(values)])
        if n >= writer._placeholders:  # written once the default window was known: it carries the window itself
            placeholder = series_module.window_elements([series_module._WINDOW_PLACEHOLDER] * 2)
            generic = generic.replace(placeholder, series_module.window_elements(plan_module.pet_window(writer._maxima)))
        assert header == generic, n
        checked.append(n)
        return header

    monkeypatch.setattr(elements, "__init__", recorded)
    monkeypatch.setattr(elements, "header", compared)
    kwargs = {"metadata": PET_METADATA, **kwargs}
    write_series(volume, tmp_path / "series", **kwargs)
    assert checked == list(range(int(np.prod(volume.shape[:-2]))))
