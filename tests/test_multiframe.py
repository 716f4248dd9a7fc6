"""Enhanced PET output (issue 6): write_series(..., multiframe=True) and ``dcmforge convert --multiframe``.

Proved with independent readers: dciodvfy (no error and no warning, static and
dynamic), pydicom (every frame within half its slope, each functional group
where the standard allows it), dcm2niix (the geometry of the single-frame
series of the same input) and the command line end to end.

dcm2niix 1.0.20220720 (the Debian one the tests run) reads DimensionIndexValues
and per-frame RescaleSlope only in files of a few named manufacturers; for any
other file it sorts the frames by position and takes the first frame's slope.
Its geometry is right for every file; its voxel values only when every frame
shares one slope, which is what the value test below uses. (Later releases read
both for unknown manufacturers too; with 1.0.20241211 the static and dynamic
files of these tests come back within half a slope.)
"""

import math

import numpy as np
import pydicom
import pytest
from dicom_tools import dciodvfy
from oracles import affine_from_spacing, allowed_value_error, geometry_error, matched_to, read_with_dcm2niix
from volumes import activity, oblique_affine

from dcmforge import iods, write_series
from dcmforge.write import multiframe, plan
from dcmforge.cli import main
from dcmforge.dicom.encode import encode_element
from dcmforge.errors import DcmforgeError, MetadataError, OutputExistsError, ValidationError, VolumeError
from dcmforge.iods.enhanced_pet import ENHANCED_PET_IMAGE
from dcmforge.readers.interfile import write_interfile
from dcmforge.timing import FrameTiming

ENHANCED_PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.130"
GEOMETRY_TOLERANCE = 1e-4  # mm
F18_HALF_LIFE = 6586.2  # s

# Fixed times (creation included) so that seeded runs are byte for byte the same.
METADATA = {
    "isotope": "F-18",
    "radiopharmaceutical": "Fluorodeoxyglucose",
    "injected_activity": 3.7e8,
    "injection_datetime": "2025-01-31T09:45:00",
    "acquisition_datetime": "2025-01-31T10:45:00",
    "PatientID": "PHANTOM-1",
    "PatientWeight": 70.0,
    "frame_duration": [600.0],
    "Units": "BQML",  # the facts only the maker of an image knows (an SUV-ready image states them)
    "CorrectedImage": ["DECY", "ATTN"],
    "InstanceCreationDate": "20250131",
    "InstanceCreationTime": "120000",
}
# Without them decay correction cannot be stated either: it needs the half-life.
RADIOPHARMACEUTICAL_KEYS = (
    "isotope", "radiopharmaceutical", "injected_activity", "injection_datetime", "CorrectedImage",
)  # fmt: skip
DYNAMIC_METADATA = {**METADATA, "frame_start": [0.0, 60.0, 180.0], "frame_duration": [60.0, 120.0, 300.0]}


def write(volume, folder, **kwargs):
    kwargs.setdefault("metadata", METADATA)
    if "affine" not in kwargs:
        kwargs.setdefault("spacing", (2.0, 3.0, 4.0))
    paths = write_series(volume, folder, multiframe=True, **kwargs)
    assert paths == [folder / "PT_multiframe.dcm"] and sorted(folder.iterdir()) == paths
    return paths[0]


def group(ds, frame, keyword):
    """The one item of functional group ``keyword`` for ``frame``: per-frame if there, else shared."""
    per_frame = ds.PerFrameFunctionalGroupsSequence[frame]
    if keyword in per_frame:
        return per_frame[keyword][0]
    return ds.SharedFunctionalGroupsSequence[0][keyword][0]


def placement(ds, keyword):
    """'shared', 'per-frame' or 'absent'; an error if a group is in both or in some frames only."""
    shared = keyword in ds.SharedFunctionalGroupsSequence[0]
    frames = [keyword in item for item in ds.PerFrameFunctionalGroupsSequence]
    assert not (shared and any(frames)), keyword
    assert all(frames) or not any(frames), keyword
    return "shared" if shared else "per-frame" if all(frames) else "absent"


def check_file(path, volume, affine):
    """pydicom and dciodvfy on one Enhanced PET file; returns the dataset."""
    dtype = np.asarray(volume).dtype  # the packing contract's bound depends on the voxels' type
    volume = np.asarray(volume, np.float64)
    frames = volume.reshape(-1, *volume.shape[-2:])
    slices = volume.shape[-3]
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == ENHANCED_PET_IMAGE_STORAGE
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.NumberOfFrames == len(frames) and (ds.Rows, ds.Columns) == volume.shape[-2:]
    stored = ds.pixel_array.reshape(frames.shape)
    assert stored.dtype == (np.int16 if ds.PixelRepresentation else np.uint16)

    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    np.testing.assert_allclose([float(v) for v in measures.PixelSpacing], [spacing[1], spacing[0]], atol=1e-6)
    np.testing.assert_allclose(float(measures.SpacingBetweenSlices), spacing[2], atol=1e-6)
    orientation = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    np.testing.assert_allclose([float(v) for v in orientation],
                               np.concatenate([affine[:3, 0] / spacing[0], affine[:3, 1] / spacing[1]]), atol=1e-6)
    for n, expected in enumerate(frames):
        time, z = divmod(n, slices)
        content = ds.PerFrameFunctionalGroupsSequence[n].FrameContentSequence[0]
        assert (content.StackID, content.InStackPositionNumber, content.TemporalPositionIndex) == ("1", z + 1, time + 1)
        position = group(ds, n, "PlanePositionSequence").ImagePositionPatient
        expected_position = affine[:3, 3] + z * affine[:3, 2]
        np.testing.assert_allclose([float(v) for v in position], expected_position, atol=GEOMETRY_TOLERANCE)
        transformation = group(ds, n, "PixelValueTransformationSequence")
        mapping = group(ds, n, "RealWorldValueMappingSequence")
        slope, intercept = float(transformation.RescaleSlope), float(transformation.RescaleIntercept)
        assert (mapping.RealWorldValueSlope, mapping.RealWorldValueIntercept) == (slope, intercept)
        excess = (np.abs(stored[n] * slope + intercept - expected) - allowed_value_error(slope, expected, dtype)).max()
        assert excess <= 0, f"frame {n}: off by {excess} more than allowed, slope {slope}"

    report = dciodvfy(path)
    assert report.errors == [] and report.warnings == [], report.output
    return ds


# -- the two shapes a PET volume has ------------------------------------------------------------


@pytest.mark.parametrize("scaling, transformations", [(None, "shared"), ("slice", "per-frame")])
def test_a_static_volume_is_one_file_every_frame_reads_back_and_dciodvfy_is_silent(tmp_path, scaling, transformations):
    volume = activity((5, 6, 7))
    affine = oblique_affine()
    path = write(volume, tmp_path / "mf", axes="zyx", affine=affine, affine_convention="LPS", scaling=scaling)
    ds = check_file(path, volume, affine)
    assert ds.DimensionOrganizationType == "3D" and len(ds.DimensionIndexSequence) == 2
    assert [item.DimensionIndexPointer for item in ds.DimensionIndexSequence] == [0x00209056, 0x00209057]
    assert [list(f.FrameContentSequence[0].DimensionIndexValues) for f in ds.PerFrameFunctionalGroupsSequence] == [
        [1, z] for z in range(1, 6)
    ]
    # float voxels: the volume's one slope, shared; or every frame its own, so both transformations per frame
    for keyword in ("PixelValueTransformationSequence", "RealWorldValueMappingSequence"):
        assert placement(ds, keyword) == transformations, keyword
    for keyword in ("PixelMeasuresSequence", "PlaneOrientationSequence", "FrameAnatomySequence", "FrameVOILUTSequence",
                    "RadiopharmaceuticalUsageSequence", "PETFrameTypeSequence"):  # fmt: skip
        assert placement(ds, keyword) == "shared", keyword
    assert placement(ds, "FrameContentSequence") == placement(ds, "PlanePositionSequence") == "per-frame"


def test_a_dynamic_volume_is_one_file_time_major_with_each_frames_timing(tmp_path):
    volume = activity((3, 4, 6, 7), seed=1)
    affine = affine_from_spacing((2.0, 3.0, 4.0), (-10.0, -20.0, 30.0))
    path = write(volume, tmp_path / "mf", origin=(-10.0, -20.0, 30.0), metadata=DYNAMIC_METADATA)
    ds = check_file(path, volume, affine)
    assert ds.DimensionOrganizationType == "3D_TEMPORAL"
    # slowest first, as the frames are stored: time, stack, position in the stack
    assert [item.DimensionIndexPointer for item in ds.DimensionIndexSequence] == [0x00209128, 0x00209056, 0x00209057]
    starts = ["20250131104500", "20250131104600", "20250131104800"]
    for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        time, z = divmod(n, 4)
        content = item.FrameContentSequence[0]
        assert list(content.DimensionIndexValues) == [time + 1, 1, z + 1]
        assert content.FrameAcquisitionDateTime == starts[time]
        assert content.FrameAcquisitionDuration == DYNAMIC_METADATA["frame_duration"][time] * 1000
        # the decay-weighted mid-frame moment, as FrameReferenceTime is in the single-frame series
        x = math.log(2) / F18_HALF_LIFE * DYNAMIC_METADATA["frame_duration"][time]
        offset = DYNAMIC_METADATA["frame_start"][time] + math.log(x / -math.expm1(-x)) / (math.log(2) / F18_HALF_LIFE)
        reference = content.FrameReferenceDateTime
        seconds = int(reference[8:10]) * 3600 + int(reference[10:12]) * 60 + float(reference[12:]) - 10.75 * 3600
        assert seconds == pytest.approx(offset, abs=1e-5)
    assert ds.AcquisitionDateTime == starts[0] and ds.AcquisitionDuration == 480.0
    assert ds.DecayCorrected == "YES" and ds.DecayCorrectionDateTime == "20250131104500"


def test_one_frame_of_one_slice(tmp_path):
    volume = activity((1, 3, 2))
    ds = check_file(write(volume, tmp_path / "mf"), volume, affine_from_spacing((2.0, 3.0, 4.0)))
    assert ds.NumberOfFrames == 1


# -- dcm2niix -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 6, 7), (3, 4, 6, 7)], ids=["static", "dynamic"])
def test_dcm2niix_gives_the_geometry_of_the_single_frame_series(tmp_path, shape):
    volume = activity(shape, seed=2)
    affine = oblique_affine()
    metadata = DYNAMIC_METADATA if len(shape) == 4 else METADATA
    write(volume, tmp_path / "mf", axes="zyx", affine=affine, affine_convention="LPS", metadata=metadata)
    write_series(volume, tmp_path / "sf", axes="zyx", affine=affine, affine_convention="LPS", metadata=metadata)
    multi = read_with_dcm2niix(tmp_path / "mf", tmp_path / "nifti-mf")
    single = read_with_dcm2niix(tmp_path / "sf", tmp_path / "nifti-sf")
    assert multi.array.shape == single.array.shape == shape
    assert geometry_error(multi, single.affine) <= GEOMETRY_TOLERANCE
    assert geometry_error(matched_to(multi, affine), affine) <= GEOMETRY_TOLERANCE


def test_dcm2niix_reads_the_values_when_the_frames_share_one_slope(tmp_path):
    counts = np.random.default_rng(3).integers(0, 5000, (4, 5, 6)).astype(np.uint16)  # stored as is, slope 1
    path = write(counts, tmp_path / "mf")
    assert placement(pydicom.dcmread(path), "PixelValueTransformationSequence") == "shared"
    image = matched_to(read_with_dcm2niix(tmp_path / "mf", tmp_path / "nifti"), affine_from_spacing((2.0, 3.0, 4.0)))
    np.testing.assert_array_equal(image.array, counts)


# -- pixel values -------------------------------------------------------------------------------


def test_negative_values_make_every_frame_signed(tmp_path):
    volume = activity((4, 5, 6), seed=4) - 100  # some frames negative somewhere...
    volume[1] = np.abs(volume[1]) + 1  # ...one frame positive only: signed all the same (one PixelRepresentation)
    volume[2] = 0  # an empty frame
    ds = check_file(write(volume, tmp_path / "mf", scaling="slice"), volume, affine_from_spacing((2.0, 3.0, 4.0)))
    assert ds.PixelRepresentation == 1
    for n in range(4):
        mapping = group(ds, n, "RealWorldValueMappingSequence")
        assert mapping["RealWorldValueFirstValueMapped"].VR == mapping["RealWorldValueLastValueMapped"].VR == "SS"
        assert (mapping.RealWorldValueFirstValueMapped, mapping.RealWorldValueLastValueMapped) == (-32768, 32767)
    slopes = [float(group(ds, n, "PixelValueTransformationSequence").RescaleSlope) for n in range(4)]
    assert slopes[1] == pytest.approx(volume[1].max() / 32767, rel=1e-9)
    assert slopes[2] == max(slopes[1], slopes[3])  # the empty frame: its neighbours' (the larger)
    # one slope for the file: the largest magnitude of the volume over 32767
    ds = check_file(write(volume, tmp_path / "one"), volume, affine_from_spacing((2.0, 3.0, 4.0)))
    transformation = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    assert ds.PixelRepresentation == 1 and float(transformation.RescaleIntercept) == 0.0
    peak = float(np.abs(volume).max())
    assert peak / 32767 <= float(transformation.RescaleSlope) <= peak / 32767 * (1 + 1e-9)


def test_file_scaling_plans_a_positive_frame_among_signed_ones_as_signed():
    mins, maxs = np.array([-10.0, 5.0, 0.0]), np.array([20.0, 65535.0 * 3, 0.0])
    scaling = multiframe.file_scaling(mins, maxs, np.dtype("float32"), "slice")
    assert scaling.signed.tolist() == [True, True, True]
    peak_slope = 65535.0 * 3 / 32767
    assert scaling.slopes[1] == pytest.approx(peak_slope, rel=1e-9) and scaling.slopes[1] >= peak_slope
    assert scaling.slopes[2] == scaling.slopes[1]  # the empty frame: its neighbour's
    unsigned = multiframe.file_scaling(np.array([0.0, 1.0]), np.array([10.0, 20.0]), np.dtype("float32"), "slice")
    assert unsigned.signed.tolist() == [False, False]


def test_counts_share_one_transformation_and_say_their_units(tmp_path):
    counts = np.random.default_rng(5).integers(0, 3000, (3, 4, 5)).astype(np.int32)
    ds = check_file(write(counts, tmp_path / "mf", metadata={**METADATA, "Units": "CNTS"}), counts,
                    affine_from_spacing((2.0, 3.0, 4.0)))  # fmt: skip
    for keyword in ("PixelValueTransformationSequence", "RealWorldValueMappingSequence"):
        assert placement(ds, keyword) == "shared", keyword
    mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    units = mapping.MeasurementUnitsCodeSequence[0]
    assert (units.CodeValue, units.CodingSchemeDesignator, units.CodeMeaning) == ("{counts}", "UCUM", "Counts")
    assert mapping.LUTLabel == "CNTS" and float(mapping.RealWorldValueSlope) == 1.0
    np.testing.assert_array_equal(ds.pixel_array, counts)


def test_the_default_window_is_the_single_frame_series_one(tmp_path):
    volume = activity((12, 3, 4), scale=500.0) + 100
    volume[2] *= 20  # a hot slice does not set it
    ds = pydicom.dcmread(write(volume, tmp_path / "mf"))
    window = ds.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence[0]
    series = pydicom.dcmread(write_series(volume, tmp_path / "sf", spacing=(2.0, 3.0, 4.0), metadata=METADATA)[0])
    width = np.percentile(volume.max(axis=(1, 2)), 90)
    assert float(window.WindowWidth) == float(series.WindowWidth) == pytest.approx(width, rel=1e-5)
    assert float(window.WindowCenter) == float(series.WindowCenter) == pytest.approx(width / 2, rel=1e-5)


# -- metadata, said the Enhanced PET way ----------------------------------------------------------


def test_pet_series_metadata_becomes_enhanced_pet_attributes(tmp_path):
    metadata = {
        **METADATA,
        "CorrectedImage": ["DECY", "ATTN", "SCAT", "RAN", "NORM"],
        "ScatterCorrectionMethod": "single scatter simulation",
        "RandomsCorrectionMethod": "DLYD",
        "patient_position": "FFS",
        "ImageLaterality": "B",
        "WindowCenter": 500,
        "WindowWidth": 1000,
        "ReconstructionMethod": "OSEM 3i21s",  # a PET Series attribute Enhanced PET does not have
    }
    volume = activity((2, 3, 4))
    ds = check_file(write(volume, tmp_path / "mf", metadata=metadata), volume, affine_from_spacing((2.0, 3.0, 4.0)))
    flags = {keyword: ds[keyword].value for keyword in multiframe.CORRECTION_FLAGS.values()}
    assert {k for k, v in flags.items() if v == "YES"} == {
        "AttenuationCorrected", "ScatterCorrected", "RandomsCorrected", "DetectorNormalizationCorrection",
    }  # fmt: skip
    assert ds.DecayCorrected == "YES" and ds.AttenuationCorrectionSource == "CT"
    assert ds.PatientPosition == "FFS" and "PatientOrientationCodeSequence" not in ds
    said_otherwise = ("CorrectedImage", "Units", "DecayCorrection", "SeriesType", "ImageLaterality")
    for keyword in said_otherwise + ("ReconstructionMethod",):
        assert keyword not in ds, keyword
    shared = ds.SharedFunctionalGroupsSequence[0]
    assert shared.FrameAnatomySequence[0].FrameLaterality == "B"
    assert (shared.FrameVOILUTSequence[0].WindowCenter, shared.FrameVOILUTSequence[0].WindowWidth) == (500, 1000)
    item = ds.RadiopharmaceuticalInformationSequence[0]
    assert float(item.RadionuclideTotalDose) == 370.0  # MBq here; Bq in the single-frame series
    assert item.RadiopharmaceuticalStartDateTime == "20250131094500" and item.RadiopharmaceuticalAgentNumber == 1
    assert item.RadiopharmaceuticalCodeSequence[0].CodeValue == "35321007"
    assert item.AdministrationRouteCodeSequence[0].CodeMeaning == "Intravenous route"
    assert "Radiopharmaceutical" not in item and "RadiopharmaceuticalStartTime" not in item


def test_no_decay_correction_writes_no_decay_date_time(tmp_path):
    volume = activity((2, 3, 4))
    metadata = {**METADATA, "DecayCorrection": "NONE", "CorrectedImage": ["ATTN"]}
    ds = check_file(write(volume, tmp_path / "mf", metadata=metadata), volume, affine_from_spacing((2.0, 3.0, 4.0)))
    assert ds.DecayCorrected == "NO" and "DecayCorrectionDateTime" not in ds


def test_without_attenuation_correction_its_source_is_not_written(tmp_path):
    metadata = {**METADATA, "CorrectedImage": ["DECY"]}
    ds = pydicom.dcmread(write(activity((2, 3, 4)), tmp_path / "mf", metadata=metadata))
    assert ds.AttenuationCorrected == "NO"
    assert "AttenuationCorrectionSource" not in ds and "AttenuationCorrectionTemporalRelationship" not in ds


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({k: v for k, v in METADATA.items() if k not in RADIOPHARMACEUTICAL_KEYS}, "isotope, injection_datetime"),
        ({**METADATA, "radiopharmaceutical": "Choline"}, r"RadiopharmaceuticalCodeSequence \(0054,0304\).*'Choline'"),
        ({**METADATA, "Units": "HU"}, r"Units \(0054,1001\) 'HU'"),
    ],
    ids=["no radiopharmaceutical", "unknown radiopharmaceutical", "units"],
)  # fmt: skip
def test_what_an_enhanced_pet_image_cannot_do_without_is_asked_for(tmp_path, metadata, message):
    with pytest.raises(MetadataError, match=message):
        write(activity((2, 3, 4)), tmp_path / "mf", metadata=metadata)
    assert not (tmp_path / "mf").exists()


def test_an_original_image_needs_the_acquisition_facts(tmp_path):
    with pytest.raises(ValidationError) as raised:
        write(activity((2, 3, 4)), tmp_path / "mf", metadata={**METADATA, "ImageType": ["ORIGINAL", "PRIMARY"]})
    named = {problem.keyword.rsplit(".", 1)[-1] for problem in raised.value.problems}
    assert {"TransverseDetectorSeparation", "EnergyWindowRangeSequence", "PETFrameAcquisitionSequence",
            "PETReconstructionSequence", "PETFrameCorrectionFactorsSequence"} <= named  # fmt: skip
    assert not (tmp_path / "mf").exists()


ORIGINAL_METADATA = {
    **DYNAMIC_METADATA,
    "ImageType": ["ORIGINAL", "PRIMARY"],
    "AcquisitionStartCondition": "MANU",
    "AcquisitionTerminationCondition": "TIME",
    "TerminationTimeThreshold": 480.0,
    "TypeOfDetectorMotion": "STATIONARY",
    "DetectorGeometry": "CYLINDRICAL_RING",
    "TransverseDetectorSeparation": 785.0,
    "AxialDetectorDimension": 500.0,
    "CoincidenceWindowWidth": 4.0,
    "EnergyWindowRangeSequence": [{"EnergyWindowLowerLimit": 435, "EnergyWindowUpperLimit": 585}],
    "TimeOfFlightInformationUsed": "TRUE",
    "PETFrameAcquisitionSequence": [{"TableHeight": 100, "GantryDetectorTilt": 0, "GantryDetectorSlew": 0,
                                     "DataCollectionDiameter": 700}],
    "PETPositionSequence": [{"TablePosition": 0.0, "DataCollectionCenterPatient": [0.0, 0.0, 0.0],
                             "ReconstructionTargetCenterPatient": [0.0, 0.0, 0.0]}],
    "PETFrameCorrectionFactorsSequence": [{"PrimaryPromptsCountsAccumulated": 1000000, "SliceSensitivityFactor": 1,
                                           "ScatterFractionFactor": 0.3, "DeadTimeFactor": 1.0}],
    "PETReconstructionSequence": [{"ReconstructionType": "3D", "ReconstructionAlgorithm": "MLEM",
                                   "IterativeReconstructionMethod": "YES", "NumberOfIterations": 3,
                                   "NumberOfSubsets": 21, "ReconstructionDiameter": 700}],
}  # fmt: skip


def test_an_original_image_with_its_acquisition_facts_is_clean_and_carries_the_decay_factors(tmp_path):
    volume = activity((3, 2, 3, 4))
    ds = check_file(write(volume, tmp_path / "mf", metadata=ORIGINAL_METADATA), volume,
                    affine_from_spacing((2.0, 3.0, 4.0)))  # fmt: skip
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    assert placement(ds, "PETFrameCorrectionFactorsSequence") == "per-frame"  # the decay factor differs per time frame
    for keyword in ("PETFrameAcquisitionSequence", "PETPositionSequence", "PETReconstructionSequence"):
        assert placement(ds, keyword) == "shared", keyword
    expected = plan.decay_factors(
        [FrameTiming(s, d) for s, d in zip(DYNAMIC_METADATA["frame_start"], DYNAMIC_METADATA["frame_duration"])],
        "START", F18_HALF_LIFE,
    )  # fmt: skip
    for n in range(6):
        factors = group(ds, n, "PETFrameCorrectionFactorsSequence")
        assert float(factors.DecayFactor) == pytest.approx(expected[n // 2], rel=1e-12)
        assert float(factors.ScatterFractionFactor) == 0.3


@pytest.mark.parametrize(
    "keyword, value",
    [("ContentQualification", "MAYBE"), ("TimeOfFlightInformationUsed", "YES"), ("TableMotion", "MOVING")],
)
def test_enhanced_pet_values_are_checked_against_their_enumerations(tmp_path, keyword, value):
    with pytest.raises(ValidationError, match=rf"{keyword} .*'{value}' is not one of"):
        write(activity((2, 3, 4)), tmp_path / "mf", metadata={**METADATA, keyword: value})
    assert not (tmp_path / "mf").exists()


def test_multi_frame_ct_is_refused(tmp_path):
    with pytest.raises(DcmforgeError, match="multi-frame CT"):
        write_series(np.zeros((2, 3, 4), np.float32), tmp_path / "mf", spacing=(1, 1, 1), modality="CT",
                     multiframe=True)  # fmt: skip


# -- failures leave nothing -------------------------------------------------------------------------


def test_pixel_data_past_4_gib_is_refused_before_anything_is_read(tmp_path):
    assert multiframe.pixel_data_length((2**31 - 1, 1, 1)) == multiframe.MAX_PIXEL_DATA_BYTES == 2**32 - 2
    for shape in [(2**31, 1, 1), (2, 2**14 + 1, 2**16 - 1, 2**16 - 1), (33000, 256, 256)]:
        with pytest.raises(VolumeError, match="single-frame series"):
            multiframe.pixel_data_length(shape)
    # A volume of that size without its memory: every voxel is the same one.
    volume = np.broadcast_to(np.float32(1.0), (33000, 256, 256))
    with pytest.raises(VolumeError, match=r"33000 frames of 256 x 256 pixels are 4325376000 bytes.*single-frame"):
        write(volume, tmp_path / "mf")
    assert not (tmp_path / "mf").exists()


def test_a_nan_leaves_no_file_and_no_folder(tmp_path):
    volume = activity((2, 3, 4, 5))
    volume[1, 2, 1, 3] = np.nan
    with pytest.raises(VolumeError, match="frame 1, slice 2 holds nan at row 1, column 3"):
        write(volume, tmp_path / "out" / "mf", metadata=METADATA | {"frame_duration": [60.0, 60.0]})
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(multiframe, "write_all", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_series(activity((2, 3, 4)), tmp_path / "mf", spacing=(1, 1, 1), metadata=METADATA, multiframe=True)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor the private one it was written in


def test_an_existing_file_needs_overwrite(tmp_path):
    first = write(activity((2, 3, 4)), tmp_path / "mf", seed="a")
    before = first.read_bytes()
    with pytest.raises(OutputExistsError, match=r"mf exists; pass overwrite=True"):
        write(activity((2, 3, 4), seed=9), tmp_path / "mf", seed="a")
    assert first.read_bytes() == before
    write(activity((2, 3, 4), seed=9), tmp_path / "mf", seed="a", overwrite=True)
    assert first.read_bytes() != before


# -- streaming, encoding, UIDs ------------------------------------------------------------------------


def test_streaming_in_small_chunks_and_from_a_memmap_writes_the_same_bytes(tmp_path, monkeypatch):
    volume = activity((2, 5, 4, 3))
    metadata = DYNAMIC_METADATA | {"frame_start": [0, 60], "frame_duration": [60, 60]}
    whole = write(volume, tmp_path / "whole", seed="s", metadata=metadata).read_bytes()
    raw = tmp_path / "volume.raw"
    volume.tofile(raw)
    monkeypatch.setattr(plan, "CHUNK_VOXELS", 2 * 4 * 3)  # two frames per chunk: chunks end inside a time frame
    mapped = np.memmap(raw, np.float32, "r", shape=volume.shape)
    assert write(mapped, tmp_path / "chunked", seed="s", metadata=metadata).read_bytes() == whole


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_per_frame_items_from_templates_equal_the_plain_encoding(signed):
    """The template path (constant parts encoded once) gives the bytes of encoding every item in full."""
    frames = []
    for n in range(6):
        frames.append({
            "FrameContentSequence": [{
                "StackID": "1", "InStackPositionNumber": n % 3 + 1, "TemporalPositionIndex": n // 3 + 1,
                "DimensionIndexValues": [n // 3 + 1, 1, n % 3 + 1],
                "FrameAcquisitionDateTime": ["20250131104500", "20250131104600"][n // 3],
            }],
            "PlanePositionSequence": [{"ImagePositionPatient": [-1.5, 2.25, 4.0 * (n % 3)]}],
            "RealWorldValueMappingSequence": [{
                "RealWorldValueFirstValueMapped": -32768 if signed else 0,
                "RealWorldValueLastValueMapped": 32767 if signed else 65535,
                "RealWorldValueIntercept": 0.0, "RealWorldValueSlope": 0.001 * (n + 1), "LUTExplanation": "Bq/ml",
                "LUTLabel": "BQML",
                "MeasurementUnitsCodeSequence": [
                    {"CodeValue": "Bq/ml", "CodingSchemeDesignator": "UCUM", "CodeMeaning": "Becquerels/milliliter"}
                ],
            }],
        })  # fmt: skip
    plain = encode_element("PerFrameFunctionalGroupsSequence", frames, "ascii", {"PixelRepresentation": int(signed)})
    assert multiframe._encode_per_frame(frames, "ascii", int(signed)) == plain


def test_seeded_files_are_reproducible_and_their_own_series(tmp_path):
    volume = activity((2, 3, 4))
    one = write(volume, tmp_path / "one", seed="run-7")
    two = write(volume, tmp_path / "two", seed="run-7")
    assert one.read_bytes() == two.read_bytes()
    single = pydicom.dcmread(write_series(volume, tmp_path / "sf", spacing=(2.0, 3.0, 4.0), metadata=METADATA,
                                          seed="run-7")[0])  # fmt: skip
    multi = pydicom.dcmread(one)
    assert (multi.StudyInstanceUID, multi.FrameOfReferenceUID) == (single.StudyInstanceUID, single.FrameOfReferenceUID)
    assert multi.SeriesInstanceUID != single.SeriesInstanceUID
    organization = multi.DimensionOrganizationSequence[0].DimensionOrganizationUID
    assert len({multi.SOPInstanceUID, multi.SeriesInstanceUID, organization}) == 3


def test_the_description_is_the_enhanced_pet_one():
    description = iods.description_for("PT", multiframe=True)
    assert description is ENHANCED_PET_IMAGE and description.sop_class_uid == ENHANCED_PET_IMAGE_STORAGE
    defaults = iods.defaults(description)
    assert defaults["ImageType"] == ["DERIVED", "PRIMARY", "VOLUME", "NONE"] and defaults["Modality"] == "PT"
    assert "SharedFunctionalGroupsSequence" not in defaults  # derived by the writer
    rows = {row.keyword for row in iods.attribute(description, "SharedFunctionalGroupsSequence").items}
    assert "FrameContentSequence" not in rows and "PixelMeasuresSequence" in rows


# -- the command ---------------------------------------------------------------------------------------


def test_convert_multiframe_writes_one_clean_file_per_input(tmp_path, capsys):
    volume = activity((3, 4, 5))
    header = write_interfile(tmp_path / "recon.hv", volume, spacing=(2.0, 2.0, 3.0), metadata={
        "isotope": "F-18", "radiopharmaceutical": "FDG", "injected_activity": 3.7e8,
        "injection_datetime": "2025-01-31T09:45:00", "frame_duration": [600.0],
        "StudyDate": "20250131", "StudyTime": "104500", "PatientID": "P1",
    })  # fmt: skip
    status = main(["convert", str(header), "--out", str(tmp_path / "out"), "--multiframe"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "recon.hv -> " in out and ": 1 Enhanced PET file, 5x4x3 voxels" in out
    (path,) = (tmp_path / "out" / "recon").iterdir()
    assert path.name == "PT_multiframe.dcm"
    ds = pydicom.dcmread(path)
    assert ds.NumberOfFrames == 3 and ds.SOPClassUID == ENHANCED_PET_IMAGE_STORAGE
    report = dciodvfy(path)
    assert report.errors == [] and report.warnings == [], report.output


def test_convert_multiframe_names_a_volume_too_large_and_converts_nothing(tmp_path, capsys, monkeypatch):
    header = write_interfile(tmp_path / "big.hv", activity((3, 4, 5)), spacing=(1, 1, 1), metadata={"isotope": "F-18"})
    monkeypatch.setattr(multiframe, "MAX_PIXEL_DATA_BYTES", 3 * 4 * 5 * 2 - 2)  # this volume is 2 bytes too many
    status = main(["convert", str(header), "--out", str(tmp_path / "out"), "--multiframe"])
    out, err = capsys.readouterr()
    assert status == 2 and "big.hv" in err and "single-frame series" in err
    assert not (tmp_path / "out" / "big").exists()
