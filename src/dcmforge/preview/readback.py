"""A minimal reader of the series dcmforge writes, for contact sheets: no pydicom at run time.

It reads Part 10 files in Explicit VR Little Endian whose sequences and items
have defined lengths (what dcmforge's encoder writes, dicom/encode.py) and
takes from them what a picture needs: pixels, rescale, position and
orientation, in single-frame PET and CT series and Enhanced PET files. Any
other file is refused with a PreviewError naming it and the byte at fault.
"""

import os
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..dicom.part10 import PREAMBLE
from ..dicom.vr import NUMBER_DTYPES, VR_RULES
from ..errors import PreviewError
from .projection import ProjectionAccumulator

_ELEMENT = struct.Struct("<HH2sH")
_ITEM = struct.Struct("<HHI")
_ITEM_TAG = (0xFFFE, 0xE000)
_UNDEFINED = 0xFFFFFFFF
_TRANSFER_SYNTAX = 0x00020010
_EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
# Sequences dcmforge writes nest three deep (functional groups); deeper ones are refused before Python's stack is.
MAX_DEPTH = 16

# tags read, by keyword (PS3.6)
MODALITY = 0x00080060
INSTANCE_NUMBER = 0x00200013
POSITION = 0x00200032
ORIENTATION = 0x00200037
NUMBER_OF_FRAMES = 0x00280008
ROWS, COLUMNS = 0x00280010, 0x00280011
PIXEL_SPACING = 0x00280030
PIXEL_REPRESENTATION = 0x00280103
INTERCEPT, SLOPE = 0x00281052, 0x00281053
NUMBER_OF_SLICES = 0x00540081
SPACING_BETWEEN_SLICES, DETECTOR_INFORMATION = 0x00180088, 0x00540022
PIXEL_DATA = 0x7FE00010
SHARED_GROUPS, PER_FRAME_GROUPS = 0x52009229, 0x52009230
PIXEL_MEASURES, PLANE_POSITION, PLANE_ORIENTATION = 0x00289110, 0x00209113, 0x00209116
VALUE_TRANSFORMATION = 0x00289145


def read_dataset(path):
    """{tag: (VR, value)} of a file's top level (meta group included); a sequence's value is a list of those."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[: len(PREAMBLE)]) != PREAMBLE:
        raise PreviewError(f"{path}: not a DICOM Part 10 file (no DICM after the preamble)")
    dataset = _elements(data, len(PREAMBLE), len(data), path)
    if text(dataset, _TRANSFER_SYNTAX, path) != _EXPLICIT_LITTLE:
        raise PreviewError(f"{path}: transfer syntax {text(dataset, _TRANSFER_SYNTAX, path)!r} is not dcmforge's")
    return dataset


def _elements(data, start, end, path, depth=0):
    elements, position = {}, start
    while position < end:
        if position + _ELEMENT.size > end:
            raise PreviewError(f"{path}: an element header is cut off at byte {position}")
        at = position
        group, element, vr_bytes, length = _ELEMENT.unpack_from(data, position)
        vr = vr_bytes.decode("latin-1")
        rule = VR_RULES.get(vr)
        if rule is None:
            raise PreviewError(f"{path}: ({group:04X},{element:04X}) has no known VR ({vr!r}) at byte {position}")
        position += _ELEMENT.size
        if rule.long_header:
            if position + 4 > end:
                raise PreviewError(f"{path}: ({group:04X},{element:04X}) length cut off at byte {position}")
            (length,) = struct.unpack_from("<I", data, position)
            position += 4
        if length == _UNDEFINED or position + length > end:
            raise PreviewError(f"{path}: ({group:04X},{element:04X}) length {length} runs past its end at byte {position}")
        value = data[position : position + length]
        if vr == "SQ":
            if depth == MAX_DEPTH:
                raise PreviewError(f"{path}: sequences nest deeper than {MAX_DEPTH} levels at byte {at}")
            value = _items(data, position, position + length, path, depth + 1)
        elements[(group << 16) | element] = (vr, value)
        position += length
    return elements


def _items(data, start, end, path, depth):
    items, position = [], start
    while position < end:
        if position + _ITEM.size > end:
            raise PreviewError(f"{path}: an item header is cut off at byte {position}")
        group, element, length = _ITEM.unpack_from(data, position)
        position += _ITEM.size
        if (group, element) != _ITEM_TAG or length == _UNDEFINED or position + length > end:
            raise PreviewError(f"{path}: not an item with a defined length at byte {position - _ITEM.size}")
        items.append(_elements(data, position, position + length, path, depth))
        position += length
    return items


def text(dataset, tag, path):
    """The element's text, stripped, or None when absent."""
    if tag not in dataset:
        return None
    vr, value = dataset[tag]
    if vr == "SQ":
        raise PreviewError(f"{path}: ({tag >> 16:04X},{tag & 0xFFFF:04X}) is a sequence, not text")
    return bytes(value).decode("latin-1").rstrip("\0 ").strip()


def numbers(dataset, tag, path, count=None):
    """The element's values as floats (DS, IS and binary numbers); PreviewError when absent or not numbers."""
    if tag not in dataset:
        raise PreviewError(f"{path}: no ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    vr, value = dataset[tag]
    try:
        if vr == "SQ":
            values = []
        elif vr in NUMBER_DTYPES:
            values = np.frombuffer(value, NUMBER_DTYPES[vr]).astype(np.float64).tolist()
        else:
            values = [float(v) for v in text(dataset, tag, path).split("\\")]
    except ValueError:
        values = []
    if not values or (count is not None and len(values) != count) or not np.all(np.isfinite(values)):
        raise PreviewError(f"{path}: ({tag >> 16:04X},{tag & 0xFFFF:04X}) is not {count or 'some'} number(s)")
    return values


def _grouped(item, shared, sequence, tag, path):
    """A functional group's value: the frame's own, else the shared one."""
    for source in (item, shared):
        items = source[sequence][1] if sequence in source else []
        if items and isinstance(items, list) and tag in items[0]:
            return numbers(items[0], tag, path)
    raise PreviewError(f"{path}: no ({tag >> 16:04X},{tag & 0xFFFF:04X}) in its functional groups")


class SeriesProjections(NamedTuple):
    """What a contact sheet row needs of one series."""

    accumulator: ProjectionAccumulator  # its projections (of the last time frame) and frame count
    affine: np.ndarray  # index (x, y, z) -> LPS, from its files
    modality: str


def read_series(folder):
    """SeriesProjections of the series in folder (single-frame files, one Enhanced PET or one NM file)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix == ".dcm" and not p.name.startswith("."))
    if not files:
        raise PreviewError(f"{folder}: no .dcm files")
    first = read_dataset(files[0])
    if NUMBER_OF_FRAMES in first and PER_FRAME_GROUPS in first:
        return _enhanced(files[0], first)
    if NUMBER_OF_FRAMES in first and DETECTOR_INFORMATION in first:
        return _nm(files[0], first)
    return _single_frames(files, first)


def _pixels(dataset, path, count=1):
    rows, columns = (int(numbers(dataset, tag, path, 1)[0]) for tag in (ROWS, COLUMNS))
    signed = numbers(dataset, PIXEL_REPRESENTATION, path, 1)[0] == 1
    if rows < 1 or columns < 1 or count < 1 or PIXEL_DATA not in dataset or dataset[PIXEL_DATA][0] == "SQ" or \
            len(dataset[PIXEL_DATA][1]) != count * rows * columns * 2:
        raise PreviewError(f"{path}: PixelData does not hold {count} frame(s) of {rows} x {columns} 16-bit pixels")
    return np.frombuffer(dataset[PIXEL_DATA][1], "<i2" if signed else "<u2").reshape(count, rows, columns)


def _affine(orientation, spacing, first, second, path):
    """index (x, y, z) -> LPS from IOP, PixelSpacing (row, column) and the first two slices' IPP."""
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1] = row * spacing[1], column * spacing[0]
    affine[:3, 2] = np.subtract(second, first) if second is not None else np.cross(row, column)
    affine[:3, 3] = first
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise PreviewError(f"{path}: its orientation and positions do not describe a volume")
    return affine


def _single_frames(files, first):
    path = files[0]
    modality = text(first, MODALITY, path) or "PT"
    slices = int(numbers(first, NUMBER_OF_SLICES, path, 1)[0]) if NUMBER_OF_SLICES in first else len(files)
    if slices < 1 or len(files) % slices:
        raise PreviewError(f"{path}: {len(files)} files are not whole frames of {slices} slices")
    rows, columns = _pixels(first, path).shape[1:]
    accumulator = ProjectionAccumulator((len(files) // slices, slices, rows, columns))
    positions = {}
    for path in files:
        dataset = first if path == files[0] else read_dataset(path)
        n = int(numbers(dataset, INSTANCE_NUMBER, path, 1)[0]) - 1
        if not 0 <= n < len(files):
            raise PreviewError(f"{path}: InstanceNumber {n + 1} is not one of 1..{len(files)}")
        frame, z = divmod(n, slices)
        if frame == accumulator.frame:
            slope, intercept = numbers(dataset, SLOPE, path, 1)[0], numbers(dataset, INTERCEPT, path, 1)[0]
            accumulator.add(_pixels(dataset, path) * slope + intercept, z, frame)
            positions[z] = numbers(dataset, POSITION, path, 3)
    if len(positions) != slices:
        raise PreviewError(f"{files[0]}: the last time frame lacks slices (InstanceNumber repeated)")
    orientation, spacing = numbers(first, ORIENTATION, files[0], 6), numbers(first, PIXEL_SPACING, files[0], 2)
    return SeriesProjections(
        accumulator, _affine(orientation, spacing, positions[0], positions.get(1), files[0]), modality
    )


def _enhanced(path, dataset):
    frames = int(numbers(dataset, NUMBER_OF_FRAMES, path, 1)[0])
    per_frame = dataset[PER_FRAME_GROUPS][1]
    shared = dataset.get(SHARED_GROUPS, ("SQ", [{}]))[1]
    shared = shared[0] if isinstance(shared, list) and shared else {}
    if not isinstance(per_frame, list) or frames < 1 or len(per_frame) != frames:
        raise PreviewError(f"{path}: {len(per_frame)} per-frame items for {frames} frames")
    positions = [tuple(_grouped(item, shared, PLANE_POSITION, POSITION, path)) for item in per_frame]
    slices = len(dict.fromkeys(positions))  # frames are time-major: a position repeats once per time frame
    if frames % slices:
        raise PreviewError(f"{path}: {frames} frames are not whole time frames of {slices} slices")
    stored = _pixels(dataset, path, frames)
    accumulator = ProjectionAccumulator((frames // slices, slices, *stored.shape[1:]))
    last = accumulator.frame * slices
    for z in range(slices):
        item = per_frame[last + z]
        slope = _grouped(item, shared, VALUE_TRANSFORMATION, SLOPE, path)[0]
        intercept = _grouped(item, shared, VALUE_TRANSFORMATION, INTERCEPT, path)[0]
        accumulator.add(stored[last + z : last + z + 1] * slope + intercept, z, accumulator.frame)
    orientation = _grouped(per_frame[0], shared, PLANE_ORIENTATION, ORIENTATION, path)
    spacing = _grouped(per_frame[0], shared, PIXEL_MEASURES, PIXEL_SPACING, path)
    second = positions[1] if slices > 1 else None
    return SeriesProjections(accumulator, _affine(orientation, spacing, positions[0], second, path), "PT")


def _nm(path, dataset):
    """One NM Image file: its frames step along the normal from the first one's position in
    DetectorInformationSequence, SpacingBetweenSlices apart (PS3.3 C.8.4.14); one rescale for all."""
    frames = int(numbers(dataset, NUMBER_OF_FRAMES, path, 1)[0])
    stored = _pixels(dataset, path, frames)
    slope, intercept = numbers(dataset, SLOPE, path, 1)[0], numbers(dataset, INTERCEPT, path, 1)[0]
    accumulator = ProjectionAccumulator((1, *stored.shape))
    for z in range(frames):
        accumulator.add(stored[z : z + 1] * slope + intercept, z, 0)
    detectors = dataset[DETECTOR_INFORMATION][1]
    if not isinstance(detectors, list) or len(detectors) != 1:
        raise PreviewError(f"{path}: DetectorInformationSequence does not hold one item")
    orientation = numbers(detectors[0], ORIENTATION, path, 6)
    first = numbers(detectors[0], POSITION, path, 3)
    step = numbers(dataset, SPACING_BETWEEN_SLICES, path, 1)[0]
    second = np.add(first, step * np.cross(orientation[:3], orientation[3:])) if frames > 1 else None
    spacing = numbers(dataset, PIXEL_SPACING, path, 2)
    return SeriesProjections(accumulator, _affine(orientation, spacing, first, second, path), "NM")


def series_folders(root):
    """Every folder under root (root included) that holds .dcm files, in name order; hidden ones skipped."""
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        if any(name.endswith(".dcm") and not name.startswith(".") for name in names):
            found.append(Path(folder))
    return sorted(found)
