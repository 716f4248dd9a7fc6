"""MetaImage inputs: files written by SimpleITK (and by hand, for the forms ITK does not write), read by
dcmforge's own parser, checked against SimpleITK's reading, converted and read back by SimpleITK and dcm2niix.
"""

import json
import zlib

import numpy as np
import pytest
import SimpleITK as sitk
from fuzzing import read_image_or_our_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_series import PET_METADATA, check_series
from volumes import activity, oblique_affine

import dcmforge
from dcmforge.convert import CONVERTED, convert_one
from dcmforge.errors import MetaImageError


def itk_image(volume, affine):
    """A SimpleITK image of volume [z, y, x] with the LPS affine (ITK's own convention)."""
    image = sitk.GetImageFromArray(volume, isVector=False)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((affine[:3, :3] / spacing).ravel().tolist())
    image.SetOrigin(affine[:3, 3].tolist())
    return image


def itk_affine(image):
    spacing = np.asarray(image.GetSpacing())[:3]
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(image.GetDirection()).reshape(image.GetDimension(), -1)[:3, :3] * spacing
    affine[:3, 3] = image.GetOrigin()[:3]
    return affine


def convert(path, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(PET_METADATA))
    out = tmp_path / "series"
    result = convert_one(path, out, {"meta": str(meta)})
    assert result.status == CONVERTED, result.message
    return sorted(out.glob("*.dcm")), result


# -- written by SimpleITK: dcmforge reads what ITK reads, and the series reads back -----------------


@pytest.mark.parametrize("name, compress", [("oblique.mhd", False), ("oblique.mha", True), ("plain.mha", False)])
def test_simpleitk_files_read_as_simpleitk_reads_them(tmp_path, name, compress):
    volume, affine = activity((4, 5, 6)), oblique_affine()
    path = tmp_path / name
    sitk.WriteImage(itk_image(volume, affine), str(path), useCompression=compress)
    image = dcmforge.read_image(path)
    itk = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(np.asarray(image.volume), sitk.GetArrayFromImage(itk))
    np.testing.assert_allclose(image.affine, itk_affine(itk), atol=1e-9)
    for index in [(0, 0, 0), (5, 0, 0), (0, 4, 0), (0, 0, 3), (5, 4, 3)]:
        point = image.affine @ [*index, 1]
        np.testing.assert_allclose(point[:3], itk.TransformIndexToPhysicalPoint(index), atol=1e-9)
    assert isinstance(image.volume, np.memmap) != compress  # uncompressed data stays on disk


@pytest.mark.parametrize("name, compress", [("oblique.mhd", False), ("oblique.mha", True)])
def test_converted_series_reads_back_in_simpleitk_and_dcm2niix(tmp_path, name, compress):
    volume, affine = activity((5, 6, 7), seed=2), oblique_affine(degrees=25.0)
    path = tmp_path / name
    sitk.WriteImage(itk_image(volume, affine), str(path), useCompression=compress)
    paths, result = convert(path, tmp_path)
    assert "MetaImage (ITK, LPS)" in result.message
    check_series(paths, volume, affine, tmp_path)


def test_int16_and_4d_from_simpleitk(tmp_path):
    frames = [(activity((3, 4, 5), seed=s) - 300).astype(np.int16) for s in range(2)]
    affine = oblique_affine(spacing=(1.0, 1.5, 2.0))
    joined = sitk.JoinSeries([itk_image(f, affine) for f in frames])
    path = tmp_path / "dyn.mhd"
    sitk.WriteImage(joined, str(path))
    image = dcmforge.read_image(path)
    assert image.volume.shape == (2, 3, 4, 5) and image.volume.dtype == np.int16
    np.testing.assert_allclose(image.affine, affine, atol=1e-9)
    assert any("frame times must come from --meta" in w for w in image.warnings)


# -- forms written by hand ---------------------------------------------------------------------


def header(data_file, *, shape=(4, 3, 2), element="MET_FLOAT", extra=()):
    lines = ["ObjectType = Image", "NDims = 3", f"DimSize = {' '.join(map(str, shape))}", f"ElementType = {element}",
             "ElementSpacing = 2 3 4", "Offset = -10 5 7.5", *extra, f"ElementDataFile = {data_file}"]
    return "\n".join(lines) + "\n"


def ramp(shape=(2, 3, 4), dtype="<f4"):
    return (np.arange(int(np.prod(shape))) + 1).astype(dtype).reshape(shape)


def test_big_endian_data_and_header_size(tmp_path):
    values = ramp(dtype=">i2")
    (tmp_path / "v.raw").write_bytes(b"\x00" * 100 + values.tobytes())
    path = tmp_path / "v.mhd"
    path.write_text(header("v.raw", element="MET_SHORT", extra=["ElementByteOrderMSB = True", "HeaderSize = 100"]))
    np.testing.assert_array_equal(dcmforge.read_image(path).volume, values)
    path.write_text(header("v.raw", element="MET_SHORT", extra=["BinaryDataByteOrderMSB = True", "HeaderSize = -1"]))
    np.testing.assert_array_equal(dcmforge.read_image(path).volume, values)


def test_list_and_pattern_data_files(tmp_path):
    values = ramp()
    for k in range(2):
        (tmp_path / f"slice{k + 1:03d}.raw").write_bytes(values[k].tobytes())
    listed = tmp_path / "list.mhd"
    listed.write_text(header("LIST") + "slice001.raw\nslice002.raw\n")
    pattern = tmp_path / "pattern.mhd"
    pattern.write_text(header("slice%03d.raw 1 2 1"))
    for path in (listed, pattern):
        image = dcmforge.read_image(path)
        np.testing.assert_array_equal(image.volume, values)
        assert image.data_path.name == "slice001.raw"


def test_compressed_data_in_its_own_file(tmp_path):
    values = ramp()
    packed = zlib.compress(values.tobytes())
    (tmp_path / "v.zraw").write_bytes(packed)
    path = tmp_path / "v.mhd"
    path.write_text(header("v.zraw", extra=["CompressedData = True", f"CompressedDataSize = {len(packed)}"]))
    np.testing.assert_array_equal(dcmforge.read_image(path).volume, values)


def test_orientation_synonyms_and_anatomical_orientation(tmp_path):
    (tmp_path / "v.raw").write_bytes(ramp().tobytes())
    path = tmp_path / "v.mhd"
    path.write_text(header("v.raw", extra=["Orientation = -1 0 0 0 -1 0 0 0 1", "AnatomicalOrientation = LPI"]))
    image = dcmforge.read_image(path)
    np.testing.assert_allclose(image.affine[:3, :3], np.diag([-2.0, -3.0, 4.0]))
    assert not image.warnings
    path.write_text(header("v.raw", extra=["TransformMatrix = 1 0 0 0 1 0 0 0 1", "AnatomicalOrientation = LPS"]))
    assert any("AnatomicalOrientation = LPS disagrees" in w for w in dcmforge.read_image(path).warnings)


def test_a_data_file_elsewhere_is_named_in_the_summary(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "v.raw").write_bytes(ramp().tobytes())
    path = tmp_path / "v.mhd"
    path.write_text(header("data/v.raw"))
    _, result = convert(path, tmp_path)
    assert f"(data file {tmp_path / 'data' / 'v.raw'})" in result.message


@pytest.mark.parametrize(
    "text, data, message",
    [
        (header("v.raw"), 10, "has 10 bytes; the header's DimSize and ElementType need 96"),
        (header("v.raw", element="MET_FLOAT_ARRAY"), 96, "ElementType = MET_FLOAT_ARRAY: expected one of"),
        (header("v.raw").replace("NDims = 3", "NDims = 5"), 96, "NDims = 5"),
        (header("missing.raw"), 96, "is not a file"),
        (header("v.raw", extra=["CompressedData = True"]), 96, "is not zlib data"),
        ("NDims = 3\n", 96, "no ElementDataFile key"),
        (header("v.raw", extra=["ElementSpacing = 1 0 1"]), 96, "spacings must be positive"),
        (header("v.raw").replace("ObjectType = Image", "ObjectType = Scene"), 96, "only Image objects"),
    ],
)
def test_bad_headers_are_our_errors_naming_the_key(tmp_path, text, data, message):
    (tmp_path / "v.raw").write_bytes(b"\x01" * data)
    path = tmp_path / "bad.mhd"
    path.write_text(text)
    with pytest.raises(MetaImageError, match=message):
        dcmforge.read_image(path)


# -- fuzzing: an image or our own error --------------------------------------------------------------

KEYS = ["ObjectType", "NDims", "DimSize", "ElementSpacing", "Offset", "Position", "TransformMatrix", "Rotation",
        "AnatomicalOrientation", "ElementType", "ElementByteOrderMSB", "BinaryDataByteOrderMSB", "CompressedData",
        "CompressedDataSize", "HeaderSize", "ElementNumberOfChannels", "BinaryData"]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["Image", "3", "2", "4", "4 3 2", "2 3 4 5", "1 0 0 0 1 0 0 0 1", "True", "False", "-1", "0",
                     "MET_FLOAT", "MET_UCHAR", "MET_DOUBLE", "RAI", "nan", "1e400", "-3", "LOCAL", "99999999999"]),
    st.text(alphabet="0123456789 .-eE", max_size=30),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=10),
    data_file=st.sampled_from(["LOCAL", "v.raw", "LIST", "v%d.raw 1 2 1", "v%d.raw 1 0 0", ""]),
    tail=st.binary(max_size=200),
)
def test_fuzzed_headers_give_an_image_or_our_error(tmp_path, entries, data_file, tail):
    (tmp_path / "v.raw").write_bytes(bytes(range(256)) * 2)
    (tmp_path / "v1.raw").write_bytes(bytes(48))
    (tmp_path / "v2.raw").write_bytes(bytes(48))
    keys = {"ObjectType": "Image", "NDims": "3", "DimSize": "4 3 2", "ElementType": "MET_UCHAR"}  # a valid start
    keys.update(entries)
    text = "".join(f"{key} = {value}\n" for key, value in keys.items()) + f"ElementDataFile = {data_file}\n"
    path = tmp_path / "f.mha"
    path.write_bytes(text.encode("utf-8", "replace") + tail)
    read_image_or_our_error(path)
