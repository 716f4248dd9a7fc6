"""Read MetaImage files (.mhd with its data file, .mha with the data inline), ITK's simple text header.

The header is ``Key = Value`` lines; ``ElementDataFile`` is the last key and says where
the voxels are: ``LOCAL`` (right after the header, .mha), a file name (relative to
the header's folder), ``LIST`` (one file name per following line) or a pattern
``name%03d.raw first last step``. Geometry follows ITK (its MetaImageIO), which is
already LPS: voxel (i, j, k) is at ``Offset + sum over axes a of index_a *
ElementSpacing[a] * direction_a``, where direction_a is the a-th group of NDims
numbers of ``TransformMatrix`` (a column of ITK's direction matrix).
``AnatomicalOrientation`` is only checked against it, as ITK ignores it too.
Uncompressed data in one file is memory-mapped; zlib-compressed data is inflated.
"""

import math
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import MetaImageError
from ..geometry import finite_vector, from_affine
from ..image import METAIMAGE, Image
from ..paths import check_inside, read_regular_file
from .inflate import DEFLATE_MOST, cannot_inflate_to

ELEMENT_TYPES = {
    "MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4",
    "MET_UINT": "u4", "MET_LONG": "i4", "MET_ULONG": "u4", "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8",
    "MET_FLOAT": "f4", "MET_DOUBLE": "f8",
}  # fmt: skip
ORIGIN_KEYS = ("Offset", "Position", "Origin")
DIRECTION_KEYS = ("TransformMatrix", "Orientation", "Rotation")
BYTE_ORDER_KEYS = ("ElementByteOrderMSB", "BinaryDataByteOrderMSB")
# ITK names each axis by the side it comes from: +x (towards L) is "R", -x is "L", and so on.
_FROM_LETTERS = ("RL", "AP", "IS")
_HEADER_LIMIT = 1 << 20  # bytes of text before ElementDataFile; headers are a few hundred
_PATTERN = re.compile(r"^(?P<name>\S*%\d*d\S*)\s+(?P<first>-?\d+)\s+(?P<last>-?\d+)(?:\s+(?P<step>-?\d+))?$")


def read_metaimage(
    path: str | os.PathLike, *, first_voxel: Sequence[float] | None = None, allow_data_outside: bool = False
) -> Image:
    """Read the MetaImage at path into a :class:`dcmforge.image.Image`.

    first_voxel: LPS mm of the centre of voxel [0, 0, 0], replacing the header's Offset.
    A data file outside the header's folder tree is refused unless allow_data_outside.
    Raises MetaImageError for anything that is not a readable image.
    """
    path = Path(path)
    keys, data_start, listed = _read_header(path)
    warnings = []
    ndims = _integer(path, keys, "NDims")
    if not 2 <= ndims <= 4:
        raise MetaImageError(f"{path}: NDims = {ndims}: 2-D, 3-D and 4-D images are supported")
    object_type = keys.get("ObjectType", "Image")
    if object_type.lower() != "image":
        raise MetaImageError(f"{path}: ObjectType = {object_type}: only Image objects are read")
    sizes = _numbers(path, keys, "DimSize", ndims, int)
    if any(n < 1 for n in sizes):
        raise MetaImageError(f"{path}: DimSize = {keys['DimSize']}: every axis needs at least one voxel")
    dtype = _dtype(path, keys)
    shape = tuple(reversed(sizes)) if ndims > 2 else (1, *reversed(sizes))  # x varies fastest
    data_path, volume = _voxels(path, keys, data_start, listed, dtype, shape, warnings, allow_data_outside)
    affine = _affine(path, keys, ndims, warnings)
    if first_voxel is not None:
        affine[:3, 3] = finite_vector(first_voxel, 3, "first_voxel (LPS mm)")
        warnings.append(f"{path}: voxel [0,0,0] placed at {affine[:3, 3].tolist()} LPS mm by the option, not Offset")
    geometry = from_affine(affine, "LPS")
    if ndims == 4:
        warnings.append(f"{path}: 4-D image read as {sizes[3]} frames; MetaImage has no time unit, so frame times "
                        "must come from --meta")  # fmt: skip
    convention = "MetaImage (ITK, LPS): Offset + TransformMatrix directions x ElementSpacing"
    return Image(path, data_path, METAIMAGE, "MetaImage", volume, geometry.affine, geometry.spacing, convention, {},
                 warnings, keys)  # fmt: skip


# -- the header --------------------------------------------------------------------------


def _read_header(path):
    """(keys, offset of the byte after the ElementDataFile line, file names listed after it)."""
    try:
        text = read_regular_file(path, _HEADER_LIMIT)  # a FIFO is refused, not waited on
    except FileNotFoundError:
        raise MetaImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise MetaImageError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    keys = {}
    position = 0
    while position < len(text):
        end = text.find(b"\n", position)
        line_end = len(text) if end < 0 else end + 1
        raw = text[position:line_end]
        position = line_end
        line = raw.decode("latin-1").strip()
        if not line:
            continue
        key, equals, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key or not key.replace("_", "").isalnum():
            raise MetaImageError(f"{path}: line {line[:60]!r} is not 'Key = Value'")
        keys[_canonical(key)] = value
        if _canonical(key) == "ElementDataFile":
            listed = []
            if value.upper().startswith("LIST"):
                listed = [ln.strip() for ln in text[position:].decode("latin-1").splitlines() if ln.strip()]
            return keys, position, listed
    raise MetaImageError(f"{path}: no ElementDataFile key: not a MetaImage header")


_KNOWN = ("ObjectType", "NDims", "DimSize", "ElementSpacing", *ORIGIN_KEYS, *DIRECTION_KEYS,
          "AnatomicalOrientation", "ElementType", "ElementNumberOfChannels", *BYTE_ORDER_KEYS, "BinaryData",
          "CompressedData", "CompressedDataSize", "HeaderSize", "ElementDataFile")  # fmt: skip
_BY_FOLDED = {name.lower(): name for name in _KNOWN}


def _canonical(key):
    """Keys are matched without regard to case (files in the wild vary); others are kept as written."""
    return _BY_FOLDED.get(key.lower(), key)


def _integer(path, keys, key, default=None):
    if key not in keys:
        if default is None:
            raise MetaImageError(f"{path}: no {key}")
        return default
    try:
        return int(keys[key])
    except ValueError:
        raise MetaImageError(f"{path}: {key} = {keys[key]!r} is not an integer") from None


def _numbers(path, keys, key, count, kind=float):
    words = keys.get(key, "").split()
    try:
        values = [kind(word) for word in words]
    except ValueError:
        raise MetaImageError(f"{path}: {key} = {keys[key]!r} is not {count} numbers") from None
    if len(values) != count or (kind is float and not all(math.isfinite(value) for value in values)):
        raise MetaImageError(f"{path}: {key} = {keys.get(key)!r}: expected {count} finite numbers")
    return values


def _flag(path, keys, key, default):
    value = keys.get(key)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise MetaImageError(f"{path}: {key} = {value!r}: expected True or False")


def _dtype(path, keys):
    name = keys.get("ElementType")
    if name is None:
        raise MetaImageError(f"{path}: no ElementType")
    if name.upper() not in ELEMENT_TYPES:
        raise MetaImageError(f"{path}: ElementType = {name}: expected one of {', '.join(ELEMENT_TYPES)}")
    channels = _integer(path, keys, "ElementNumberOfChannels", 1)
    if channels != 1:
        raise MetaImageError(f"{path}: ElementNumberOfChannels = {channels}: only one value per voxel is supported")
    if not _flag(path, keys, "BinaryData", True):
        raise MetaImageError(f"{path}: BinaryData = False (text voxels) is not supported")
    msb = [_flag(path, keys, key, None) for key in BYTE_ORDER_KEYS]
    given = [value for value in msb if value is not None]
    if len(set(given)) > 1:
        raise MetaImageError(f"{path}: ElementByteOrderMSB and BinaryDataByteOrderMSB disagree")
    order = ">" if given and given[0] else "<"
    return np.dtype(order + ELEMENT_TYPES[name.upper()])


# -- the voxels --------------------------------------------------------------------------


def _voxels(path, keys, data_start, listed, dtype, shape, warnings, allow_outside):
    """(path of the data file, volume [z, y, x] or [t, z, y, x])."""
    name = keys["ElementDataFile"]
    compressed = _flag(path, keys, "CompressedData", False)
    header_size = _integer(path, keys, "HeaderSize", 0)
    if header_size < -1:
        raise MetaImageError(f"{path}: HeaderSize = {header_size}: expected -1 or a byte count")
    need = math.prod(shape) * dtype.itemsize
    if name.upper() == "LOCAL":
        files, local = [path], True
    else:
        files, local = _data_files(path, name, listed, allow_outside), False
    if len(files) == 1 and not compressed:
        data_path = files[0]
        offset = _offset(path, data_path, data_start if local else 0, header_size, need, warnings)
        volume = np.memmap(data_path, dtype=dtype, mode="r", offset=offset, shape=shape)
        return data_path, _squeezed(volume)
    if need % len(files):
        raise MetaImageError(f"{path}: {need} bytes of voxels cannot be split evenly into {len(files)} files")
    part = need // len(files)
    chunks = []
    for data_path in files:
        start = data_start if local else 0
        if compressed:
            chunks.append(_inflated(path, keys, data_path, start, header_size, part))
        else:
            offset = _offset(path, data_path, start, header_size, part, warnings)
            chunks.append(np.fromfile(data_path, dtype=np.uint8, count=part, offset=offset).tobytes())
    volume = np.frombuffer(b"".join(chunks), dtype=dtype).reshape(shape)
    return files[0], _squeezed(volume)


def _squeezed(volume):
    """A one-frame 4-D image is 3-D."""
    return volume[0] if volume.ndim == 4 and volume.shape[0] == 1 else volume


def _data_files(path, name, listed, allow_outside):
    folder = path.parent
    if name.upper().startswith("LIST"):
        if not listed:
            raise MetaImageError(f"{path}: ElementDataFile = LIST but no file names follow it")
        return [_existing(path, folder / entry, allow_outside) for entry in listed]
    pattern = _PATTERN.match(name)
    if pattern:
        first, last = int(pattern["first"]), int(pattern["last"])
        step = int(pattern["step"] or 1)
        if step == 0 or (last - first) * step < 0 or abs(last - first) // abs(step) > 100_000:
            raise MetaImageError(f"{path}: ElementDataFile = {name}: first, last and step do not make a range")
        try:
            names = [pattern["name"] % number for number in range(first, last + (1 if step > 0 else -1), step)]
        except (TypeError, ValueError):
            raise MetaImageError(f"{path}: ElementDataFile = {name}: not a usable %d pattern") from None
        return [_existing(path, folder / entry, allow_outside) for entry in names]
    return [_existing(path, folder / name, allow_outside)]


def _existing(path, data_path, allow_outside):
    check_inside(path, data_path, allow_outside, MetaImageError)
    if not data_path.is_file():
        raise MetaImageError(f"{path}: ElementDataFile {data_path} is not a file")
    return data_path


def _offset(path, data_path, start, header_size, need, warnings):
    """Where the voxels begin in data_path: after the header, HeaderSize bytes, or (-1) at the end of the file."""
    size = data_path.stat().st_size
    offset = size - need if header_size == -1 else start + header_size
    if offset < 0 or offset + need > size:
        raise MetaImageError(
            f"{path}: {data_path} has {size} bytes; the header's DimSize and ElementType need {need} from byte "
            f"{max(offset, start)}"
        )
    if offset + need < size:
        warnings.append(f"{path}: {data_path} has {size - offset - need} bytes after the voxels: ignored")
    return offset


def _inflated(path, keys, data_path, start, header_size, need):
    """zlib (or gzip) data from data_path inflated to exactly need bytes."""
    with open(data_path, "rb") as file:
        file.seek(start + max(header_size, 0))
        declared = keys.get("CompressedDataSize")
        available = os.fstat(file.fileno()).st_size - file.tell()
        if declared and declared.isdigit():
            available = min(available, int(declared))
        if cannot_inflate_to(available, need):
            raise MetaImageError(
                f"{path}: {available} bytes of zlib data cannot inflate to the {need} bytes DimSize and ElementType "
                f"need (deflate gives at most {DEFLATE_MOST} times its size): not inflated"
            )
        packed = file.read(available)
    inflater = zlib.decompressobj(47)  # 32 + 15: zlib or gzip, as MetaIO accepts
    try:
        data = inflater.decompress(packed, need + 1)
    except zlib.error as exc:
        raise MetaImageError(f"{path}: CompressedData in {data_path} is not zlib data: {exc}") from None
    if len(data) != need:
        raise MetaImageError(f"{path}: {data_path} inflates to {len(data)} bytes; DimSize and ElementType need {need}")
    return data


# -- geometry ----------------------------------------------------------------------------


def _affine(path, keys, ndims, warnings):
    """Index (x, y, z) -> LPS mm from ElementSpacing, Offset and TransformMatrix (ITK's reading)."""
    spacing = _optional_numbers(path, keys, ("ElementSpacing",), ndims, [1.0] * ndims, warnings)
    origin = _optional_numbers(path, keys, ORIGIN_KEYS, ndims, [0.0] * ndims, warnings)
    identity = np.eye(ndims).ravel().tolist()  # ITK's default, written by tools that never rotate
    matrix = np.asarray(_optional_numbers(path, keys, DIRECTION_KEYS, ndims * ndims, identity, None))
    directions = matrix.reshape(ndims, ndims).T  # column a: the direction of index axis a
    if any(s <= 0 for s in spacing):
        raise MetaImageError(f"{path}: ElementSpacing = {keys['ElementSpacing']}: spacings must be positive")
    spatial = min(ndims, 3)
    if ndims == 4 and (np.any(np.abs(directions[:3, 3]) > 1e-6) or np.any(np.abs(directions[3, :3]) > 1e-6)):
        raise MetaImageError(f"{path}: TransformMatrix mixes the 4th (time) axis with space")
    affine = np.eye(4)
    affine[:spatial, :spatial] = directions[:spatial, :spatial] * spacing[:spatial]
    affine[:spatial, 3] = origin[:spatial]
    if ndims == 2:  # one slice: its normal, 1 mm, stands in for the missing slice step
        affine[:3, 2] = np.cross(affine[:3, 0] / spacing[0], affine[:3, 1] / spacing[1])
    _check_anatomical_orientation(path, keys, affine, warnings)
    return affine


def _optional_numbers(path, keys, names, count, default, warnings):
    """The first of names given, as count numbers; else default, with a warning unless warnings is None."""
    for name in names:
        if name in keys:
            return _numbers(path, keys, name, count)
    if warnings is not None:
        warnings.append(f"{path}: no {' / '.join(names)}: {default} assumed")
    return default


def _check_anatomical_orientation(path, keys, affine, warnings):
    given = keys.get("AnatomicalOrientation", "").strip().upper()
    if len(given) != 3 or "?" in given:
        return
    steps = affine[:3, :3]
    said = ""
    for axis in range(3):
        step = steps[:, axis]
        dominant = int(np.argmax(np.abs(step)))
        said += _FROM_LETTERS[dominant][0 if step[dominant] > 0 else 1]
    if said != given:
        warnings.append(
            f"{path}: AnatomicalOrientation = {given} disagrees with TransformMatrix ({said}): "
            "TransformMatrix used, as ITK does"
        )
