"""Where an Interfile image's voxels are in its data file.

From a parsed header (:mod:`dcmforge.readers.interfile.grammar`): the data file's path,
the numpy dtype (number format, bytes per pixel, byte order), the shape of one
frame and the byte offset of each frame (a :class:`Layout`), and numpy.memmap
views of the file, [z, y, x] per frame. :mod:`dcmforge.readers.interfile` calls these
while reading an image; :mod:`dcmforge.readers.interfile.scaling` scales the values.
"""

import math
import os
from typing import NamedTuple
from pathlib import Path

import numpy as np

from ...errors import InterfileError
from ...paths import check_inside, not_a_file
from .grammar import normalise_key
from .numbers import entry_count, loose_number

# number format (normalised) -> {bytes per pixel: numpy kind}
NUMBER_FORMATS = {
    "unsignedinteger": {1: "u1", 2: "u2", 4: "u4", 8: "u8"},
    "signedinteger": {1: "i1", 2: "i2", 4: "i4", 8: "i8"},
    "float": {4: "f4", 8: "f8"},
    "shortfloat": {4: "f4"},
    "longfloat": {8: "f8"},
}
DEFAULT_BYTES_PER_PIXEL = {"float": 4, "shortfloat": 4, "longfloat": 8}
UNSUPPORTED_FORMATS = {
    "longlongfloat": "16-byte floats (CASToR 'long long float') have no portable numpy type",
    "bit": "bit images are not supported",
    "ascii": "ASCII pixel data is not supported",
}
# STIR, CASToR and Siemens always write the byte order; GATE and plain 3.3 files may not,
# and then the standard's BIGENDIAN applies (as in STIR and GATE).
BYTE_ORDERS = {"littleendian": "<", "bigendian": ">"}
# Data file next to a header that does not name one (GATE falls back to .i33).
DATA_SUFFIX_FOR_HEADER = {".h33": ".i33", ".hv": ".v", ".hdr": ".img"}


class Layout(NamedTuple):
    """Where the voxels of each frame are in the data file."""

    dtype: np.dtype
    shape: tuple  # (z, y, x) of one frame
    offsets: tuple  # byte offset of each frame

    @property
    def frame_bytes(self):
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def contiguous(self):
        """The frames follow each other without gaps: one memmap can cover them all."""
        return self.offsets == tuple(self.offsets[0] + f * self.frame_bytes for f in range(len(self.offsets)))

    @property
    def offset_declared(self):
        """The header placed the data somewhere other than one block from byte 0."""
        return self.offsets[0] != 0 or not self.contiguous


def layout_from_header(header, dialect, data_size, warnings):
    """The Layout the header describes; data_size (bytes of the data file) bounds the frame count."""
    for index, entry in sorted(header.indexed("matrix axis label").items()):
        if index <= 3 and normalise_key(entry.value) != "xyz"[index - 1]:
            raise header.fail(entry, f"expected '{'xyz'[index - 1]}': only images stored x, y, z are supported")
    gates = gate_count(header)
    if gates > 1:
        raise InterfileError(f"{header.source}: gated images ({gates} gates per frame) are not supported")
    for key, index in (("matrix size", 1), ("matrix size", 2), ("matrix size", 3), ("number format", None),
                       ("number of bytes per pixel", None)):  # fmt: skip
        values = {e.value.lower() for e in header.all(key, index)}
        if len(values) > 1:  # CASToR repeats the image block once per frame
            raise header.fail(header.get(key, index), "frames with different sizes or formats are not supported")
    for index in header.indexed("matrix size"):
        if index > 4 and header.count("matrix size", index) > 1:
            raise header.fail(header.get("matrix size", index), "images with more than 4 dimensions are not supported")
    dtype = _dtype(header, warnings)
    frames = _frame_count(header, dialect, warnings)
    shape = (_slice_count(header, frames, warnings), _required_size(header, 2), _required_size(header, 1))
    frame_bytes = math.prod(shape) * dtype.itemsize
    explicit = header.indexed("data offset in bytes")
    if frames > len(explicit) + data_size // frame_bytes + 1:  # refuse before listing absurd numbers of frames
        raise InterfileError(
            f"{header.source}: {frames} time frames of {frame_bytes} bytes cannot fit in the data file "
            f"of {data_size} bytes"
        )
    return Layout(dtype, shape, _frame_offsets(header, frames, frame_bytes, warnings))


def gate_count(header):
    """Gates per frame (respiratory times cardiac): 1 for an image that is not gated."""
    return header.count("number of respiratory gates", default=1) * header.count("number of cardiac gates", default=1)


def _required_size(header, axis):
    size = header.count("matrix size", axis)
    if size is None:
        raise InterfileError(f"{header.source}: no 'matrix size [{axis}]' key: the image size is unknown")
    return size


def _dtype(header, warnings):
    entry = header.get("number format")
    if entry is None:
        warnings.append(f"{header.source}: no 'number format': assumed unsigned integer (the 3.3 default)")
        number_format = "unsignedinteger"
    else:
        number_format = normalise_key(entry.value)
    sizes = NUMBER_FORMATS.get(number_format)
    if sizes is None:
        problem = UNSUPPORTED_FORMATS.get(number_format, "unknown number format")
        raise header.fail(entry, problem)
    bytes_per_pixel = header.count("number of bytes per pixel", default=DEFAULT_BYTES_PER_PIXEL.get(number_format))
    if bytes_per_pixel is None:
        raise InterfileError(f"{header.source}: no 'number of bytes per pixel' for integer data")
    if bytes_per_pixel not in sizes:
        where = entry or header.get("number of bytes per pixel")
        raise header.fail(where, f"{bytes_per_pixel} bytes per pixel is not supported for this number format")
    order_entry = header.get("imagedata byte order")  # Siemens' "image data byte order" is the same key
    if order_entry is None:
        if bytes_per_pixel > 1:
            warnings.append(f"{header.source}: no 'imagedata byte order': assumed BIGENDIAN (the 3.3 default)")
        order = ">"
    else:
        order = BYTE_ORDERS.get(normalise_key(order_entry.value))
        if order is None:
            raise header.fail(order_entry, "expected LITTLEENDIAN or BIGENDIAN")
    return np.dtype(order + sizes[bytes_per_pixel])


def _frame_count(header, dialect, warnings):
    by_key = header.count("number of time frames")
    by_size = header.count("matrix size", 4)
    if by_key and by_size and by_key != by_size:
        warnings.append(
            f"{header.source}: number of time frames ({by_key}) and matrix size [4] ({by_size}) differ: "
            f"used {by_key}"
        )
    frames = by_key or by_size
    if frames is None and dialect == "castor":
        frames = header.count("number of frame groups")
    return frames or 1


def _slice_count(header, frames, warnings):
    """Slices per frame: matrix size [3], else number of slices, else the 3.3 image counts."""
    candidates = [
        ("matrix size [3]", header.get("matrix size", 3)),
        ("number of slices", header.get("number of slices")),
        ("number of images/energy window", header.get("number of images/energy window")),
    ]
    present = [(name, entry) for name, entry in candidates if entry is not None]
    total = header.get("total number of images")
    if present:
        name, entry = present[0]
        slices = entry_count(header, entry)
    elif total is not None:
        name, slices = "total number of images", entry_count(header, total, minimum=frames) // frames
    else:
        warnings.append(f"{header.source}: no slice count: read as a single slice")
        return 1
    for other, other_entry in present[1:] + ([("total number of images", total)] if total else []):
        expected = slices * frames if other == "total number of images" else slices
        if other_entry.value.strip() and loose_number(other_entry.value) != expected:
            warnings.append(
                f"{header.source}: {other} := {other_entry.value} disagrees with {name} ({slices} per frame, "
                f"{frames} frame(s)): used {name}"
            )
    return slices


def _frame_offsets(header, frames, frame_bytes, warnings):
    in_bytes = header.count("data offset in bytes", minimum=0)
    block = header.count("data starting block", minimum=0)
    if in_bytes is not None and block is not None and in_bytes != block * 2048:
        warnings.append(f"{header.source}: data offset in bytes and data starting block differ: used the offset")
    first = in_bytes if in_bytes is not None else (block * 2048 if block is not None else 0)
    explicit = header.indexed("data offset in bytes")
    offsets = []
    for frame in range(frames):
        entry = explicit.get(frame + 1)
        if entry is not None:
            offsets.append(entry_count(header, entry, minimum=0))
        else:  # frames follow each other unless the header says otherwise
            offsets.append(first if frame == 0 else offsets[-1] + frame_bytes)
    return tuple(offsets)


def find_data_file(header_path, header, warnings, allow_outside=False):
    """The data file, relative to the header's folder (absolute and Windows paths accepted); one outside the
    header's folder tree is an InterfileError unless ``allow_outside``."""
    entry = header.get("name of data file")
    if entry is None or not entry.value.strip():
        suffix = DATA_SUFFIX_FOR_HEADER.get(header_path.suffix.lower())
        if suffix is None:
            raise InterfileError(f"{header_path}: no 'name of data file' key")
        warnings.append(f"{header_path}: no 'name of data file': assumed {header_path.with_suffix(suffix).name}")
        return header_path.with_suffix(suffix)
    written = header_path.parent / _portable_name(entry.value)
    path = resolve_name(header_path.parent, entry.value)
    check_inside(header_path, path, allow_outside, InterfileError)
    if not _is_file(path):
        kind = not_a_file(path)
        found = f"{path} is {kind}, not a data file" if kind else f"data file not found (looked for {written})"
        raise header.fail(entry, found)
    if path != written:
        warnings.append(f"{header_path}: data file {written} not found: used {path}")
    return path


def _portable_name(name):
    return name.strip().strip('"').replace("\\", "/")


def resolve_name(folder, name):
    """name relative to folder (an absolute name stays absolute); when that is not a file,
    the bare file name in folder (e.g. a Windows path C:\\data\\img.v written elsewhere)."""
    candidate = folder / _portable_name(name)
    if _is_file(candidate):
        return candidate
    fallback = folder / Path(_portable_name(name)).name
    return fallback if _is_file(fallback) else candidate


def _is_file(path):
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def data_file_size(data_path, header_path):
    """Size of the data file in bytes."""
    kind = not_a_file(data_path)
    if kind:
        raise InterfileError(f"{header_path}: the data file {data_path} is {kind}, not a file")
    try:
        return os.stat(data_path).st_size
    except (OSError, ValueError) as exc:
        raise InterfileError(f"{header_path}: cannot open the data file {data_path}: {exc}") from None


def map_data(data_path, size, layout, header_path, warnings):
    """(the whole data as one memmap or None, one memmap [z, y, x] per frame)."""
    frame_bytes = layout.frame_bytes
    needed = max(layout.offsets) + frame_bytes
    described = (
        f"{len(layout.offsets)} frame(s) of {'x'.join(map(str, reversed(layout.shape)))} voxels of "
        f"{layout.dtype.itemsize} byte(s) from byte {layout.offsets[0]}"
    )
    if size < needed:
        raise InterfileError(
            f"{data_path}: the data file has {size} bytes but the header {header_path} needs {needed} ({described})"
        )
    if size > needed:
        # A longer file is read only when the header placed the data at an offset: then the
        # data is a region of a bigger file (data after a header, several data sets, frames at
        # given offsets). Otherwise extra bytes mean the header's sizes or number format do not
        # describe the file, and reading its start would give a plausible but wrong image.
        if not layout.offset_declared:
            raise InterfileError(
                f"{data_path}: the data file has {size} bytes but the header {header_path} describes {needed} "
                f"({described}): the sizes or number format do not match the data"
            )
        warnings.append(f"{data_path}: {size - needed} bytes after the image data are not part of the image")
    try:
        if layout.contiguous:
            shape = (len(layout.offsets),) + layout.shape
            whole = np.memmap(data_path, layout.dtype, "r", layout.offsets[0], shape)
            return whole, list(whole)
        frames = [np.memmap(data_path, layout.dtype, "r", offset, layout.shape) for offset in layout.offsets]
    except (OSError, ValueError) as exc:
        raise InterfileError(f"{header_path}: cannot map the data file {data_path}: {exc}") from None
    return None, frames
