"""Tests of the Interfile reader and writer (dcmforge.readers.interfile, dcmforge.readers.interfile.grammar)."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcmforge.errors import GeometryError, InterfileError
from dcmforge.readers.interfile import LazyVolume, read_interfile, write_interfile
from dcmforge.readers.interfile.grammar import normalise_key, parse_header

from interfile_data import (
    FRAME_SHAPE,
    IMAGE_SAMPLES,
    METAHEADER_FRAMES,
    METAHEADER_SAMPLE,
    PROJECTION_SAMPLES,
    all_sample_headers,
    castor_header,
    install_sample,
    sample_path,
    stir_header,
    write_image,
)

PROJECTION_MESSAGE = re.escape("is projection data (sinogram/list mode), not an image")


# --- grammar -------------------------------------------------------------------------------------


def test_key_spellings_normalise_to_one_key():
    spellings = ["!matrix size [1]", "matrix_size[1]", "MATRIX SIZE [1]", "! Matrix  Size\t[1]"]
    text = "".join(f"{s} := {n}\n" for n, s in enumerate(spellings))
    header = parse_header(text)
    assert {(e.key, e.index) for e in header.entries} == {("matrixsize", 1)}
    assert header.text("matrix size", 1) == "3"  # the last one wins
    assert [e.occurrence for e in header.entries] == [0, 1, 2, 3]
    assert normalise_key("%Image Slope") == "%imageslope"  # % is kept


def test_assignment_comments_lists_and_continuation():
    header = parse_header(
        "!INTERFILE:=\n"
        "a : = 1\n"
        "b:=2 ; a comment\n"
        "; a whole comment line := 9\n"
        "%segment table:={64, 63; 62}\n"
        "c := long \\\nvalue\n"
        "no assignment here\n"
        "name of data file := C:\\data\\img.v\n"
    )
    assert header.text("a") == "1"
    assert header.text("b") == "2"
    assert header.text("%segment table") == "{64, 63; 62}"  # ';' inside {} is not a comment
    assert header.text("c") == "long value"
    assert header.text("name of data file") == "C:\\data\\img.v"
    assert not header.has("a whole comment line")
    assert len(header.warnings) == 1 and "line 8" in header.warnings[0] and "no ':='" in header.warnings[0]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(newline):
    lines = ["!INTERFILE :=", "a := 1", "b [2] := x y", "!END OF INTERFILE :="]
    header = parse_header(newline.join(lines).encode())
    assert [(e.key, e.index, e.value, e.line) for e in header.entries] == [
        ("a", None, "1", 2),
        ("b", 2, "x y", 3),
    ]
    assert header.ended


def test_parsing_stops_at_the_end_line():
    header = parse_header("a := 1\n!END OF INTERFILE :=\n!COPY OF INPUT HEADER 1\na := 2\nb: 3\n")
    assert header.text("a") == "1" and header.ended and not header.warnings


def test_missing_end_line_and_missing_start_line():
    header = parse_header("a := 1\nb := 2")
    assert header.text("b") == "2" and not header.ended


def test_siemens_formats_in_keys():
    header = parse_header("%study date (yyyy:mm:dd):=2017:08:09\n%study time (hh:mm:ss GMT+01:00):=17:35:03\n")
    assert header.find_prefixed("study date").value == "2017:08:09"
    assert header.find_prefixed("study time").key == "%studytime(hh:mm:ssgmt+01:00)"


def test_bad_index_is_skipped_with_a_warning():
    header = parse_header("a [x] := 1\nb [0] := 2\nc [3 := 3\nd := 4\n")
    assert [e.key for e in header.entries] == ["d"]
    assert len(header.warnings) == 3


@pytest.mark.parametrize(
    "data",
    [b"", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b'{"a": 1}', b"just text\nno assignments\n",
     np.arange(64.0).tobytes()],  # fmt: skip
)
def test_not_interfile_text_is_refused(data):
    with pytest.raises(InterfileError, match="not an Interfile header"):
        parse_header(data, source="f.bin")


# --- the samples ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(IMAGE_SAMPLES))
def test_every_image_sample_reads(tmp_path, name):
    header, markers = install_sample(name, tmp_path)
    data_name, dialect, shape, dtype = IMAGE_SAMPLES[name]
    image = read_interfile(header)
    assert image.dialect == dialect
    assert image.data_path == tmp_path / data_name
    assert image.volume.shape == shape
    assert isinstance(image.volume, np.memmap)  # nothing to scale: the file itself, not a copy
    assert image.volume.dtype == np.dtype(dtype)
    for voxel, value in markers.items():
        assert image.volume[voxel] == value, voxel
    assert image.volume.sum() == sum(markers.values())
    assert image.affine.shape == (4, 4) and np.all(np.isfinite(image.affine))
    assert np.allclose(np.abs(np.diag(image.affine)[:3]), image.spacing)
    assert image.convention and isinstance(image.warnings, list)


def test_sample_metadata(tmp_path):
    header, _ = install_sample("sirf/emission_fdg.hv", tmp_path)
    image = read_interfile(header)
    meta = image.metadata
    assert meta["isotope"] == "^18^Fluorine"
    assert meta["frame_start"] == [0.0] and meta["frame_duration"] == [120.0]
    assert meta["patient_position"] == "HFS" and meta["modality"] == "PT"
    assert any("modification time" in w for w in image.warnings)  # no study date in this header
    assert image.keys["matrixsize[1]"] == "17" and image.keys["numberoftimeframes"] == "1"

    header, _ = install_sample("gate/activity_u16.h33", tmp_path)
    meta = read_interfile(header).metadata
    assert meta["StudyDate"] == "20030417" and meta["StudyTime"] == "083000"
    assert "patient_position" not in meta  # GATE: the broken 'patient orientation' line is not used


def test_castor_sample_geometry_and_counts(tmp_path):
    header, _ = install_sample("castor/bare.hdr", tmp_path)
    image = read_interfile(header)
    assert any("total number of images := 11" in w for w in image.warnings)
    assert image.metadata["frame_duration"] == [1.0]
    centre = image.affine @ [9.5, 7.5, 5.5, 1]
    assert np.allclose(centre[:3], 0)


def test_gate_sample_with_inconsistent_counts(tmp_path):
    header, _ = install_sample("gate/cube.h33", tmp_path)
    image = read_interfile(header)
    assert image.volume.shape == (7, 8, 8)
    assert image.spacing == (5.0, 5.0, 5.0)  # slice thickness read as mm, as GATE does
    assert any("12" in w and "number of slices" in w for w in image.warnings)


def test_castor_metaheader_sample_stacks_frames(tmp_path):
    header, markers = install_sample(METAHEADER_SAMPLE, tmp_path)
    image = read_interfile(header)
    assert image.volume.shape == (METAHEADER_FRAMES,) + FRAME_SHAPE
    for voxel, value in markers.items():
        assert image.volume[voxel] == value
    assert image.metadata["frame_start"] == [60.0 * f for f in range(METAHEADER_FRAMES)]
    assert image.metadata["frame_duration"] == [60.0] * METAHEADER_FRAMES
    assert len([w for w in image.warnings if "assumed HFS" in w]) == 1  # not once per frame


@pytest.mark.parametrize("name", PROJECTION_SAMPLES)
def test_projection_samples_are_refused(tmp_path, name):
    header, _ = install_sample(name, tmp_path)
    with pytest.raises(InterfileError, match=PROJECTION_MESSAGE):
        read_interfile(header)
    renamed = tmp_path / "renamed.hdr"  # the keys alone must give it away too
    shutil.copyfile(header, renamed)
    with pytest.raises(InterfileError, match=PROJECTION_MESSAGE):
        read_interfile(renamed)


def test_stir_sinogram_keys_are_refused(tmp_path):
    text = stir_header((2, 3, 4), extra=["minimum ring difference per segment := {-1,0,1}"])
    text = text.replace("!PET data type := Image", "!PET data type := Emission")
    header = write_image(tmp_path, "sino.hdr", text, np.zeros((2, 3, 4)))
    with pytest.raises(InterfileError, match=PROJECTION_MESSAGE):
        read_interfile(header)


# --- data files ----------------------------------------------------------------------------------


def test_big_endian_data(tmp_path):
    array = np.arange(-12, 12, dtype=np.int16).reshape(2, 3, 4)
    text = stir_header(array.shape, number_format="signed integer", bytes_per_pixel=2, byte_order="BIGENDIAN")
    image = read_interfile(write_image(tmp_path, "be.hv", text, array, dtype=">i2"))
    assert image.volume.dtype == np.dtype(">i2")
    assert np.array_equal(image.volume, array)


def test_byte_order_defaults_to_big_endian(tmp_path):
    array = np.linspace(0, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    text = stir_header(array.shape, byte_order=None)
    image = read_interfile(write_image(tmp_path, "be.hv", text, array, dtype=">f4"))
    assert np.array_equal(image.volume, array)
    assert any("BIGENDIAN" in w for w in image.warnings)


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_cr_header_files(tmp_path, newline):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    text = stir_header(array.shape).replace("\n", newline)
    header = tmp_path / "img.hv"
    header.write_bytes(text.encode())
    (tmp_path / "img.v").write_bytes(array.tobytes())
    assert np.array_equal(read_interfile(header).volume, array)


def test_header_without_end_line_and_with_text_after_it(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    text = stir_header(array.shape)
    no_end = text.replace("!END OF INTERFILE :=\n", "")
    assert np.array_equal(read_interfile(write_image(tmp_path, "a.hv", no_end, array)).volume, array)
    after = text + "!COPY OF INPUT HEADER 1\n!matrix size [1] := 99\nname of data file := other.v\n"
    assert np.array_equal(read_interfile(write_image(tmp_path, "b.hv", after, array)).volume, array)


def test_data_file_too_short_or_too_long(tmp_path):
    array = np.zeros((2, 3, 4), dtype=np.float32)
    header = write_image(tmp_path, "img.hv", stir_header(array.shape), array)
    data = tmp_path / "img.v"
    data.write_bytes(array.tobytes()[:-4])
    with pytest.raises(InterfileError, match=r"has 92 bytes .* needs 96"):
        read_interfile(header)
    data.write_bytes(array.tobytes() + b"\0" * 8)
    with pytest.raises(InterfileError, match=r"has 104 bytes .* describes 96"):
        read_interfile(header)


def test_longer_data_file_is_read_when_an_offset_places_the_data(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    text = stir_header(array.shape, extra=["data offset in bytes := 16"])
    header = write_image(tmp_path, "img.hv", text, array, offset=16)
    with open(tmp_path / "img.v", "ab") as stream:
        stream.write(b"trailer!")
    image = read_interfile(header)
    assert np.array_equal(image.volume, array)
    assert any("8 bytes after the image data" in w for w in image.warnings)


def test_data_starting_block(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    text = stir_header(array.shape, extra=["data starting block := 1"])
    image = read_interfile(write_image(tmp_path, "img.hv", text, array, offset=2048))
    assert np.array_equal(image.volume, array)


@pytest.mark.parametrize(
    "number_format, bytes_per_pixel, message",
    [("complex", 4, "unknown number format"), ("long long float", 16, "16-byte floats"),
     ("signed integer", 3, "3 bytes per pixel"), ("bit", 1, "bit images")],
)  # fmt: skip
def test_unusable_number_formats(tmp_path, number_format, bytes_per_pixel, message):
    text = stir_header((1, 2, 2), number_format=number_format, bytes_per_pixel=bytes_per_pixel)
    header = write_image(tmp_path, "img.hv", text, np.zeros((1, 2, 2)))
    with pytest.raises(InterfileError, match=message) as raised:
        read_interfile(header)
    assert "img.hv: line" in str(raised.value)


@pytest.mark.parametrize(
    "number_format, bytes_per_pixel, dtype",
    [("short float", 4, "<f4"), ("long float", 8, "<f8"), ("UNSIGNED INTEGER", 1, "u1"), ("signed integer", 8, "<i8")],
)
def test_number_formats(tmp_path, number_format, bytes_per_pixel, dtype):
    array = np.arange(8).reshape(2, 2, 2)
    text = stir_header(array.shape, number_format=number_format, bytes_per_pixel=bytes_per_pixel)
    image = read_interfile(write_image(tmp_path, "img.hv", text, array, dtype=dtype))
    assert image.volume.dtype == np.dtype(dtype) and np.array_equal(image.volume, array)


def test_data_file_names(tmp_path):
    array = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "img.v").write_bytes(array.tobytes())
    for name in ("sub/img.v", "sub\\img.v", str(tmp_path / "sub" / "img.v")):
        header = tmp_path / "h.hv"
        header.write_text(stir_header(array.shape, data=name))
        image = read_interfile(header)
        assert image.data_path == tmp_path / "sub" / "img.v" and not [w for w in image.warnings if "not found" in w]
    header.write_text(stir_header(array.shape, data="C:\\scans\\img.v"))  # written on another machine
    (tmp_path / "img.v").write_bytes(array.tobytes())
    image = read_interfile(header)
    assert image.data_path == tmp_path / "img.v" and any("not found" in w for w in image.warnings)
    header.write_text(stir_header(array.shape, data="missing.v"))
    with pytest.raises(InterfileError, match=r"h.hv: line 4: .*data file not found"):
        read_interfile(header)


def test_missing_matrix_size(tmp_path):
    text = "\n".join(line for line in stir_header((2, 2, 2)).splitlines() if "matrix size [2]" not in line)
    header = write_image(tmp_path, "img.hv", text, np.zeros(8))
    with pytest.raises(InterfileError, match=r"img.hv: no 'matrix size \[2\]'"):
        read_interfile(header)


def test_matrix_sizes_written_as_floats(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    text = stir_header(array.shape).replace(":= 4\n", ":= 4.000000\n")
    assert "4.000000" in text
    assert read_interfile(write_image(tmp_path, "img.hv", text, array)).volume.shape == (1, 3, 4)
    text = stir_header(array.shape).replace("!matrix size [1] := 4", "!matrix size [1] := 4.5")
    with pytest.raises(InterfileError, match="not a whole number"):
        read_interfile(write_image(tmp_path, "img.hv", text, array))


# --- frames and scaling --------------------------------------------------------------------------


def test_stir_frames_at_their_offsets_with_scaling(tmp_path):
    frames = np.arange(3 * 24, dtype=np.float32).reshape(3, 2, 3, 4)
    gap = 100
    frame_bytes = 24 * 4
    offsets = [0, frame_bytes + gap, 2 * (frame_bytes + gap)]
    extra = ["number of time frames := 3"]
    for f, offset in enumerate(offsets, start=1):
        extra += [f"image scaling factor[{f}] := {f}", f"data offset in bytes[{f}] := {offset}",
                  f"image duration (sec)[{f}] := 10",
                  f"image relative start time (sec)[{f}] := {10 * (f - 1)}"]  # fmt: skip
    header = tmp_path / "dyn.hv"
    header.write_text(stir_header((2, 3, 4), extra=extra))
    with open(tmp_path / "img.v", "wb") as stream:
        for frame in frames:
            stream.write(frame.tobytes() + b"\x7f" * gap)
    image = read_interfile(header)
    volume = image.volume
    assert isinstance(volume, LazyVolume) and volume.shape == (3, 2, 3, 4) and volume.dtype == np.float32
    assert len(volume) == 3 and volume.ndim == 4
    expected = frames * np.array([1, 2, 3], dtype=np.float32)[:, None, None, None]
    assert np.array_equal(volume[1], expected[1])
    assert np.array_equal(volume[-1, 1, 2], expected[2, 1, 2])
    assert np.array_equal(volume[::2, ..., 3], expected[::2, ..., 3])
    assert np.array_equal(np.asarray(volume), expected)
    assert volume[3:].shape == (0, 2, 3, 4)
    assert image.metadata["frame_start"] == [0.0, 10.0, 20.0] and image.metadata["frame_duration"] == [10.0] * 3


def test_contiguous_unscaled_frames_are_one_memmap(tmp_path):
    frames = np.arange(48, dtype=np.float32).reshape(2, 2, 3, 4)
    header = write_image(tmp_path, "dyn.hv", stir_header((2, 3, 4), extra=["number of time frames := 2"]), frames)
    volume = read_interfile(header).volume
    assert isinstance(volume, np.memmap) and np.array_equal(volume, frames)


def test_stir_per_plane_scaling_and_quantification_units(tmp_path):
    array = np.ones((3, 2, 2), dtype=np.float32)
    text = stir_header(array.shape, extra=["image scaling factor[1] := {1, 2, 4}"])
    volume = read_interfile(write_image(tmp_path, "a.hv", text, array)).volume
    assert np.array_equal(volume[:, 0, 0], [1, 2, 4]) and np.array_equal(volume[2], np.full((2, 2), 4))
    text = stir_header(array.shape, extra=["image scaling factor[1] := 1", "quantification units := 2.5"])
    assert np.array_equal(read_interfile(write_image(tmp_path, "b.hv", text, array)).volume[0], np.full((2, 2), 2.5))
    text = stir_header(array.shape, extra=["image scaling factor[1] := 3", "quantification units := 2.5"])
    with pytest.raises(InterfileError, match="conflicts with 'image scaling factor'"):
        read_interfile(write_image(tmp_path, "c.hv", text, array))


def test_castor_rescale_keys(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    extra = ["data rescale slope := 2", "quantification units := 3", "data rescale intercept := -1"]
    image = read_interfile(write_image(tmp_path, "c.hdr", castor_header(array.shape, extra=extra), array))
    assert np.allclose(image.volume[...], array * 6 - 1)
    extra = ["data rescale offset := 5", "data rescale slope := 1", "quantification units := 1"]
    image = read_interfile(write_image(tmp_path, "d.hdr", castor_header(array.shape, extra=extra), array))
    assert isinstance(image.volume, np.memmap)  # CASToR itself ignores data rescale offset
    assert any("data rescale offset" in w for w in image.warnings)


def test_castor_frame_blocks(tmp_path):
    frames = np.arange(3 * 24, dtype=np.float32).reshape(3, 2, 3, 4)
    extra = ["number of time frames := 3", "!number of frame groups := 3"]
    for f in range(3):
        extra += ["!Dynamic Study (each frame group) :=", f"!frame group number := {f + 1}",
                  "!matrix size [1] := 4", f"data rescale slope := {f + 1}", "!image duration (sec) := 5",
                  f"!image start time (sec) := {5 * f + 1}"]  # fmt: skip
    image = read_interfile(write_image(tmp_path, "c.hdr", castor_header((2, 3, 4), extra=extra), frames))
    assert image.volume.shape == (3, 2, 3, 4)
    assert np.array_equal(image.volume[2], frames[2] * 3)
    assert image.metadata["frame_start"] == [1.0, 6.0, 11.0] and image.metadata["frame_duration"] == [5.0] * 3


def test_siemens_slope_and_unit(tmp_path):
    array = np.arange(8, dtype=np.int16).reshape(2, 2, 2)
    text = (
        "!INTERFILE:=\n!originating system:=2008\nname of data file:=img.v\nimage data byte order:=LITTLEENDIAN\n"
        "number format:=signed integer\n!number of bytes per pixel:=2\nnumber of dimensions:=3\n"
        "matrix size[1]:=2\nmatrix size[2]:=2\nmatrix size[3]:=2\nscale factor (mm/pixel) [1]:=2\n"
        "scale factor (mm/pixel) [2]:=2\nscale factor (mm/pixel) [3]:=3\n%image slope:=0.5\n"
        "%image intercept:=1\nquantification units:=Bq/ml\n%patient orientation:=FFS\n"
        "%study date (yyyy:mm:dd):=2017:03:27\n%study time (hh:mm:ss GMT+01:00):=17:33:38\n"
        "isotope name:=F-18\ntracer activity at time of injection (Bq):=4.65e+007\n"
        "%tracer injection date (yyyy:mm:dd):=2017:03:27\n%tracer injection time (hh:mm:ss GMT+01:00):=16:07:00\n"
        "!END OF INTERFILE:=\n"
    )
    image = read_interfile(write_image(tmp_path, "img.v.hdr", text, array, dtype="<i2"))
    assert image.dialect == "siemens"
    assert image.volume.dtype == np.float32 and np.allclose(image.volume[...], array * 0.5 + 1)
    assert image.metadata == {
        "StudyDate": "20170327", "StudyTime": "173338", "TimezoneOffsetFromUTC": "+0100",
        "ManufacturerModelName": "2008", "isotope": "F-18", "injected_activity": 4.65e7,
        "injection_datetime": "2017-03-27T16:07:00+01:00", "Units": "BQML", "patient_position": "FFS",
    }  # fmt: skip
    # Siemens FFS: i -> R (-L), j -> A (-P), k -> I (-S); right-handed like DICOM
    assert np.allclose(image.affine[:3, :3], np.diag([-2.0, 2.0, -3.0]))


def test_siemens_image_orientation_and_offsets(tmp_path):
    text = (
        "!INTERFILE:=\n%SMS-MI header name space:=image subheader\nname of data file:=img.v\n"
        "image data byte order:=LITTLEENDIAN\nnumber format:=float\n!number of bytes per pixel:=4\n"
        "matrix size[1]:=5\nmatrix size[2]:=4\nmatrix size[3]:=3\nscale factor (mm/pixel) [1]:=2\n"
        "scale factor (mm/pixel) [2]:=3\nscale factor (mm/pixel) [3]:=4\n%x-offset (mm):=10\n%y-offset (mm):=-6\n"
        "%image orientation:={1,0,0,0,-1,0}\n!END OF INTERFILE:=\n"
    )
    image = read_interfile(write_image(tmp_path, "img.v.hdr", text, np.zeros(SHAPE)))
    assert image.dialect == "siemens"
    # columns: row (1,0,0), column (0,-1,0), slice = row x column = (0,0,-1)
    assert np.allclose(image.affine[:3, :3], np.diag([2.0, -3.0, -4.0]))
    # centred grid shifted by the offsets, in the image's own axes
    assert np.allclose(image.affine @ [2, 1.5, 1, 1], [10, 6, 0, 1])
    assert any("unverified" in w for w in image.warnings) and any("assumed HFS" in w for w in image.warnings)
    bad = text.replace("{1,0,0,0,-1,0}", "{1,0,0,1,0,0}")
    with pytest.raises(InterfileError, match="not orthogonal unit vectors"):
        read_interfile(write_image(tmp_path, "bad.v.hdr", bad, np.zeros(SHAPE)))


def test_time_zone_in_a_stir_time_value(tmp_path):
    array = np.zeros((1, 2, 2), dtype=np.float32)
    text = stir_header(array.shape, extra=["study date := 2024:02:29", "study time := 08:05:09.25-05:30"])
    meta = read_interfile(write_image(tmp_path, "a.hv", text, array)).metadata
    assert (meta["StudyDate"], meta["StudyTime"], meta["TimezoneOffsetFromUTC"]) == ("20240229", "080509.25", "-0530")
    text = stir_header(array.shape, extra=["study date := 2023:02:29", "study time := 08:05:09"])
    image = read_interfile(write_image(tmp_path, "b.hv", text, array))
    assert any("not a valid date" in w for w in image.warnings)
    assert any("modification time" in w for w in image.warnings)


# --- geometry ------------------------------------------------------------------------------------

SHAPE = (3, 4, 5)  # z, y, x: n1 = 5, n2 = 4, n3 = 3
STEPS = (2.0, 3.0, 4.0)
FIRST = (-10.0, -20.0, 5.0)  # STIR first pixel offset (X0, Y0, Z0)
POSITION_WORDS = {"HFS": ("head_in", "supine"), "HFP": ("head_in", "prone"),
                  "FFS": ("feet_in", "supine"), "FFP": ("feet_in", "prone")}  # fmt: skip
# Spec 4.1 table: IOP (row, column) and IPP(k), with X0, Y0, Z0 the STIR first voxel and d3 = 4.
STIR_TABLE = {
    "HFS": ((1, 0, 0), (0, 1, 0), lambda k: (-10, -20, -(5 + 4 * k))),
    "HFP": ((-1, 0, 0), (0, -1, 0), lambda k: (10, 20, -(5 + 4 * k))),
    "FFS": ((-1, 0, 0), (0, 1, 0), lambda k: (10, -20, 5 + 4 * k)),
    "FFP": ((1, 0, 0), (0, -1, 0), lambda k: (-10, 20, 5 + 4 * k)),
}


def lps_from_gantry_words(stir_point, position):
    """LPS of a point in STIR's frame, worked out from the words of spec 4.1 rather than its table.

    STIR: x to the right looking from the bed into the gantry, y down, z from the gantry to the bed.
    That frame is left-handed, so first go to a right-handed one (right, up, towards the bed).
    Head first: superior points into the gantry; supine: posterior points down; L = P x S.
    """
    x, y, z = stir_point
    world = np.array([x, -y, z])
    superior = np.array([0.0, 0.0, -1.0]) if position.startswith("HF") else np.array([0.0, 0.0, 1.0])
    posterior = np.array([0.0, -1.0, 0.0]) if position.endswith("S") else np.array([0.0, 1.0, 0.0])
    left = np.cross(posterior, superior)
    return np.array([world @ left, world @ posterior, world @ superior])


def read_stir(tmp_path, position=None, **fields):
    orientation, rotation = POSITION_WORDS.get(position, ("unknown", "unknown"))
    fields.setdefault("first_pixel", FIRST)
    text = stir_header(SHAPE, STEPS, orientation=orientation, rotation=rotation, **fields)
    return write_image(tmp_path, f"{position}.hv", text, np.zeros(SHAPE))


@pytest.mark.parametrize("position", sorted(STIR_TABLE))
def test_stir_geometry_for_each_patient_position(tmp_path, position):
    image = read_interfile(read_stir(tmp_path, position))
    row, column, ipp = STIR_TABLE[position]
    affine = image.affine
    assert np.allclose(affine[:3, 0] / STEPS[0], row) and np.allclose(affine[:3, 1] / STEPS[1], column)
    for k in range(SHAPE[0]):
        assert np.allclose((affine @ [0, 0, k, 1])[:3], ipp(k))
    rng = np.random.default_rng(1)
    for i, j, k in rng.integers(0, 3, size=(10, 3)):
        stir_point = [FIRST[0] + i * STEPS[0], FIRST[1] + j * STEPS[1], FIRST[2] + k * STEPS[2]]
        assert np.allclose((affine @ [i, j, k, 1])[:3], lps_from_gantry_words(stir_point, position))
    assert image.metadata["patient_position"] == position
    assert image.convention == f"STIR, {position}, first voxel from first pixel offset"
    assert image.spacing == STEPS


def test_stir_unknown_position_is_hfs_with_a_warning(tmp_path):
    image = read_interfile(read_stir(tmp_path))
    assert np.allclose(image.affine @ [0, 0, 2, 1], [-10, -20, -13, 1])
    assert "patient_position" not in image.metadata
    assert image.convention.startswith("STIR, HFS (patient position unknown -> assumed HFS)")
    assert any("assumed HFS" in w for w in image.warnings)


def test_stir_default_origin(tmp_path):
    image = read_interfile(read_stir(tmp_path, "HFS", first_pixel=None))
    # STIR: first voxel at (-floor(n1/2) d1, -floor(n2/2) d2, 0): the axis goes through voxel n/2
    assert np.allclose(image.affine[:3, 3], [-2 * 2.0, -2 * 3.0, 0.0])
    assert np.allclose((image.affine @ [2, 2, 0, 1])[:2], 0)
    assert any("default origin" in w for w in image.warnings)


def test_stir_unsupported_position_needs_an_override(tmp_path):
    text = stir_header(SHAPE, STEPS, rotation="left")
    header = write_image(tmp_path, "l.hv", text, np.zeros(SHAPE))
    with pytest.raises(InterfileError, match="patient rotation := left.*give patient_position"):
        read_interfile(header)
    assert read_interfile(header, patient_position="HFP").metadata["patient_position"] == "HFP"


@pytest.mark.parametrize("shape", [(3, 4, 5), (4, 6, 8), (1, 7, 7)])
def test_castor_image_centre_is_on_the_scanner_axis(tmp_path, shape):
    steps = (2.0, 2.5, 3.0)
    image = read_interfile(write_image(tmp_path, "c.hdr", castor_header(shape, steps), np.zeros(shape)))
    n3, n2, n1 = shape
    centre = image.affine @ [(n1 - 1) / 2, (n2 - 1) / 2, (n3 - 1) / 2, 1]
    assert np.allclose(centre[:3], 0)
    # spec 4.2, HFS: IOP = 1,0,0, 0,-1,0 and IPP(k) = (-(n1-1)d1/2, +(n2-1)d2/2, -(n3-1)d3/2 + k d3)
    assert np.allclose(image.affine[:3, :3], np.diag([2.0, -2.5, 3.0]))
    for k in range(n3):
        expected = [-(n1 - 1) * 2.0 / 2, (n2 - 1) * 2.5 / 2, -(n3 - 1) * 3.0 / 2 + k * 3.0]
        assert np.allclose((image.affine @ [0, 0, k, 1])[:3], expected)
    assert image.convention == (
        "CASToR (x right, y up, z front -> back of the gantry), HFS (not recorded by CASToR -> assumed HFS), "
        "centred grid"
    )


def test_castor_fov_offset_is_not_applied(tmp_path):
    extra = [f"first pixel offset (mm) [{axis}] := 7" for axis in (1, 2, 3)]
    image = read_interfile(write_image(tmp_path, "c.hdr", castor_header(SHAPE, extra=extra), np.zeros(SHAPE)))
    assert np.allclose(image.affine @ [2, 1.5, 1, 1], [0, 0, 0, 1])
    assert any("FOV shift" in w for w in image.warnings)


def test_castor_and_stir_agree_on_patient_directions(tmp_path):
    """The same patient position gives the same LPS axes up to the documented y and z reversal."""
    for position in POSITION_WORDS:
        stir = read_interfile(read_stir(tmp_path, position)).affine[:3, :3] / STEPS
        castor_file = write_image(tmp_path, "c.hdr", castor_header(SHAPE, STEPS), np.zeros(SHAPE))
        castor = read_interfile(castor_file, patient_position=position).affine[:3, :3] / STEPS
        assert np.allclose(castor, stir @ np.diag([1, -1, -1])), position


def test_negative_voxel_size_reverses_the_axis(tmp_path):
    text = castor_header(SHAPE, (2.0, 2.0, 3.0)).replace("(mm/pixel) [1] := 2.0", "(mm/pixel) [1] := -2.0")
    image = read_interfile(write_image(tmp_path, "c.hdr", text, np.zeros(SHAPE)))
    assert image.spacing == (2.0, 2.0, 3.0)
    assert image.affine[0, 0] == -2.0 and image.affine[0, 3] == 4.0  # still centred, now running R -> L reversed


def test_gate_is_centred_with_a_declared_assumption(tmp_path):
    text = "!INTERFILE :=\n!name of data file := g.i33\nimagedata byte order := LITTLEENDIAN\n" \
           "!matrix size [1] := 5\n!matrix size [2] := 4\n!number format := float\n" \
           "!number of bytes per pixel := 4\nscaling factor (mm/pixel) [1] := 2\n" \
           "scaling factor (mm/pixel) [2] := 3\n!number of slices := 3\nslice thickness (pixels) := 4\n"  # fmt: skip
    image = read_interfile(write_image(tmp_path, "g.h33", text, np.zeros(SHAPE)))
    assert image.dialect == "gate" and image.spacing == (2.0, 3.0, 4.0)
    assert np.allclose(image.affine @ [2, 1.5, 1, 1], [0, 0, 0, 1])
    assert np.allclose(image.affine[:3, :3], np.diag([2.0, -3.0, 4.0]))  # x -> L, y -> A, z -> S
    assert image.convention.startswith("GATE (world assumed x -> L, y -> A, z -> S), HFS (assumed), centred grid")


def test_interfile33_slice_thickness_is_in_pixels(tmp_path):
    text = "!INTERFILE :=\n!version of keys := 3.3\n!name of data file := g.img\n" \
           "imagedata byte order := LITTLEENDIAN\n" \
           "!matrix size [1] := 5\n!matrix size [2] := 4\n!number format := float\n" \
           "!number of bytes per pixel := 4\nscaling factor (mm/pixel) [1] := 2\n" \
           "scaling factor (mm/pixel) [2] := 2\n!number of slices := 3\nslice thickness (pixels) := 1.5\n"  # fmt: skip
    image = read_interfile(write_image(tmp_path, "g.hdr", text, np.zeros(SHAPE)))
    assert image.dialect == "interfile33" and image.spacing == (2.0, 2.0, 3.0)
    assert np.allclose(image.affine @ [2, 1.5, 1, 1], [0, 0, 0, 1])


def test_overrides(tmp_path):
    header = read_stir(tmp_path, "HFS")
    image = read_interfile(header, first_voxel=(1, 2, 3), flip=("x", "z"))
    assert np.allclose(image.affine[:3, 3], [1, 2, 3])
    assert np.allclose(image.affine[:3, :3], np.diag([-2.0, 3.0, 4.0]))  # x and z now run the other way
    assert "x flipped, z flipped" in image.convention and "first voxel given" in image.convention
    flipped = read_interfile(header, flip=("y",))
    original = read_interfile(header)
    assert np.allclose(flipped.affine @ [0, 0, 0, 1], original.affine @ [0, SHAPE[1] - 1, 0, 1])
    as_castor = read_interfile(header, dialect="castor", patient_position="FFP")
    assert as_castor.dialect == "castor" and "CASToR (x right, y up" in as_castor.convention
    assert ", FFP (given), " in as_castor.convention and "dialect castor given" in as_castor.convention
    with pytest.raises(GeometryError):
        read_interfile(header, patient_position="HFDR")
    with pytest.raises(GeometryError):
        read_interfile(header, flip=("w",))
    with pytest.raises(InterfileError):
        read_interfile(header, dialect="nifti")


# --- writing -------------------------------------------------------------------------------------


def test_write_then_read_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    volume = rng.random((2, 3, 4, 5), dtype=np.float32)
    metadata = {
        "PatientName": "Doe^Jane", "PatientID": "42", "PatientWeight": 70.5, "StudyDate": "20250101",
        "StudyTime": "101500", "TimezoneOffsetFromUTC": "+0100", "isotope": "F-18",
        "radiopharmaceutical": "Fluorodeoxyglucose", "injected_activity": 3.7e8,
        "injection_datetime": "2025-01-01T09:00:00+01:00", "frame_start": [0.0, 300.0],
        "frame_duration": [300.0, 600.0], "patient_position": "FFP", "modality": "PT", "half_life": 6586.2,
    }  # fmt: skip
    header = write_interfile(tmp_path / "rt.hv", volume, spacing=(2.0, 2.5, 3.0), first_voxel=(-4.0, 5.0, 6.0),
                             metadata=metadata)  # fmt: skip
    image = read_interfile(header)
    assert image.dialect == "stir" and image.data_path == tmp_path / "rt.v"
    assert np.array_equal(image.volume, volume)
    assert image.spacing == (2.0, 2.5, 3.0)
    assert np.allclose(image.affine[:3, 3], [-4.0, 5.0, 6.0])
    assert np.allclose(image.affine[:3, :3], np.diag([2.0, -2.5, 3.0]))  # FFP: x -> L, y -> A, z -> S
    assert image.metadata == metadata
    assert not image.warnings


def test_write_big_endian_3d_with_defaults(tmp_path):
    volume = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    header = write_interfile(tmp_path / "be.hv", volume, spacing=(1, 1, 2), byte_order="big")
    assert "BIGENDIAN" in header.read_text()
    image = read_interfile(header)
    assert image.volume.dtype == np.dtype(">f4") and np.array_equal(image.volume, volume)
    assert np.allclose(image.affine[:3, 3], [-2.0, -2.0, 0.0])  # STIR's default origin, HFS


def test_write_refuses_what_it_cannot_store(tmp_path):
    volume = np.zeros((1, 2, 2))
    with pytest.raises(InterfileError, match="cannot store metadata"):
        write_interfile(tmp_path / "a.hv", volume, spacing=(1, 1, 1), metadata={"SeriesNumber": 3})
    with pytest.raises(InterfileError, match="';'"):
        write_interfile(tmp_path / "a.hv", volume, spacing=(1, 1, 1), metadata={"PatientName": "a;b"})
    with pytest.raises(GeometryError):
        write_interfile(tmp_path / "a.hv", volume, spacing=(1, 0, 1))


# --- big volumes ---------------------------------------------------------------------------------


def test_volume_larger_than_memory_is_mapped_not_read(tmp_path):
    probe = tmp_path / "probe"
    with open(probe, "wb") as stream:
        stream.truncate(2**30)
    if os.stat(probe).st_blocks * 512 > 2**20:
        pytest.skip("this file system does not keep sparse files")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    plane = 1024 * 1024 * 4
    shape = (memory // plane + 2, 1024, 1024)  # float32, more than the machine's memory, as a sparse file
    (tmp_path / "big.hv").write_text(stir_header(shape, extra=["image scaling factor[1] := 2"]))
    with open(tmp_path / "img.v", "wb") as stream:
        stream.truncate(shape[0] * plane)
        stream.seek(-4, os.SEEK_END)
        stream.write(np.float32(1.5).tobytes())
    image = read_interfile(tmp_path / "big.hv")
    assert image.volume.shape == shape and image.volume.dtype == np.float32
    assert image.volume[-1, -1, -1] == 3.0 and image.volume[-1].shape == (1024, 1024)
    assert image.volume[0, :2, :2].tolist() == [[0.0, 0.0], [0.0, 0.0]]


# --- fuzzing with real headers -------------------------------------------------------------------

BAD_VALUES = [b"", b"0", b"-1", b"1e309", b"nan", b"abc", b"{1,2", b"{}", b"3.5", b"99999999999", b"BIGENDIAN",
              b"other", b"/", b"..", b"1e-320", b"-0", b"{0,img_dynamic.mhd,x}", b"\xff\xfe"]  # fmt: skip
MUTATIONS = ("drop", "upper", "lower", "squeeze", "spread", "value", "truncate", "junk", "duplicate", "cr", "crlf")


def mutate(data, kind, where, junk, bad):
    lines = data.split(b"\n")
    n = where % len(lines)
    if kind == "drop":
        del lines[n]
    elif kind == "upper":
        lines[n] = lines[n].upper()
    elif kind == "lower":
        lines[n] = lines[n].lower()
    elif kind == "squeeze":
        lines[n] = lines[n].replace(b" := ", b":=").replace(b" ", b"")
    elif kind == "spread":
        lines[n] = lines[n].replace(b":=", b" : = ").replace(b" ", b" \t _ ")
    elif kind == "value" and b":=" in lines[n]:
        lines[n] = lines[n].split(b":=")[0] + b":= " + bad
    elif kind == "duplicate":
        lines.insert(n, lines[n])
    data = b"\n".join(lines)
    if kind == "truncate":
        data = data[: where % (len(data) + 1)]
    elif kind == "junk":
        position = where % (len(data) + 1)
        data = data[:position] + junk + data[position:]
    elif kind in ("cr", "crlf"):
        data = data.replace(b"\n", b"\r" if kind == "cr" else b"\r\n")
    return data


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    for name in all_sample_headers():
        install_sample(name, folder)
    return folder


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(all_sample_headers()),
    edits=st.lists(
        st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 10**6), st.binary(min_size=1, max_size=6),
                  st.sampled_from(BAD_VALUES)),  # fmt: skip
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_sample_headers_read_or_raise_interfile_error(sample_folder, name, edits):
    data = sample_path(name).read_bytes()
    for edit in edits:
        data = mutate(data, *edit)
    header = sample_folder / ("mutated" + "".join(Path(name).suffixes))
    header.write_bytes(data)
    try:
        parse_header(data, source="mutated")
    except InterfileError:
        pass
    try:
        image = read_interfile(header)
    except InterfileError:
        return
    assert image.volume.ndim in (3, 4)
    assert np.all(np.isfinite(image.affine)) and all(s > 0 for s in image.spacing)
    first = np.asarray(image.volume[0])
    assert first.shape == image.volume.shape[1:]
    json.dumps(image.metadata)  # plain data only


# -- headers from the wild (issue 14) ------------------------------------------------------------


def _stir_with(tmp_path, extra, *, array=None, dtype="<f4", byte_order="LITTLEENDIAN"):
    values = np.linspace(0.5, 900.0, 3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5) if array is None else array
    text = stir_header(values.shape, byte_order=byte_order, extra=extra)
    return write_image(tmp_path, "wild.hv", text, values, dtype=dtype), values


def test_stir_technetium_name_converts_with_its_code(tmp_path):
    from dcmforge.convert import CONVERTED, convert_one

    header, _ = _stir_with(tmp_path, ["radionuclide name := ^99m^Technetium", "study date := 2025:01:31",
                                      "study time := 10:00:00"])  # fmt: skip
    assert read_interfile(header).metadata["isotope"] == "^99m^Technetium"
    result = convert_one(header, tmp_path / "out", {})
    assert result.status == CONVERTED, result.message
    import pydicom

    dataset = pydicom.dcmread(next((tmp_path / "out").glob("*.dcm")), stop_before_pixels=True)
    item = dataset.RadiopharmaceuticalInformationSequence[0]
    assert item.RadionuclideCodeSequence[0].CodeValue == "72454006" and float(item.RadionuclideHalfLife) == 21654.0


def test_an_isotope_unknown_to_dcmforge_is_a_warning_from_a_header(tmp_path):
    from dcmforge.convert import CONVERTED, convert_one

    header, _ = _stir_with(tmp_path, ["radionuclide name := ^227^Thorium", "study date := 2025:01:31",
                                      "study time := 10:00:00"])  # fmt: skip
    from dcmforge.readers.choose import read_image

    assert read_interfile(header).metadata["isotope"] == "^227^Thorium"  # the header's words, as read
    image = read_image(header)
    assert "isotope" not in image.metadata
    assert any("isotope '^227^Thorium' is not one dcmforge knows" in w for w in image.warnings)
    result = convert_one(header, tmp_path / "out", {})
    assert result.status == CONVERTED and any("^227^Thorium" in w for w in result.warnings), result
    import pydicom

    dataset = pydicom.dcmread(next((tmp_path / "out").glob("*.dcm")), stop_before_pixels=True)
    assert dataset.DecayCorrection == "NONE"
    assert not any(item.get("RadionuclideCodeSequence") for item in dataset.RadiopharmaceuticalInformationSequence)
    # The same name typed in a metadata file stays an error.
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"isotope": "^227^Thorium"}))
    refused = convert_one(header, tmp_path / "again", {"meta": str(meta)})
    assert refused.status == "bad input" and "isotope '^227^Thorium' is not known" in refused.message


def test_float_data_in_the_other_byte_order_is_refused_naming_the_key(tmp_path):
    header, values = _stir_with(tmp_path, [], dtype=">f4")  # the header says LITTLEENDIAN
    with pytest.raises(InterfileError, match=r"LITTLEENDIAN' the values are not an image.*change 'imagedata byte order' to BIGENDIAN"):
        read_interfile(header)
    header.write_text(header.read_text().replace("LITTLEENDIAN", "BIGENDIAN"))
    np.testing.assert_allclose(np.asarray(read_interfile(header).volume), values, rtol=1e-6)


def test_integer_data_in_the_other_byte_order_is_a_warning_naming_the_key(tmp_path):
    z, y, x = np.meshgrid(np.arange(6), np.arange(4), np.arange(5), indexing="ij")
    array = (300 + 50 * z + 40 * y + 30 * x).astype(np.int16)  # a smooth ramp: swapped, it is noise
    header, _ = _stir_with(tmp_path, [], array=array, dtype=">i2")
    text = header.read_text().replace("!number format := float", "!number format := signed integer")
    header.write_text(text.replace("!number of bytes per pixel := 4", "!number of bytes per pixel := 2"))
    image = read_interfile(header)
    assert any("change 'imagedata byte order' to BIGENDIAN" in w for w in image.warnings), image.warnings
    header.write_text(header.read_text().replace("LITTLEENDIAN", "BIGENDIAN"))
    image = read_interfile(header)
    assert not [w for w in image.warnings if "byte order" in w] and np.array_equal(image.volume, array)


def test_the_summary_names_a_data_file_outside_the_header_folder(tmp_path):
    from dcmforge.convert import convert_one

    (tmp_path / "data").mkdir()
    values = np.linspace(1.0, 5.0, 60, dtype=np.float32).reshape(3, 4, 5)
    (tmp_path / "data" / "img.v").write_bytes(values.astype("<f4").tobytes())
    header = tmp_path / "img.hv"
    header.write_text(stir_header(values.shape, data="data/img.v"))
    result = convert_one(header, tmp_path / "out", {})
    assert f"{header} (data file {tmp_path / 'data' / 'img.v'}) ->" in result.message, result.message
    beside = write_image(tmp_path, "beside.hv", stir_header(values.shape, data="beside.v"), values)
    assert "(data file" not in convert_one(beside, tmp_path / "out2", {}).message
