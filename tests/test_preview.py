"""Preview pictures: the marker in the patient's left, anterior, head corner lies next to the L, A and H labels.

Every test builds a volume with a bright marker in that corner, placed from
the geometry the test itself states (an LPS or RAS affine, or an Interfile
dialect's documented axes), writes it with a preview, decodes the PNG (zlib
here, Pillow as the standard decoder) and finds the direction letters on its
pixels by rendering them with the preview's font.
"""

import itertools
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from interfile_data import castor_header, stir_header, write_image
from PIL import Image
from volumes import oblique_affine

import dcmforge
from dcmforge import cli
from dcmforge.batch import with_preview
from dcmforge.convert import SKIPPED, ConversionResult
from dcmforge.demo import METADATA
from dcmforge.preview import picture, preview_path
from dcmforge.preview.projection import ProjectionAccumulator
from dcmforge.preview.font import text_mask
from dcmforge.preview.png import png_bytes
from dcmforge.preview.readback import read_series

SHAPE = (18, 20, 26)  # z, y, x: three different sizes, so a swapped axis shows
SPACING = (2.0, 3.0, 4.0)
MARKER = 4  # voxels along each axis
# Where the marker must be: towards the patient's left (+x LPS), anterior (-y), head (+z).
MARKER_DIRECTIONS = {0: 1, 1: -1, 2: 1}
# What each view shows at its edges, radiological convention (left, right, top, bottom).
EDGES = {
    "CORONAL": ("R", "L", "H", "F"),
    "SAGITTAL": ("A", "P", "H", "F"),
    "TRANSVERSE": ("R", "L", "A", "P"),
}
OPPOSITE = {"L": "R", "A": "P", "H": "F"}
# LPS sign of the gantry axes (x, y, z) for each patient position (PS3.3 C.7.6.2.1.1 and the
# equipment coordinate system: x towards the patient's left for HFS, y down, z into the gantry).
POSITION_SIGNS = {"HFS": (1, 1, 1), "HFP": (-1, -1, 1), "FFS": (-1, 1, -1), "FFP": (1, -1, -1)}


# -- reading the picture -----------------------------------------------------------------


def decode_png(data):
    """RGB or grey pixels of a PNG of 8-bit samples, by zlib (filters 0-4, PNG specification 9)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        assert struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    columns, rows, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and interlace == 0 and b"IEND" in chunks
    channels = {0: 1, 2: 3, 3: 1}[colour]
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(rows, 1 + columns * channels)
    out = np.zeros((rows, columns * channels), np.int32)
    for r in range(rows):
        kind, line = raw[r, 0], raw[r, 1:].astype(np.int32)
        up = out[r - 1] if r else np.zeros_like(line)
        if kind == 0:
            out[r] = line
        elif kind == 2:
            out[r] = (line + up) % 256
        else:  # 1, 3, 4 depend on the left neighbour: byte by byte
            for c in range(len(line)):
                left = out[r, c - channels] if c >= channels else 0
                upper_left = up[c - channels] if c >= channels and r else 0
                if kind == 1:
                    predicted = left
                elif kind == 3:
                    predicted = (left + up[c]) // 2
                else:
                    p = left + up[c] - upper_left
                    pa, pb, pc = abs(p - left), abs(p - up[c]), abs(p - upper_left)
                    predicted = left if pa <= pb and pa <= pc else up[c] if pb <= pc else upper_left
                out[r, c] = (line[c] + predicted) % 256
    pixels = out.astype(np.uint8).reshape(rows, columns, channels)
    if colour == 3:  # indexed: the palette's colours
        return np.frombuffer(chunks[b"PLTE"], np.uint8).reshape(-1, 3)[pixels[..., 0]]
    return pixels[..., 0] if channels == 1 else pixels


def read_picture(path):
    """The pixels, decoded by zlib here and checked against Pillow's decoding."""
    data = path.read_bytes()
    pixels = decode_png(data)
    with Image.open(path) as standard:
        assert np.array_equal(np.asarray(standard.convert("RGB")), pixels)
    return pixels


def find_letters(pixels, scale=2):
    """[(letter, row, column)] of every direction letter drawn, found by matching its glyph exactly."""
    ink = np.all(pixels == picture.PALETTE[picture.LETTER], axis=-1)
    found = []
    for letter in "RLAPHF":
        glyph = text_mask(letter, scale)
        windows = np.lib.stride_tricks.sliding_window_view(ink, glyph.shape)
        for row, column in zip(*np.nonzero(np.all(windows == glyph, axis=(2, 3)))):
            found.append((letter, row + glyph.shape[0] / 2, column + glyph.shape[1] / 2))
    return found


def panels(pixels, scale=2):
    """[(view, {edge: (letter, row, column)})] of every view drawn: its four letters found on the pixels.

    A view's left and right letters share a row, its top and bottom letters a
    column, and each pair is centred on the other (within 2 pixels): the two
    pairs that frame one image are a view, named by its letters.
    """
    letters = find_letters(pixels, scale)

    def neighbours(same, along):
        """Pairs of letters on one line (same row or column) with no letter between them."""
        line = sorted(letters, key=lambda found: (found[same], found[along]))
        return [(a, b) for a, b in itertools.pairwise(line) if a[same] == b[same]]

    views_by_letters = {frozenset(v): k for k, v in EDGES.items()}
    found_views = []
    for left, right in neighbours(1, 2):
        for top, bottom in neighbours(2, 1):
            if abs((left[2] + right[2]) / 2 - top[2]) <= 2 and abs((top[1] + bottom[1]) / 2 - left[1]) <= 2:
                edges = {"left": left, "right": right, "top": top, "bottom": bottom}
                found_views.append((views_by_letters[frozenset(e[0] for e in edges.values())], edges))
    assert 4 * len(found_views) == len(letters), (found_views, letters)
    return found_views


def assert_marker_next_to_l_a_h(path, scale=2, series=1):
    """In every view: the letters at the radiological edges, and the marker nearer L, A, H than R, P, F."""
    pixels = read_picture(path)
    found_views = panels(pixels, scale)
    assert sorted(name for name, _ in found_views) == sorted(list(EDGES) * series)
    for name, edges in found_views:
        assert tuple(edges[e][0] for e in ("left", "right", "top", "bottom")) == EDGES[name], name
        top, bottom = int(edges["top"][1]) + 4 * scale, int(edges["bottom"][1]) - 4 * scale
        left, right = int(edges["left"][2]) + 3 * scale, int(edges["right"][2]) - 3 * scale
        region = pixels[top:bottom, left:right]
        bright = np.nonzero(np.all(region >= 250, axis=-1))
        assert len(bright[0]), f"{name}: no marker"
        row, column = bright[0].mean() + top, bright[1].mean() + left
        position = {letter: (r, c) for letter, r, c in edges.values()}
        for letter in set(position) & set(OPPOSITE):
            near = np.hypot(row - position[letter][0], column - position[letter][1])
            far = np.hypot(row - position[OPPOSITE[letter]][0], column - position[OPPOSITE[letter]][1])
            assert near < far, f"{name}: the marker is nearer {OPPOSITE[letter]} than {letter}"


# -- volumes with the marker ---------------------------------------------------------------


def marked_volume(lps_steps, shape=SHAPE):
    """A dim box with a bright marker at the index corner nearest the patient's left, anterior, head.

    ``lps_steps`` is the 3x3 matrix of LPS steps of index x, y, z (columns); each
    index axis goes to the end its dominant LPS direction says.
    """
    volume = np.zeros(shape, np.float32)
    volume[2:-2, 2:-2, 2:-2] = 1.0
    index = []
    for axis in (2, 1, 0):  # index z, y, x are array axes 0, 1, 2
        step = np.asarray(lps_steps)[:, axis]
        dominant = int(np.argmax(np.abs(step)))
        high = np.sign(step[dominant]) == MARKER_DIRECTIONS[dominant]
        index.append(slice(-MARKER, None) if high else slice(0, MARKER))
    volume[tuple(index)] = 10.0
    return volume


def position_affine(position, spacing=SPACING):
    affine = np.diag([*spacing, 1.0])
    affine[:3, :3] = np.diag(POSITION_SIGNS[position]) @ affine[:3, :3]
    affine[:3, 3] = (-20.0, 15.0, -30.0)
    return affine


@pytest.mark.parametrize("position", POSITION_SIGNS)
@pytest.mark.parametrize("convention", ["LPS", "RAS"])
def test_marker_in_every_patient_position_and_convention(tmp_path, position, convention):
    lps = position_affine(position)
    given_affine = lps if convention == "LPS" else np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    out = tmp_path / "series"
    paths = dcmforge.write_series(
        marked_volume(lps[:3, :3]), out, axes="zyx", affine=given_affine, affine_convention=convention, preview=True
    )
    assert len(paths) == SHAPE[0] and preview_path(out) == tmp_path / "series.preview.png"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # DICOM only in the folder
    assert_marker_next_to_l_a_h(preview_path(out))


def test_marker_when_the_index_axes_are_permuted(tmp_path):
    """Sagittal slices: columns run A -> P, rows H -> F, slices R -> L."""
    affine = np.zeros((4, 4))
    affine[:3, :3] = [[0, 0, 2.5], [2.0, 0, 0], [0, -3.0, 0]]
    affine[3, 3] = 1
    dcmforge.write_series(marked_volume(affine[:3, :3]), tmp_path / "s", axes="zyx", affine=affine, affine_convention="LPS",
                          preview=True)  # fmt: skip
    assert_marker_next_to_l_a_h(preview_path(tmp_path / "s"))


def test_marker_in_an_oblique_volume_and_the_picture_says_oblique(tmp_path):
    affine = oblique_affine(degrees=24.0)
    dcmforge.write_series(marked_volume(affine[:3, :3]), tmp_path / "o", axes="zyx", affine=affine, affine_convention="LPS",
                          preview=True)  # fmt: skip
    assert_marker_next_to_l_a_h(preview_path(tmp_path / "o"))
    assert picture.is_oblique(affine) and not picture.is_oblique(position_affine("HFP"))


def test_enhanced_pet_file_and_dynamic_series_show_the_last_frame(tmp_path):
    lps = position_affine("FFS")
    marked = marked_volume(lps[:3, :3])
    dynamic = np.stack([np.flip(marked, axis=(0, 1, 2)), marked])  # only the last frame is right
    two_frames = {**METADATA, "frame_start": [0, 60], "frame_duration": [60, 60]}
    for name, multiframe in (("single", False), ("multi", True)):
        dcmforge.write_series(dynamic, tmp_path / name, axes="zyx", affine=lps, affine_convention="LPS", multiframe=multiframe,
                              preview=True, metadata=two_frames)  # fmt: skip
        assert_marker_next_to_l_a_h(preview_path(tmp_path / name))


def test_ct_uses_a_soft_tissue_window(tmp_path):
    lps = position_affine("HFS")
    hu = marked_volume(lps[:3, :3]) * 100 - 1000  # air -1000, body -900, marker 0 HU
    hu[hu == 0] = 1000.0  # bone-bright marker
    dcmforge.write_series(hu, tmp_path / "ct", axes="zyx", affine=lps, affine_convention="LPS", modality="CT", preview=True)
    assert_marker_next_to_l_a_h(preview_path(tmp_path / "ct"))
    assert picture.window([np.zeros((2, 2))], "CT")[:2] == (-160.0, 240.0)


def test_streamed_series_draws_its_preview_only_when_whole(tmp_path):
    lps = position_affine("HFP")
    volume = marked_volume(lps[:3, :3])
    with dcmforge.SeriesWriter(tmp_path / "whole", SHAPE, axes="zyx", affine=lps, affine_convention="LPS", preview=True) as w:
        for k in range(SHAPE[0]):
            w.write_slice(volume[k])
    assert_marker_next_to_l_a_h(preview_path(tmp_path / "whole"))
    part = dcmforge.SeriesWriter(tmp_path / "part", SHAPE, axes="zyx", affine=lps, affine_convention="LPS", preview=True)
    with pytest.raises(dcmforge.VolumeError), part as w:
        w.write_slice(volume[0])
    assert not preview_path(tmp_path / "part").exists() and not (tmp_path / "part").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_no_preview_unless_asked(tmp_path):
    dcmforge.write_series(np.ones((2, 3, 4)), tmp_path / "plain", spacing=(1, 1, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


# -- Interfile dialects through dcmforge convert ------------------------------------------------------

# LPS sign of each dialect's axes 1, 2, 3 for HFS (README's dialect table; shared/spec/interfile.md 4.1-4.5):
# STIR and 3.3 i -> L, j -> P, k -> feet; CASToR and GATE i -> L, j -> A, k -> head; Siemens i -> L, j -> P, k -> head.
DIALECT_HFS_SIGNS = {
    "stir": (1, 1, -1), "interfile33": (1, 1, -1), "castor": (1, -1, 1), "gate": (1, -1, 1), "siemens": (1, 1, 1),
}  # fmt: skip
# Another position turns STIR's frame: the LPS signs of STIR's x, y, z (spec 4.1).
STIR_POSITION_SIGNS = {"HFS": (1, 1, -1), "HFP": (-1, -1, -1), "FFS": (-1, 1, 1), "FFP": (1, -1, 1)}


def dialect_header(dialect, shape):
    nz, ny, nx = shape
    dx, dy, dz = SPACING
    if dialect == "stir":
        return "img.hv", stir_header(shape, SPACING, data="img.v")
    if dialect == "castor":
        return "img.hdr", castor_header(shape, SPACING, data="img.img")
    if dialect in ("gate", "interfile33"):
        version = "!version of keys := 3.3\n" if dialect == "interfile33" else ""
        text = (f"!INTERFILE :=\n{version}!name of data file := img.i33\nimagedata byte order := LITTLEENDIAN\n"
                f"!matrix size [1] := {nx}\n!matrix size [2] := {ny}\n!number format := float\n"
                f"!number of bytes per pixel := 4\nscaling factor (mm/pixel) [1] := {dx}\n"
                f"scaling factor (mm/pixel) [2] := {dy}\n!number of slices := {nz}\n"
                f"slice thickness (pixels) := {dz / dx}\n!END OF INTERFILE :=\n")  # fmt: skip
        return ("img.h33" if dialect == "gate" else "img.hdr"), text
    text = (f"!INTERFILE:=\n%SMS-MI header name space:=image subheader\nname of data file:=img.v\n"
            f"image data byte order:=LITTLEENDIAN\nnumber format:=float\n!number of bytes per pixel:=4\n"
            f"matrix size[1]:={nx}\nmatrix size[2]:={ny}\nmatrix size[3]:={nz}\nscale factor (mm/pixel) [1]:={dx}\n"
            f"scale factor (mm/pixel) [2]:={dy}\nscale factor (mm/pixel) [3]:={dz}\n!END OF INTERFILE:=\n")  # fmt: skip
    return "img.v.hdr", text


@pytest.mark.parametrize("position", STIR_POSITION_SIGNS)
@pytest.mark.parametrize("dialect", DIALECT_HFS_SIGNS)
def test_marker_in_every_interfile_dialect_and_position(tmp_path, dialect, position):
    assert_converted_marker(tmp_path, dialect, position, "")


@pytest.mark.parametrize("dialect, position, flip", [
    ("stir", "HFS", "x"), ("stir", "FFP", "yz"), ("castor", "HFP", "xyz")
])
def test_marker_when_convert_flips_axes(tmp_path, dialect, position, flip):
    assert_converted_marker(tmp_path, dialect, position, flip)


def assert_converted_marker(tmp_path, dialect, position, flip):
    # The dialect's HFS signs give its axes in STIR's frame; the position's STIR signs give LPS;
    # --flip reverses the axes it names.
    stir_frame = np.multiply(DIALECT_HFS_SIGNS[dialect], STIR_POSITION_SIGNS["HFS"])
    signs = stir_frame * STIR_POSITION_SIGNS[position] * np.array([-1 if a in flip else 1 for a in "xyz"])
    name, text = dialect_header(dialect, SHAPE)
    header = write_image(tmp_path, name, text, marked_volume(np.diag(signs * np.array(SPACING))))
    status = cli.main(["-q", "convert", str(header), "--out", str(tmp_path / "out"), "--dialect", dialect,
                       "--patient-position", position, "--preview", *(["--flip", flip] if flip else [])])  # fmt: skip
    assert status == 0
    (series,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert_marker_next_to_l_a_h(preview_path(series))


# -- the projections ------------------------------------------------------------------------------------


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 4), st.integers(1, 5)),
                  elements=st.floats(-1e6, 1e6, width=32)),
       st.lists(st.integers(1, 7), min_size=1, max_size=20))  # fmt: skip
def test_projections_from_any_chunking_are_the_last_frames_maxima(volume, sizes):
    """Images fed in chunks of any sizes (crossing frames) give the maxima of the last frame."""
    accumulator = ProjectionAccumulator(volume.shape)
    images = volume.reshape(-1, *volume.shape[2:])
    n = 0
    for size in sizes * len(images):
        if n >= len(images):
            break
        accumulator.add_images(images[n : n + size], n, volume.shape[1])
        n += size
    last = volume[-1]
    expected = {"x": last.max(axis=2), "y": last.max(axis=1), "z": last.max(axis=0)}
    for axis, image in accumulator.projections().items():
        assert np.array_equal(image, expected[axis]), axis
    assert accumulator.frame_count == volume.shape[0]


# -- the PNG writer ------------------------------------------------------------------------------------


@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9)) | st.tuples(st.integers(1, 9),
                  st.integers(1, 9), st.just(3))))  # fmt: skip
def test_png_round_trips_through_zlib_and_a_standard_decoder(pixels):
    data = png_bytes(pixels)
    assert np.array_equal(decode_png(data), pixels)
    import io

    with Image.open(io.BytesIO(data)) as standard:
        assert np.array_equal(np.asarray(standard), pixels)


@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 5)),
       st.lists(st.tuples(*[st.integers(0, 255)] * 3), min_size=6, max_size=256))  # fmt: skip
def test_indexed_png_round_trips_through_zlib_and_a_standard_decoder(indices, palette):
    import io

    data = png_bytes(indices, palette)
    expected = np.array(palette, np.uint8)[indices]
    assert np.array_equal(decode_png(data), expected)
    with Image.open(io.BytesIO(data)) as standard:
        assert np.array_equal(np.asarray(standard.convert("RGB")), expected)


def test_png_refuses_a_palette_that_does_not_name_every_index():
    with pytest.raises(dcmforge.DcmforgeError, match="palette"):
        png_bytes(np.full((2, 2), 3, np.uint8), [(0, 0, 0)] * 3)


@pytest.mark.parametrize("bad", [np.zeros((2, 2), np.uint16), np.zeros((2, 2, 4), np.uint8), np.zeros((0, 3), np.uint8)])
def test_png_refuses_what_it_cannot_write(bad):
    with pytest.raises(dcmforge.DcmforgeError, match="a PNG needs uint8 pixels"):
        png_bytes(bad)


# -- the contact sheet, read back from the files ------------------------------------------------------


def test_contact_sheet_of_a_batch_read_back_from_the_files(tmp_path):
    out = tmp_path / "out"
    hfs, ffp, hfp = position_affine("HFS"), position_affine("FFP"), position_affine("HFP")
    dcmforge.write_series(marked_volume(hfs[:3, :3]), out / "a_hfs", axes="zyx", affine=hfs, affine_convention="LPS")
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ffp
    dcmforge.write_series(marked_volume(ffp[:3, :3]), out / "b_ffp_enhanced", axes="zyx", affine=ras, affine_convention="RAS",
                          multiframe=True, metadata=METADATA)  # fmt: skip
    marked = marked_volume(hfp[:3, :3])
    two_frames = {**METADATA, "frame_start": [0, 60], "frame_duration": [60, 60]}
    dcmforge.write_series(np.stack([np.flip(marked), marked]), out / "c_dynamic", axes="zyx", affine=hfp, affine_convention="LPS",
                          metadata=two_frames)  # fmt: skip
    ct = marked_volume(ffp[:3, :3]) * 200 - 1000
    dcmforge.write_series(ct, out / "d" / "ct", axes="zyx", affine=ffp, affine_convention="LPS", modality="CT")
    process = subprocess.run([sys.executable, "-m", "dcmforge.cli", "preview", str(out)], capture_output=True,
                             text=True, env=command_env(), check=False)  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert_marker_next_to_l_a_h(out / "contact-sheet.png", scale=1, series=4)


def test_contact_sheet_names_a_folder_it_cannot_read_and_draws_the_rest(tmp_path):
    hfs = position_affine("HFS")
    dcmforge.write_series(marked_volume(hfs[:3, :3]), tmp_path / "good", axes="zyx", affine=hfs, affine_convention="LPS")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "PT_0001.dcm").write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI")
    sheet = tmp_path / "sheet.png"
    status = cli.main(["-q", "preview", str(tmp_path), "--output", str(sheet)])
    assert status == 2
    assert_marker_next_to_l_a_h(sheet, scale=1, series=1)


def nested_sequences(depth):
    """A Part 10 file (Explicit VR Little Endian) whose one sequence holds an item holding a sequence... depth deep."""
    syntax = b"1.2.840.10008.1.2.1\0"
    meta = struct.pack("<HH2sH", 0x0002, 0x0010, b"UI", len(syntax)) + syntax
    inner = b""
    for _ in range(depth):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
        inner = struct.pack("<HH2sHI", 0x0008, 0x1115, b"SQ", 0, len(item)) + item
    return bytes(128) + b"DICM" + meta + inner


def test_a_file_of_5000_nested_sequences_is_one_line_not_a_recursion_error(tmp_path):
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "PT_0001.dcm").write_bytes(nested_sequences(5000))
    process = subprocess.run([sys.executable, "-m", "dcmforge.cli", "preview", str(tmp_path), "--output",
                              str(tmp_path / "sheet.png")], capture_output=True, text=True, env=command_env())  # fmt: skip
    assert process.returncode == 2
    assert process.stderr.splitlines() == [f"{tmp_path / 'deep' / 'PT_0001.dcm'}: sequences nest deeper than 16 "
                                           "levels at byte 480"]  # fmt: skip
    assert Image.open(tmp_path / "sheet.png").size  # the sheet holds its row with the reason


def test_a_series_folder_named_contact_sheet_png_is_told_and_kept(tmp_path):
    hfs = position_affine("HFS")
    dcmforge.write_series(marked_volume(hfs[:3, :3]), tmp_path / "contact-sheet.png", axes="zyx", affine=hfs,
                          affine_convention="LPS")  # fmt: skip
    before = sorted(p.name for p in (tmp_path / "contact-sheet.png").iterdir())
    process = subprocess.run([sys.executable, "-m", "dcmforge.cli", "preview", str(tmp_path)], capture_output=True,
                             text=True, env=command_env())  # fmt: skip
    assert process.returncode == 2
    assert process.stderr.splitlines() == [f"{tmp_path / 'contact-sheet.png'}: a folder is there; name the contact "
                                           "sheet with --output"]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "contact-sheet.png").iterdir()) == before
    assert cli.main(["-q", "preview", str(tmp_path), "--output", str(tmp_path / "sheet.png")]) == 0
    assert_marker_next_to_l_a_h(tmp_path / "sheet.png", scale=1, series=1)


def test_reading_back_what_dcmforge_wrote_gives_its_affine_and_values(tmp_path):
    affine = oblique_affine()
    volume = marked_volume(affine[:3, :3])
    dcmforge.write_series(volume, tmp_path / "s", axes="zyx", affine=affine, affine_convention="LPS")
    dcmforge.write_series(volume, tmp_path / "m", axes="zyx", affine=affine, affine_convention="LPS", multiframe=True,
                          metadata=METADATA)  # fmt: skip
    dcmforge.write_series(volume, tmp_path / "nm", axes="zyx", affine=affine, affine_convention="LPS", modality="NM")
    for name in ("s", "m", "nm"):
        series = read_series(tmp_path / name)
        assert np.allclose(series.affine, affine, atol=1e-5)
        assert np.allclose(series.accumulator.projections()["z"], volume.max(axis=0), rtol=1e-4)


@pytest.fixture(scope="module")
def one_file(tmp_path_factory):
    """The bytes of one small file dcmforge wrote."""
    folder = tmp_path_factory.mktemp("one") / "series"
    (path,) = dcmforge.write_series(np.ones((1, 2, 3)), folder, spacing=(1, 1, 1))
    return path.read_bytes()


@given(junk=st.binary(max_size=300), cut=st.integers(0, 400))
def test_the_reader_refuses_any_damage_with_its_own_error(one_file, junk, cut):
    damages = (one_file[:cut] + junk, one_file[: len(one_file) - cut] + junk, bytes(128) + b"DICM" + junk)
    with tempfile.TemporaryDirectory() as folder:
        for damaged in damages:
            (Path(folder) / "PT_0001.dcm").write_bytes(damaged)
            try:
                read_series(folder)
            except dcmforge.DcmforgeError:
                pass


def command_env():
    """This checkout's src first on the path of a dcmforge process."""
    source = str(Path(dcmforge.__file__).parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)}


# -- convert --resume --preview: a batch first written without pictures ----------------------------------


def run_convert(*args):
    return subprocess.run([sys.executable, "-m", "dcmforge.cli", "convert", *map(str, args)], capture_output=True,
                          text=True, env=command_env(), check=False)  # fmt: skip


def stats(out):
    """(name, mtime_ns, inode) of every series folder under out and of every file in them."""
    return sorted((str(p.relative_to(out)), p.stat().st_mtime_ns, p.stat().st_ino)
                  for folder in out.iterdir() if folder.is_dir() for p in (folder, *folder.iterdir()))  # fmt: skip


def stir_inputs(folder):
    """Two STIR headers (HFS) of the marked volume: axes x, y towards L, P; z towards the feet."""
    folder.mkdir()
    volume = marked_volume(np.diag(np.array((1, 1, -1)) * SPACING))
    return [dcmforge.write_interfile(folder / f"{name}.hv", volume, spacing=SPACING) for name in ("a", "b")]


def test_resume_with_preview_skips_a_batch_written_without_and_draws_its_pictures_from_the_files(tmp_path):
    headers, out = stir_inputs(tmp_path / "in"), tmp_path / "out"
    assert run_convert(*headers, "--out", out, "--seed", "s").returncode == 0
    before = stats(out)
    resumed = run_convert(*headers, "--out", out, "--seed", "s", "--resume", "--preview")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("already converted") == 2 and resumed.stdout.count("drawn from its files") == 2
    assert stats(out) == before  # nothing in the series was written again
    for name in ("a", "b"):
        assert "preview: " + str(preview_path(out / name)) in resumed.stdout
        assert_marker_next_to_l_a_h(preview_path(out / name))  # decoded by zlib and by Pillow
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    pictures = [preview_path(out / name).stat().st_mtime_ns for name in ("a", "b")]
    again = run_convert(*headers, "--out", out, "--seed", "s", "--resume", "--preview")
    assert again.returncode == 0 and again.stdout.count("already converted") == 2
    assert "drawn" not in again.stdout  # a picture that is there is kept
    assert [preview_path(out / name).stat().st_mtime_ns for name in ("a", "b")] == pictures


def test_resume_without_preview_skips_a_batch_written_with_it(tmp_path):
    headers, out = stir_inputs(tmp_path / "in"), tmp_path / "out"
    assert run_convert(*headers, "--out", out, "--seed", "s", "--preview").returncode == 0
    before = stats(out)
    resumed = run_convert(*headers, "--out", out, "--seed", "s", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("already converted") == 2 and "preview: " not in resumed.stdout
    assert stats(out) == before


def test_a_skipped_series_that_cannot_be_read_back_gets_a_warning_not_a_failure(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "PT_0001.dcm").write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI")
    skipped = ConversionResult(str(tmp_path / "in.hv"), str(folder), SKIPPED, "in.hv -> series: already converted")
    result = with_preview(skipped)
    assert result.status == SKIPPED and result.exit_status == 0
    assert len(result.warnings) == 1 and "no preview drawn from its files" in result.warnings[0]
    assert not preview_path(folder).exists()
