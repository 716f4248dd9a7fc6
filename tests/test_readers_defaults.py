"""What readers with default settings need from every series: one PixelRepresentation (dicom-numpy), a window
in every file (Orthanc's Web Viewer, dcm2pnm), one series per time frame on request (GDCM, ITK, plastimatch)."""

import os
import dicom_numpy
import nibabel
import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcmforge import SeriesWriter, VolumeError, write_series
from dcmforge.cli import main
from dcmforge.write.commit import SeriesFolder
from dcmforge.write.plan import percentile
from dicom_tools import dciodvfy
from oracles import allowed_value_error, read_with_simpleitk
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
    slopes = np.array([float(ds.RescaleSlope) for ds in datasets])[:, None, None]
    float32_rounding = np.spacing(np.float32(np.abs(volume).max()))
    assert np.all(np.abs(array - volume) <= allowed_value_error(slopes, volume, volume.dtype) + float32_rounding)


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


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(st.floats(-1e30, 1e30, allow_nan=False) | st.integers(0, 5).map(float), min_size=1, max_size=40),
    st.floats(0, 100) | st.sampled_from([0.0, 50.0, 90.0, 100.0]),
)
def test_the_window_percentile_is_numpys(values, q):
    """plan.percentile (by partition, without numpy.ma) gives np.percentile's value exactly."""
    assert percentile(values, q) == float(np.percentile(values, q))


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


# -- one series per time frame ------------------------------------------------------------------

DYNAMIC_METADATA = {
    "PatientName": "Dynamic^Test", "isotope": "F-18", "injected_activity": 3.7e8,
    "injection_datetime": "2025-01-01T09:00:00", "acquisition_datetime": "2025-01-01T10:00:00",
    "frame_start": [0, 60, 180], "frame_duration": [60, 120, 300],
}  # fmt: skip
PER_FRAME = ("FrameReferenceTime", "ActualFrameDuration", "DecayFactor", "AcquisitionTime")


def test_split_frames_writes_one_series_per_frame_that_simpleitk_reads(tmp_path):
    volume = activity((3, 5, 6, 7), seed=9)
    kwargs = dict(spacing=(2.0, 3.0, 4.0), metadata=DYNAMIC_METADATA, seed="split")
    paths = write_series(volume, tmp_path / "split", split_frames=True, **kwargs)
    dynamic = read(write_series(volume, tmp_path / "dynamic", **kwargs))
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["frame_01", "frame_02", "frame_03"]
    series_uids = set()
    for t in range(3):
        frame_paths = sorted((tmp_path / "split" / f"frame_{t + 1:02d}").iterdir())
        assert paths[5 * t : 5 * t + 5] == frame_paths
        image = read_with_simpleitk(frame_paths)  # GDCM's series reader, as ITK and plastimatch use it
        assert image.array.shape == (5, 6, 7)
        np.testing.assert_allclose(np.linalg.norm(image.affine[:3, :3], axis=0), [2.0, 3.0, 4.0])
        slopes = np.array([float(ds.RescaleSlope) for ds in read(frame_paths)])[:, None, None]
        assert np.all(np.abs(image.array - volume[t]) <= allowed_value_error(slopes, volume[t], volume.dtype))
        datasets = read(frame_paths)
        series_uids |= {ds.SeriesInstanceUID for ds in datasets}
        for ds, same_slice in zip(datasets, dynamic[5 * t : 5 * t + 5]):
            assert ds.SeriesDescription == f"frame {t + 1}/3"
            assert ds.StudyInstanceUID == same_slice.StudyInstanceUID
            assert ds.FrameOfReferenceUID == same_slice.FrameOfReferenceUID
            assert ds.SeriesTime == same_slice.SeriesTime
            assert [ds.get(k) for k in PER_FRAME] == [same_slice.get(k) for k in PER_FRAME]
            assert ds.ImagePositionPatient == same_slice.ImagePositionPatient
        assert not dciodvfy(frame_paths[0]).errors
    assert len(series_uids) == 3


def test_split_frames_on_the_command_line(tmp_path, capsys):
    data = activity((6, 5, 4, 2), seed=4)  # nibabel's [i, j, k, t]
    image = nibabel.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0]))
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][4] = 60.0
    nibabel.save(image, tmp_path / "dyn.nii")
    code = main(["convert", str(tmp_path / "dyn.nii"), "--out", str(tmp_path / "out"), "--split-frames"])
    assert code == 0, capsys.readouterr()
    assert "8 PT files in 2 series, one per time frame" in capsys.readouterr().out
    for t in range(2):
        frame_paths = sorted((tmp_path / "out" / "dyn" / f"frame_{t + 1:02d}").iterdir())
        assert len(frame_paths) == 4
        assert read_with_simpleitk(frame_paths).array.shape == (4, 5, 6)
    assert main(["convert", str(tmp_path / "dyn.nii"), "--out", str(tmp_path / "o2"), "--split-frames",
                 "--multiframe"]) == 2  # fmt: skip


def test_split_frames_leaves_nothing_when_a_frame_fails(tmp_path):
    volume = activity((3, 4, 5, 6))
    volume[2, 1, 1, 1] = np.nan
    with pytest.raises(VolumeError, match="NaN"):
        write_series(volume, tmp_path / "split", split_frames=True, spacing=(1, 1, 1), metadata=DYNAMIC_METADATA)
    assert not list(tmp_path.iterdir())


def test_an_interrupt_while_the_window_is_written_leaves_no_folder(tmp_path, monkeypatch):
    real_patch = SeriesFolder.patch

    def interrupted_at_the_second(folder, name, offset, data, fd=None):
        if name == "PT_0002.dcm":
            raise KeyboardInterrupt
        real_patch(folder, name, offset, data, fd)

    monkeypatch.setattr(SeriesFolder, "patch", interrupted_at_the_second)
    descriptors = os.listdir("/proc/self/fd")
    with pytest.raises(KeyboardInterrupt):
        # Streamed, the window is known only at the end, when every file is written.
        with SeriesWriter(tmp_path / "s", (3, 4, 5), spacing=(1, 1, 1), metadata=PET_METADATA) as series:
            series.write_slices(activity((3, 4, 5)))
    assert not list(tmp_path.iterdir())
    assert len(os.listdir("/proc/self/fd")) == len(descriptors)  # the descriptors the writes kept are closed
