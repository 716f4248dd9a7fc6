"""What readers with default settings need from every series: one PixelRepresentation (dicom-numpy), a window
in every file (Orthanc's Web Viewer, dcm2pnm), one series per time frame on request (GDCM, ITK, plastimatch)."""

import dicom_numpy
import numpy as np
import pydicom
import pytest

from dcmforge import SeriesWriter, write_series
from dicom_tools import dciodvfy
from volumes import activity

PET_METADATA = {"PatientName": "Defaults^Test", "StudyDate": "20250101", "StudyTime": "100000"}
CT_METADATA = {"PatientName": "Defaults^Test", "StudyDate": "20250101", "StudyTime": "100000"}


def read(paths):
    return [pydicom.dcmread(p) for p in paths]


def assert_dicom_numpy_reads(datasets, volume):
    """dicom-numpy (default settings) combines the files; every voxel within half its slice's step."""
    voxels, _ = dicom_numpy.combine_slices(datasets)
    array = voxels.T.astype(np.float64)  # dicom-numpy gives [column, row, slice], in float32
    assert array.shape == volume.shape
    half_steps = np.array([float(ds.RescaleSlope) / 2 for ds in datasets])[:, None, None]
    float32_rounding = np.spacing(np.float32(np.abs(volume).max()))
    assert np.all(np.abs(array - volume) <= half_steps * (1 + 1e-9) + float32_rounding)


@pytest.mark.parametrize("negative", [1, 10])
def test_dicom_numpy_reads_a_series_with_one_negative_slice(tmp_path, negative):
    # 12 slices of 256 x 256: write_series reads 8 at a time, so slice 10 is found after 8 files are written.
    volume = activity((12, 256, 256), seed=negative)
    volume[negative, 5, 7] = -3.5
    paths = write_series(volume, tmp_path / "series", spacing=(2, 2, 2), metadata=PET_METADATA)
    datasets = read(paths)
    assert {ds.PixelRepresentation for ds in datasets} == {1}
    assert_dicom_numpy_reads(datasets, volume)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]  # the first try left nothing behind
    assert not dciodvfy(paths[negative]).errors


def test_streamed_series_is_signed_from_its_first_negative_slice(tmp_path):
    volume = activity((4, 6, 5))
    volume[0, 0, 0] = -1.0
    with SeriesWriter(tmp_path / "s", volume.shape, spacing=(1, 1, 1), metadata=PET_METADATA) as series:
        for image in volume:
            series.write_slice(image)
    datasets = read(series.paths)
    assert [ds.PixelRepresentation for ds in datasets] == [1, 1, 1, 1]
    assert_dicom_numpy_reads(datasets, volume)


def test_pet_files_carry_one_window_from_zero_to_a_robust_maximum(tmp_path):
    volume = activity((20, 8, 9), scale=100.0)
    volume[3] *= 50  # a hot slice (a bladder) does not set the window
    volume[0] = 0  # an empty first slice does not either (Orthanc's Web Viewer took WW 4 from it)
    paths = write_series(volume, tmp_path / "pet", spacing=(2, 2, 2), metadata=PET_METADATA)
    datasets = read(paths)
    windows = {(float(ds.WindowCenter), float(ds.WindowWidth)) for ds in datasets}
    assert len(windows) == 1
    center, width = windows.pop()
    assert center == pytest.approx(width / 2)
    assert width == pytest.approx(np.percentile(volume.max(axis=(1, 2)), 90), rel=1e-5)
    assert volume[1:].max(axis=(1, 2)).min() <= width < volume[3].max()
    assert not dciodvfy(paths[0]).errors
    # The same window when the series is streamed, and in a dynamic series (one for all frames).
    with SeriesWriter(tmp_path / "streamed", volume.shape, spacing=(2, 2, 2), metadata=PET_METADATA) as series:
        series.write_slices(volume[:7])
        series.write_slices(volume[7:])
    assert {(float(ds.WindowCenter), float(ds.WindowWidth)) for ds in read(series.paths)} == {(center, width)}


def test_a_window_is_at_least_1_wide(tmp_path):
    volume = activity((3, 4, 5), scale=0.01)
    datasets = read(write_series(volume, tmp_path / "small", spacing=(1, 1, 1), metadata=PET_METADATA))
    assert {(float(ds.WindowCenter), float(ds.WindowWidth)) for ds in datasets} == {(0.5, 1.0)}


def test_ct_files_carry_the_soft_tissue_window(tmp_path):
    hu = np.linspace(-1000, 1000, 3 * 4 * 5).reshape(3, 4, 5)
    paths = write_series(hu, tmp_path / "ct", spacing=(1, 1, 1), modality="CT", metadata=CT_METADATA)
    assert {(float(ds.WindowCenter), float(ds.WindowWidth)) for ds in read(paths)} == {(40.0, 400.0)}
    assert not dciodvfy(paths[0]).errors


@pytest.mark.parametrize("modality", ["PT", "CT"])
def test_the_users_window_wins(tmp_path, modality):
    volume = activity((3, 4, 5)) if modality == "PT" else np.zeros((3, 4, 5))
    metadata = {**PET_METADATA, "WindowCenter": [150, 300], "WindowWidth": [300, 600]}
    paths = write_series(volume, tmp_path / "s", spacing=(1, 1, 1), modality=modality, metadata=metadata)
    for ds in read(paths):
        assert [float(v) for v in ds.WindowCenter] == [150, 300] and [float(v) for v in ds.WindowWidth] == [300, 600]
