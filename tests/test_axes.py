"""nibabel's axis order: a nibabel image is written where nibabel says its voxels are; a bare array with
an affine must name its axis order (axes="xyz" or "zyx") or is refused; nothing is transposed silently."""

import nibabel
import numpy as np
import pydicom
import pytest

import dcmforge
from dcmforge import GeometryError, SeriesWriter, write_series
from oracles import RAS_TO_LPS, allowed_value_error, read_nifti, read_with_dcm2niix, read_with_simpleitk
from volumes import activity

# [i, j, k] of three different lengths, so any transposition changes the shape.
SHAPE_IJK = (12, 10, 7)
# Radiological storage (i towards the patient's left: x step negative in RAS), a shifted origin.
AFFINE_RAS = np.array([[-2.0, 0, 0, 40.0], [0, 3.0, 0, -15.0], [0, 0, 4.0, 20.0], [0, 0, 0, 1]])
METADATA = {"PatientName": "Axes^Test"}


def nibabel_image(shape=SHAPE_IJK, affine=AFFINE_RAS):
    return nibabel.Nifti1Image(activity(shape, seed=3), affine)


def assert_where_nibabel_says(read, image, tolerance):
    """Every voxel of ``read`` (an oracles.Image: [z, y, x] over an index -> LPS affine) is the voxel of
    the nibabel ``image`` at the same RAS position."""
    ras = RAS_TO_LPS @ read.affine  # over (x, y, z): the read array's [z, y, x] transposed
    to_image = np.linalg.inv(image.affine) @ ras  # read index (x, y, z) -> image index (i, j, k)
    steps = np.round(to_image)
    assert np.allclose(to_image, steps, atol=1e-4), to_image.round(4)
    array = read.array.T  # [x, y, z]
    assert sorted(np.abs(steps[:3, :3]).sum(axis=0)) == [1, 1, 1] and array.shape == tuple(
        int(n) for n in np.abs(steps[:3, :3]) @ array.shape
    ) == image.shape, (steps, array.shape)
    index = np.indices(array.shape).reshape(3, -1)
    target = (steps[:3, :3] @ index + steps[:3, 3:]).astype(int)
    expected = np.asarray(image.dataobj)[tuple(target)]
    assert np.max(np.abs(array.reshape(-1) - expected)) <= tolerance


def half_step(values):
    """Half the largest slice's slope, plus what packing float32 in float32 may add (oracles.allowed_value_error)."""
    values = np.asarray(values)
    return float(np.max(allowed_value_error(values.max() / 65535 * (1 + 1e-9), values, values.dtype)))


def test_nibabel_image_lands_where_nibabel_says_in_simpleitk_and_dcm2niix(tmp_path):
    image = nibabel_image()
    paths = write_series(image, tmp_path / "series", metadata=METADATA)
    assert len(paths) == SHAPE_IJK[2]  # one file per k, not per i
    # Each slice has its own slope: half the largest slope bounds every voxel's error.
    tolerance = half_step(image.dataobj)
    assert_where_nibabel_says(read_with_simpleitk(paths), image, tolerance)
    # dcm2niix's NIfTI holds float32 values or a float32 slope: one step (twice the half) covers it.
    assert_where_nibabel_says(read_with_dcm2niix(tmp_path / "series", tmp_path / "nifti"), image, 2 * tolerance)


def test_array_with_affine_must_name_its_axis_order(tmp_path):
    image = nibabel_image()
    with pytest.raises(GeometryError, match=r'axes="xyz" for nibabel\'s \[i, j, k\]') as refused:
        write_series(image.get_fdata(), tmp_path / "bare", affine=image.affine, affine_convention="RAS")
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "bare").exists()
    with pytest.raises(GeometryError, match="axis order"):
        SeriesWriter(tmp_path / "stream", SHAPE_IJK, affine=image.affine, affine_convention="RAS")
    with pytest.raises(dcmforge.DcmforgeError, match="axes='ijk'"):
        write_series(image.get_fdata(), tmp_path / "bad", axes="ijk", affine=image.affine, affine_convention="RAS")
    assert not list(tmp_path.iterdir())


def test_named_orders_write_the_same_files_as_the_image(tmp_path):
    image = nibabel_image()
    data = np.asarray(image.dataobj)
    common = dict(affine=image.affine, affine_convention="RAS", metadata=METADATA, seed="axes")
    from_image = write_series(image, tmp_path / "image", metadata=METADATA, seed="axes")
    from_xyz = write_series(data, tmp_path / "xyz", axes="xyz", **common)
    from_zyx = write_series(np.ascontiguousarray(data.T), tmp_path / "zyx", axes="zyx", **common)
    with SeriesWriter(tmp_path / "stream", data.shape, axes="xyz", **common) as series:
        series.write_slice(data[:, :, 0])  # nibabel's slice k: [i, j]
        series.write_slices(data[:, :, 1:4])  # [i, j, n]
        for k in range(4, data.shape[2]):
            series.write_slice(data[:, :, k])
    expected = [pydicom.dcmread(p) for p in from_image]
    for paths in (from_xyz, from_zyx, series.paths):
        written = [pydicom.dcmread(p) for p in paths]
        assert len(written) == len(expected)
        for ds, reference in zip(written, expected):
            assert ds.PixelData == reference.PixelData and ds.RescaleSlope == reference.RescaleSlope
            assert ds.ImagePositionPatient == reference.ImagePositionPatient
            assert ds.ImageOrientationPatient == reference.ImageOrientationPatient
            assert ds.SOPInstanceUID == reference.SOPInstanceUID


def test_dynamic_nibabel_image_is_i_j_k_t(tmp_path):
    data = activity((6, 5, 4, 3), seed=5)
    image = nibabel.Nifti1Image(data, AFFINE_RAS)
    paths = write_series(image, tmp_path / "dynamic", metadata={"frame_start": [0, 60, 120], "frame_duration": [60] * 3})
    assert len(paths) == 4 * 3
    for t in range(3):
        frame = read_with_simpleitk(paths[4 * t : 4 * t + 4])
        assert_where_nibabel_says(frame, nibabel.Nifti1Image(data[..., t], AFFINE_RAS), half_step(data))


def test_nibabel_image_refuses_a_second_geometry(tmp_path):
    image = nibabel_image()
    for given in (dict(affine=np.eye(4), affine_convention="LPS"), dict(spacing=(1, 1, 1)), dict(axes="zyx")):
        with pytest.raises(GeometryError, match="brings its own geometry"):
            write_series(image, tmp_path / "s", **given)


def test_read_nifti_helper_matches_nibabel(tmp_path):
    """The oracle's own NIfTI reader agrees with nibabel on a file nibabel writes (so it can judge dcm2niix)."""
    image = nibabel_image()
    nibabel.save(image, tmp_path / "x.nii")
    assert_where_nibabel_says(read_nifti(tmp_path / "x.nii"), image, 1e-6)


def test_the_nm_streaming_writer_refuses_nibabels_order(tmp_path):
    """NM's SeriesWriter keeps slices as given: nibabel's order would be read transposed, so it is refused."""
    with pytest.raises(dcmforge.DcmforgeError, match='axes="xyz": this writer takes'):
        SeriesWriter(tmp_path / "nm", SHAPE_IJK, axes="xyz", affine=AFFINE_RAS, affine_convention="RAS", modality="NM")
    assert not list(tmp_path.iterdir())
