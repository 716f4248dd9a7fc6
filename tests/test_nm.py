"""NM Image output (SPECT, RECON TOMO): one multi-frame file per volume, read back by real readers.

dciodvfy with any error a failure (its warnings listed: RescaleSlope/Intercept only);
SimpleITK's ReadImage and the current PyPI dcm2niix (the venv's, not an older one on
PATH) with default settings place every voxel within 1e-3 mm of the input's geometry and
give each value within half the file's step (and float32 rounding); pydicom applying
RealWorldValueMappingSequence by hand gives the same values; dcmdump and gdcm parse it.
The expected geometry is computed here from first principles (oracles.affine_from_spacing,
the STIR axes below), never from dcmforge.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dcmforge import pixels
from dcmforge.convert import convert_one
from dcmforge.errors import DcmforgeError, VolumeError
from dcmforge.write.series import SeriesWriter, write_series
from dicom_tools import dcmdump, dciodvfy, require
from interfile_data import stir_header, write_image
from oracles import (
    Image,
    affine_from_spacing,
    allowed_value_error,
    geometry_error,
    matched_to,
    read_with_dcm2niix,
)

# The current PyPI dcm2niix (the test extra) installs its binary beside this Python.
VENV_DCM2NIIX = str(Path(sys.executable).parent / "dcm2niix")

# What dciodvfy says of an NM Image with the rescale readers apply (README, SPECT).
RESCALE_WARNINGS = [
    "Warning - Attribute is not present in standard DICOM IOD - (0x0028,0x1052) DS Rescale Intercept",
    "Warning - Attribute is not present in standard DICOM IOD - (0x0028,0x1053) DS Rescale Slope",
    "Warning - Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class",
]

TC99M = {"isotope": "Tc-99m", "injected_activity": 740e6, "PatientName": "Phantom^SPECT", "PatientID": "SPECT1",
         "StudyDate": "20250301", "StudyTime": "110000", "Units": "BQML"}  # fmt: skip


def spect_volume(shape, seed=7):
    """A float32 SPECT-like volume with a few slightly negative voxels, as iterative reconstructions have."""
    rng = np.random.default_rng(seed)
    volume = rng.gamma(2.0, 500.0, shape).astype(np.float32)
    volume[0, 0, :3] = [-2.5, -0.75, 0.0]
    return volume


def read_with_simpleitk_file(path):
    """One multi-frame file as SimpleITK's ReadImage gives it (default settings), in float64 [z, y, x]."""
    image = sitk.ReadImage(str(path))
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return Image(affine, sitk.GetArrayFromImage(image).astype(np.float64))


def rwvm_values(path):
    """The stored pixels through RealWorldValueMappingSequence, applied by hand with pydicom."""
    ds = pydicom.dcmread(str(path))
    (mapping,) = ds.RealWorldValueMappingSequence
    assert (mapping.RealWorldValueFirstValueMapped, mapping.RealWorldValueLastValueMapped) == (0, 65535)
    stored = ds.pixel_array.astype(np.float64)
    return ds, stored * float(mapping.RealWorldValueSlope) + float(mapping.RealWorldValueIntercept)


def within(values, expected, allowed, name):
    worst = np.abs(values - expected) - allowed
    assert worst.max() <= 0, f"{name}: {np.abs(values - expected).max()} off at worst"


def check_file(path, expected_affine, volume, tmp_path, units=("Bq/ml", "BQML")):
    """Every reader of the one NM file agrees with the input volume: geometry, values (within the
    packing contract's bound), units."""
    expected = volume.astype(np.float64)
    report = dciodvfy(path)
    assert report.errors == [], report.output
    assert sorted(line.rstrip() for line in report.warnings) == sorted(RESCALE_WARNINGS), report.output

    ds, real = rwvm_values(path)
    slope = float(ds.RescaleSlope)
    assert (ds.Modality, ds.SOPClassUID, ds.PixelRepresentation) == ("NM", "1.2.840.10008.5.1.4.1.1.20", 0)
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    assert ds.FrameIncrementPointer == pydicom.tag.Tag(0x0054, 0x0080)
    assert list(ds.SliceVector) == list(range(1, len(expected) + 1)) and ds.NumberOfSlices == len(expected)
    assert float(ds.RescaleSlope) == ds.RealWorldValueMappingSequence[0].RealWorldValueSlope
    assert float(ds.RescaleIntercept) == ds.RealWorldValueMappingSequence[0].RealWorldValueIntercept
    code = ds.RealWorldValueMappingSequence[0].MeasurementUnitsCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, ds.RealWorldValueMappingSequence[0].LUTLabel) == (
        units[0], "UCUM", units[1]
    )
    allowed = allowed_value_error(slope, expected, volume.dtype, float(ds.RescaleIntercept))
    (detector,) = ds.DetectorInformationSequence
    spacing = [float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]), float(ds.SpacingBetweenSlices)]
    said = affine_from_spacing(spacing, [float(v) for v in detector.ImagePositionPatient],
                               [float(v) for v in detector.ImageOrientationPatient])  # fmt: skip
    by_hand = matched_to(Image(said, real), expected_affine)
    assert geometry_error(by_hand, expected_affine) < 1e-3, (said, expected_affine)
    within(by_hand.array, expected, allowed, "pydicom")

    float32 = np.abs(expected).max() * 2.0**-23  # dcm2niix writes float32 voxels
    for name, image in (
        ("SimpleITK", read_with_simpleitk_file(path)),
        ("dcm2niix", read_with_dcm2niix(path.parent, tmp_path / "nifti", VENV_DCM2NIIX)),
    ):
        image = matched_to(image, expected_affine)
        assert geometry_error(image, expected_affine) < 1e-3, (name, image.affine, expected_affine)
        assert image.array.shape == expected.shape, name
        within(image.array, expected, allowed + 2 * float32, name)

    assert dcmdump(path).errors == []
    require("gdcminfo")
    done = subprocess.run(["gdcminfo", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "[Nuclear Medicine Image Storage]" in done.stdout, done.stdout + done.stderr
    assert f"Dimensions: ({ds.Columns},{ds.Rows},{ds.NumberOfFrames})" in done.stdout, done.stdout
    return ds


def test_a_numpy_tc99m_volume_is_one_nm_file_every_reader_places_and_scales(tmp_path):
    volume = spect_volume((9, 12, 14))
    spacing, origin = (4.42, 3.5, 2.0), (-30.0, 12.5, -80.25)
    angle = np.radians(20)
    orientation = (np.cos(angle), np.sin(angle), 0.0, -np.sin(angle), np.cos(angle), 0.0)
    paths = write_series(
        volume, tmp_path / "nm", spacing=spacing, origin=origin, orientation=orientation, modality="NM",
        metadata=TC99M, seed="nm-test",
    )  # fmt: skip
    assert [p.name for p in paths] == ["NM_multiframe.dcm"] and sorted((tmp_path / "nm").iterdir()) == paths
    ds = check_file(paths[0], affine_from_spacing(spacing, origin, orientation), volume, tmp_path)

    item = ds.RadiopharmaceuticalInformationSequence[0]
    assert item.RadionuclideCodeSequence[0].CodeValue == "72454006" and float(item.RadionuclideTotalDose) == 740.0
    assert [w.EnergyWindowName for w in ds.EnergyWindowInformationSequence] == ["140.5 keV peak"]
    assert ds.NumberOfEnergyWindows == 1 and ds.NumberOfDetectors == 1 and ds.NumberOfRotations == 0
    assert ds.DetectorInformationSequence[0].CollimatorType == "" and ds.CountsAccumulated is None
    assert "CorrectedImage" not in ds  # nobody said which corrections were made
    assert float(ds.RescaleIntercept) <= -2.5 and float(ds.RescaleIntercept) > -2.5 - 1e-8


def test_an_injection_date_time_with_a_utc_offset_gives_the_time_of_day_alone(tmp_path):
    item = {"RadionuclideCodeSequence": [{"CodeValue": "72454006", "CodingSchemeDesignator": "SCT",
                                          "CodeMeaning": "^99m^Technetium"}],
            "RadiopharmaceuticalStartDateTime": "20250301093000.25+0100"}  # fmt: skip
    metadata = {**TC99M, "RadiopharmaceuticalInformationSequence": [item]}
    del metadata["isotope"], metadata["injected_activity"]
    (path,) = write_series(np.ones((2, 3, 4), np.float32), tmp_path / "nm", spacing=(1, 1, 1), modality="NM",
                           metadata=metadata)  # fmt: skip
    written = pydicom.dcmread(str(path)).RadiopharmaceuticalInformationSequence[0]
    assert written.RadiopharmaceuticalStartTime == "093000.25" and "RadiopharmaceuticalStartDateTime" not in written
    assert dciodvfy(path).errors == []


def test_a_stir_spect_header_head_in_prone_with_first_pixel_offsets(tmp_path):
    shape, spacing, first = (7, 10, 11), (4.0, 4.5, 3.25), (-20.0, -22.5, 6.0)
    volume = spect_volume(shape, seed=3)
    extra = ["isotope name := ^99m^Technetium", "!SPECT STUDY (General) :="]
    header = stir_header(shape, spacing, orientation="head_in", rotation="prone", first_pixel=first, extra=extra)
    header = header.replace("!imaging modality := PET", "!imaging modality := NM")
    path = write_image(tmp_path, "spect.hv", header, volume)
    result = convert_one(path, tmp_path / "out", {"modality": "NM"})
    assert result.status == "converted" and "1 NM file" in result.message, result.message
    # STIR (docs/interfile.md 4.1): x, y, z from the first pixel offsets along its axes; head in,
    # prone turns each of them against LPS. The slices run towards the feet: dcmforge writes them
    # last first, so that the frames go along the image plane's normal.
    affine = np.diag([-spacing[0], -spacing[1], -spacing[2], 1.0])
    affine[:3, 3] = [-first[0], -first[1], -first[2]]
    out = tmp_path / "out" / "NM_multiframe.dcm"
    # no units in a STIR header: proportional to counts, and a warning naming units (docs/iods.md 2)
    assert any(w.startswith("units: not in the input") for w in result.warnings), result.warnings
    ds = check_file(out, affine, volume, tmp_path, units=("{propcounts}", "PROPCNTS"))
    assert ds.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0].CodeValue == "72454006"
    codes = [ds.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence[0].CodeMeaning,
             ds.PatientGantryRelationshipCodeSequence[0].CodeMeaning]  # fmt: skip
    assert codes == ["prone", "headfirst"]


@pytest.mark.parametrize("multiframe", [False, True])
def test_nm_is_one_file_whatever_multiframe_says_and_integer_counts_are_stored_as_they_are(tmp_path, multiframe):
    counts = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6) * 97
    paths = write_series(counts, tmp_path / "nm", spacing=(2, 2, 2), modality="nm", multiframe=multiframe,
                         metadata={"units": "counts"})  # fmt: skip
    ds = pydicom.dcmread(str(paths[0]))
    assert len(paths) == 1 and (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, 0.0)
    assert np.array_equal(ds.pixel_array, counts)
    code = ds.RealWorldValueMappingSequence[0].MeasurementUnitsCodeSequence[0]
    assert (code.CodeValue, code.CodeMeaning) == ("{counts}", "Counts")  # the units stated


def test_a_dynamic_or_gated_spect_is_refused_in_one_line(tmp_path):
    with pytest.raises(VolumeError, match=r"^shape \(2, 3, 4, 5\): dcmforge writes static NM images") as caught:
        write_series(np.zeros((2, 3, 4, 5), np.float32), tmp_path / "nm", spacing=(1, 1, 1), modality="NM")
    assert "\n" not in str(caught.value) and not (tmp_path / "nm").exists()


def test_per_slice_scaling_is_refused_for_nm(tmp_path):
    with pytest.raises(DcmforgeError, match="an NM image has one rescale for all its frames"):
        write_series(np.ones((2, 3, 4), np.float32), tmp_path / "nm", spacing=(1, 1, 1), modality="NM", scaling="slice")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
        elements=st.floats(-1e6, 1e9, allow_nan=False, allow_subnormal=False),
    )
)  # fmt: skip
def test_nm_scaling_is_unsigned_and_within_half_a_step(volume):
    mins, maxs = pixels.slice_extrema(volume, backend="numpy")
    scaling = pixels.plan_volume_scaling(mins, maxs, volume.dtype, "NM")
    slope, intercept = float(scaling.slopes[0]), float(scaling.intercepts[0])
    assert not scaling.signed.any() and slope > 0 and intercept <= min(float(volume.min()), 0.0)
    assert float(repr(slope)) == slope and len(repr(slope).replace("e-0", "e-")) <= 16  # DS holds them exactly
    stored = pixels.pack_slices(volume, *scaling, np.empty(volume.shape, np.uint16), "numpy")
    error = np.abs(stored * slope + intercept - volume)
    assert error.max() <= slope / 2 + 4 * np.spacing(max(abs(volume).max(), abs(intercept)))


def test_series_writer_writes_the_same_nm_file_slice_by_slice_and_nothing_if_it_ends_early(tmp_path):
    volume = spect_volume((5, 6, 7))
    options = {"spacing": (3, 3, 4), "modality": "NM", "metadata": TC99M, "seed": "slices"}
    with SeriesWriter(tmp_path / "slices", volume.shape, **options) as series:
        for k in range(len(volume)):
            series.write_slice(volume[k])
    (whole,) = write_series(volume, tmp_path / "whole", **options)
    written, expected = pydicom.dcmread(str(series.paths[0])), pydicom.dcmread(str(whole))
    assert series.paths == [tmp_path / "slices" / "NM_multiframe.dcm"]
    for keyword in ("PixelData", "RescaleSlope", "RescaleIntercept", "SOPInstanceUID", "DetectorInformationSequence"):
        assert written[keyword].value == expected[keyword].value, keyword

    with pytest.raises(VolumeError, match="ended after 2 of 5 slices; nothing was written"):
        with SeriesWriter(tmp_path / "short", volume.shape, **options) as series:
            series.write_slices(volume[:2])
    with pytest.raises(VolumeError, match=r"^shape \(2, 5, 6, 7\): dcmforge writes static NM images"):
        SeriesWriter(tmp_path / "dynamic", (2, *volume.shape), **options)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["slices", "whole"]  # no spool file left either


def rotation(quaternion):
    """The rotation matrix of a (non-zero) quaternion."""
    w, x, y, z = np.asarray(quaternion, float) / np.linalg.norm(quaternion)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    quaternion=st.tuples(*[st.floats(-1, 1) for _ in range(4)]).filter(lambda q: np.linalg.norm(q) > 0.1),
    spacing=st.tuples(*[st.floats(0.5, 8) for _ in range(3)]),
    origin=st.tuples(*[st.floats(-300, 300) for _ in range(3)]),
    flips=st.tuples(*[st.sampled_from([1.0, -1.0]) for _ in range(3)]),
)
def test_any_stack_is_placed_from_detector_information_alone(tmp_path_factory, quaternion, spacing, origin, flips):
    """Whatever way the stack runs (left- or right-handed), the first frame's position, the orientation and
    SpacingBetweenSlices along the normal put every voxel where the input's affine says."""
    affine = np.eye(4)
    affine[:3, :3] = rotation(quaternion) * np.multiply(spacing, flips)
    affine[:3, 3] = origin
    volume = np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4)
    out = tmp_path_factory.mktemp("stack") / "nm"
    (path,) = write_series(volume, out, axes="zyx", affine=affine, affine_convention="LPS", modality="NM")
    ds = pydicom.dcmread(str(path))
    (detector,) = ds.DetectorInformationSequence
    said = affine_from_spacing(
        [float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]), float(ds.SpacingBetweenSlices)],
        [float(v) for v in detector.ImagePositionPatient], [float(v) for v in detector.ImageOrientationPatient],
    )  # fmt: skip
    read = matched_to(Image(said, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)), affine)
    assert geometry_error(read, affine) < 1e-3
    within(read.array, volume, allowed_value_error(float(ds.RescaleSlope), volume, volume.dtype), "pydicom")
