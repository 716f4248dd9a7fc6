"""dcmforge's output read the way users' viewers read it, with their default settings (issue 10).

SimpleITK's ImageSeriesReader picks one pixel type for a whole series from its
first file's rescale (GDCM: an integer type when the slope is whole), so an
empty first slice must not carry slope 1.
"""

import re
import subprocess

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_tools import dcentvfy, dciodvfy, require
from oracles import affine_from_spacing, allowed_value_error, matched_to, read_with_dcm2niix
from test_multiframe import METADATA as ENHANCED_METADATA
from test_series import PET_METADATA

from dcmforge import SeriesWriter, new_study, write_series
from dcmforge.cli import main
from dcmforge.errors import DcmforgeError, MetadataError
from dcmforge.readers.interfile import write_interfile


def peaked_volume():
    """Float PET slices: the first and last empty, fractions, a peak above 65535 (uint16 would wrap it)."""
    volume = np.random.default_rng(10).random((6, 5, 7)).astype(np.float32) * 4000 + 0.25
    volume[0] = 0
    volume[-1] = 0
    volume[2, 1, 1] = 100000.5
    volume[3, 2, 2] = 3821.153
    return volume


def read_series_as_itk_does(folder):
    """ImageSeriesReader with default settings, files in GDCM's order: (array [z, y, x], pixel type)."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    return sitk.GetArrayFromImage(image).astype(np.float64), image.GetPixelIDTypeAsString()


def slopes_of(paths):
    reader = sitk.ImageFileReader()
    slopes = []
    for path in paths:
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        slopes.append(float(reader.GetMetaData("0028|1053")))
    return np.array(slopes)


def assert_within_half_a_step(array, volume, slopes):
    """Half a slope per slice, plus what packing float32 voxels in float32 may add (oracles.allowed_value_error)."""
    assert array.shape == volume.shape
    excess = np.abs(array - volume) - allowed_value_error(slopes[:, None, None], volume, volume.dtype)
    assert excess.max() <= 0, f"a voxel is off by more than half its slice's slope (worst excess {excess.max()})"


def test_simpleitk_series_reader_reads_real_values_when_the_first_slice_is_empty(tmp_path):
    volume = peaked_volume()
    paths = write_series(volume, tmp_path / "pet", spacing=(2.0, 2.0, 3.0), metadata=PET_METADATA)
    slopes = slopes_of(paths)
    assert slopes[0] == slopes[1] and slopes[-1] == slopes[-2]  # the empty slices take their neighbour's slope
    assert all(s != np.floor(s) for s in slopes)  # a whole slope would make GDCM choose integers
    array, pixel_type = read_series_as_itk_does(tmp_path / "pet")
    assert "float" in pixel_type, pixel_type
    assert_within_half_a_step(array, volume, slopes)
    assert abs(array[2, 1, 1] - 100000.5) <= slopes[2] / 2 and abs(array[3, 2, 2] - 3821.153) <= slopes[3] / 2


def test_simpleitk_series_reader_reads_a_streamed_series_that_starts_empty(tmp_path):
    volume = peaked_volume()
    with SeriesWriter(tmp_path / "pet", volume.shape, spacing=(2.0, 2.0, 3.0), metadata=PET_METADATA) as series:
        for plane in volume:  # one slice per call: the empty first slice has no neighbour yet
            series.write_slice(plane)
    slopes = slopes_of(series.paths)
    assert slopes[-1] == slopes[-2]  # the last slice written before it
    array, pixel_type = read_series_as_itk_does(tmp_path / "pet")
    assert "float" in pixel_type, pixel_type
    assert_within_half_a_step(array, volume, slopes)


# -- Enhanced PET: one rescale for the file, which every reader applies -------------------------


def write_enhanced(volume, folder, **kwargs):
    paths = write_series(volume, folder, spacing=(2.0, 2.0, 3.0), metadata=ENHANCED_METADATA, multiframe=True, **kwargs)
    return paths[0]


def shared_rescale(ds):
    """What a reader that knows only one rescale per file finds: the shared Pixel Value Transformation."""
    per_frame = ds.PerFrameFunctionalGroupsSequence
    assert not any("PixelValueTransformationSequence" in item for item in per_frame)
    item = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    return float(item.RescaleSlope), float(item.RescaleIntercept)


def test_enhanced_pet_values_read_by_simpleitk_and_by_a_naive_pydicom_reader(tmp_path):
    volume = peaked_volume()
    path = write_enhanced(volume, tmp_path / "mf")
    ds = pydicom.dcmread(path)
    slope, intercept = shared_rescale(ds)
    assert intercept == 0.0 and volume.max() / 65535 <= slope <= volume.max() / 65535 * (1 + 1e-9)
    naive = ds.pixel_array.astype(np.float64) * slope + intercept  # no per-frame handling at all
    assert_within_half_a_step(naive, volume, np.full(len(volume), slope))
    image = sitk.ReadImage(str(path))  # default settings
    assert "float" in image.GetPixelIDTypeAsString()
    assert_within_half_a_step(sitk.GetArrayFromImage(image).astype(np.float64), volume, np.full(len(volume), slope))
    mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert (float(mapping.RealWorldValueSlope), float(mapping.RealWorldValueIntercept)) == (slope, intercept)
    image = matched_to(read_with_dcm2niix(tmp_path / "mf", tmp_path / "nifti"), affine_from_spacing((2.0, 2.0, 3.0)))
    # dcm2niix hands back float32: a relative 1e-6 on top of half a step
    assert_within_half_a_step(image.array, volume, np.full(len(volume), slope + 1e-6 * float(volume.max())))


def test_enhanced_pet_signed_values_share_max_magnitude_over_32767(tmp_path):
    volume = peaked_volume() - 500.0
    ds = pydicom.dcmread(write_enhanced(volume, tmp_path / "mf"))
    slope, _ = shared_rescale(ds)
    peak = float(np.abs(volume).max())
    assert ds.PixelRepresentation == 1 and peak / 32767 <= slope <= peak / 32767 * (1 + 1e-9)
    naive = ds.pixel_array.astype(np.float64) * slope
    assert_within_half_a_step(naive, volume, np.full(len(volume), slope))


@pytest.mark.parametrize("scaling", [None, "slice"])
def test_enhanced_pet_is_clean_for_dciodvfy_with_either_scaling(tmp_path, scaling):
    report = dciodvfy(write_enhanced(peaked_volume(), tmp_path / "mf", scaling=scaling))
    assert report.errors == [] and report.warnings == [], report.output


def test_unknown_scaling_is_refused(tmp_path):
    with pytest.raises(DcmforgeError, match=r"scaling='frame': one of 'volume', 'slice'"):
        write_enhanced(peaked_volume(), tmp_path / "mf", scaling="frame")
    with pytest.raises(DcmforgeError, match=r"scaling='volume': a series of single-frame files"):
        write_series(peaked_volume(), tmp_path / "sf", spacing=(1, 1, 1), metadata=PET_METADATA, scaling="volume")


def test_convert_multiframe_shares_one_rescale_unless_per_slice_scaling_is_asked_for(tmp_path, capsys):
    header = write_interfile(tmp_path / "recon.hv", peaked_volume(), spacing=(2.0, 2.0, 3.0), metadata={
        "isotope": "F-18", "radiopharmaceutical": "FDG", "injected_activity": 3.7e8,
        "injection_datetime": "2025-01-31T09:45:00", "frame_duration": [600.0],
        "StudyDate": "20250131", "StudyTime": "104500", "PatientID": "P1",
    })  # fmt: skip
    for flags, where in (([], "shared"), (["--per-slice-scaling"], "per-frame")):
        out = tmp_path / where
        assert main(["convert", str(header), "--out", str(out), "--multiframe", *flags]) == 0, capsys.readouterr().err
        ds = pydicom.dcmread(out / "recon" / "PT_multiframe.dcm")
        in_frames = ["PixelValueTransformationSequence" in item for item in ds.PerFrameFunctionalGroupsSequence]
        assert all(in_frames) if where == "per-frame" else not any(in_frames), where
    assert main(["convert", str(header), "--out", str(tmp_path / "sf"), "--per-slice-scaling"]) == 2
    assert "--per-slice-scaling is for --multiframe" in capsys.readouterr().err
    assert not (tmp_path / "sf").exists()


# -- PET and CT of one scan in one study -----------------------------------------------------------

STUDY_KEYS = ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "FrameOfReferenceUID")


def hounsfield(shape):
    return np.random.default_rng(11).uniform(-1000, 1500, shape).round()


@pytest.mark.parametrize("multiframe", [False, True])
def test_pet_and_ct_given_one_study_share_it_and_dcentvfy_agrees(tmp_path, multiframe):
    study = new_study(seed="scan-1", when="2025-01-31T10:40:00")
    pet = write_series(peaked_volume(), tmp_path / "pet", spacing=(2.0, 2.0, 3.0), metadata=ENHANCED_METADATA,
                       multiframe=multiframe, study=study)  # fmt: skip
    # the patient's facts are the caller's to give alike (PatientWeight is a study-level attribute)
    ct_metadata = {"PatientID": "PHANTOM-1", "PatientWeight": 70.0, "acquisition_datetime": "2025-01-31T10:41:00"}
    ct = write_series(hounsfield((4, 5, 7)), tmp_path / "ct", spacing=(1.0, 1.0, 2.0), modality="CT",
                      metadata=ct_metadata, study=study)  # fmt: skip
    datasets = [pydicom.dcmread(path) for path in [*pet, *ct]]
    for keyword in STUDY_KEYS:
        assert {str(ds[keyword].value) for ds in datasets} == {str(study[keyword])}, keyword
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 2
    assert {ds.SeriesTime for ds in datasets[len(pet):]} == {"104100"}  # each series keeps its own time
    report = dcentvfy([*pet, *ct])
    assert report.errors == [] and report.warnings == [], report.output
    for path in (pet[0], ct[0]):
        report = dciodvfy(path)
        assert report.errors == [] and report.warnings == [], report.output


def test_without_a_study_each_call_makes_its_own(tmp_path):
    pet = write_series(peaked_volume(), tmp_path / "pet", spacing=(2.0, 2.0, 3.0), metadata=PET_METADATA)
    ct = write_series(hounsfield((4, 5, 7)), tmp_path / "ct", spacing=(1, 1, 2), modality="CT",
                      metadata={"PatientID": "PHANTOM-1"})  # fmt: skip
    assert pydicom.dcmread(pet[0]).StudyInstanceUID != pydicom.dcmread(ct[0]).StudyInstanceUID


def test_a_study_that_contradicts_the_metadata_is_refused(tmp_path):
    study = new_study(when="2025-01-31T10:40:00")
    with pytest.raises(MetadataError, match=r"StudyInstanceUID: the metadata says '1.2.3', the study"):
        write_series(peaked_volume(), tmp_path / "pet", spacing=(1, 1, 1), study=study,
                     metadata={**PET_METADATA, "StudyInstanceUID": "1.2.3"})  # fmt: skip
    with pytest.raises(MetadataError, match=r"study: PatientID is not shared by a study"):
        write_series(peaked_volume(), tmp_path / "pet", spacing=(1, 1, 1), study={**study, "PatientID": "X"},
                     metadata=PET_METADATA)  # fmt: skip
    with pytest.raises(MetadataError, match=r"study time 'yesterday'"):
        new_study(when="yesterday")
    assert not (tmp_path / "pet").exists()


def test_convert_one_study_puts_a_pet_and_its_ct_in_the_first_inputs_study(tmp_path, capsys):
    patient = {"PatientID": "P1", "PatientName": "Phantom^One", "PatientWeight": 70.0}
    pet = write_interfile(tmp_path / "pet.hv", peaked_volume(), spacing=(2.0, 2.0, 3.0), metadata={
        **patient, "isotope": "F-18", "radiopharmaceutical": "FDG", "injected_activity": 3.7e8,
        "injection_datetime": "2025-01-31T09:45:00", "frame_duration": [600.0],
        "StudyDate": "20250131", "StudyTime": "104500",
    })  # fmt: skip
    ct = write_interfile(tmp_path / "ct.hv", hounsfield((4, 5, 7)).astype(np.float32), spacing=(1.0, 1.0, 2.0),
                         metadata={**patient, "modality": "CT", "StudyDate": "20250131", "StudyTime": "104000"})  # fmt: skip
    for flags, out in (([], tmp_path / "apart"), (["--one-study"], tmp_path / "one")):
        assert main(["convert", str(pet), str(ct), "--out", str(out), "--seed", "s", *flags]) == 0, capsys.readouterr().err
    apart = [pydicom.dcmread(next((tmp_path / "apart" / name).iterdir())) for name in ("pet", "ct")]
    assert apart[0].StudyInstanceUID != apart[1].StudyInstanceUID
    files = sorted((tmp_path / "one").rglob("*.dcm"))
    datasets = [pydicom.dcmread(path) for path in files]
    assert {ds.Modality for ds in datasets} == {"PT", "CT"}
    for keyword in STUDY_KEYS:
        assert len({str(ds[keyword].value) for ds in datasets}) == 1, keyword
    assert (datasets[0].StudyDate, datasets[0].StudyTime) == ("20250131", "104500")  # the first input's
    report = dcentvfy(files)
    assert report.errors == [] and report.warnings == [], report.output


# -- AMIDE: it reads through dcmtk, taking the first value found, sequences searched in tag order ----------


def first_found(path, keyword):
    """The value dcmtk's recursive search meets first (AMIDE's findAndGet...(searchIntoSub) calls), or None."""
    require("dcmdump")
    done = subprocess.run(["dcmdump", "-s", "+P", keyword, str(path)], capture_output=True, text=True, check=True)
    values = re.findall(r"\[([^\]]*)\]", done.stdout)
    return values[0] if values else None


def test_the_first_rescale_dcmtk_finds_is_the_files_one_so_amide_applies_it_to_every_frame(tmp_path):
    volume = peaked_volume()
    path = write_enhanced(volume, tmp_path / "mf")
    slope, _ = shared_rescale(pydicom.dcmread(path))
    assert float(first_found(path, "RescaleSlope")) == slope
    assert float(first_found(path, "RescaleIntercept")) == 0.0
    # per frame, the first one found is the first frame's, which AMIDE would apply to every frame
    per_frame = write_enhanced(volume, tmp_path / "frames", scaling="slice")
    slopes = {float(item.PixelValueTransformationSequence[0].RescaleSlope)
              for item in pydicom.dcmread(per_frame).PerFrameFunctionalGroupsSequence}  # fmt: skip
    assert len(slopes) > 1 and float(first_found(per_frame, "RescaleSlope")) in slopes
    # what AMIDE reads for units and frame duration is not part of an Enhanced PET image (README: AMIDE's limits)
    for keyword in ("Units", "ActualFrameDuration", "RadiopharmaceuticalStartTime"):
        assert first_found(path, keyword) is None, keyword
