"""Read Interfile images (STIR/SIRF, CASToR, GATE, Siemens, Interfile 3.3) into a volume,

an index -> LPS affine and metadata; write a small STIR-style pair for tests and the demo.

The grammar lives in :mod:`dcmforge.interfile_grammar`; this module turns the
parsed keys into an image following /work/shared/spec/interfile.md:

* data: numpy.memmap over the data file, [z, y, x] or [t, z, y, x] (Interfile
  axis 1 varies fastest, so it is the last numpy axis). Values that need
  scaling are scaled lazily by :class:`LazyVolume`, one indexed part at a time.
* geometry: each dialect has a native voxel frame; a sign table maps it to
  STIR's gantry frame, and STIR's table maps that to LPS for the patient
  position (spec 4.1). The origin rule is the dialect's (STIR first pixel
  offset, or a grid centred on the scanner axis).
* every default assumed along the way is reported in ``warnings``.
"""

import datetime as dt
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import GeometryError, InterfileError, VolumeError
from .interfile_grammar import (
    entry_count,
    entry_number,
    normalise_key,
    parse_date,
    parse_header,
    parse_list,
    parse_time,
    read_header_file,
)

__all__ = ["InterfileImage", "LazyVolume", "parse_header", "read_interfile", "write_interfile"]

DIALECTS = ("stir", "castor", "gate", "siemens", "interfile33")
DIALECT_NAMES = {
    "stir": "STIR", "castor": "CASToR", "gate": "GATE", "siemens": "Siemens", "interfile33": "Interfile 3.3"
}  # fmt: skip
# How each dialect's voxel frame is described in InterfileImage.convention.
DIALECT_FRAMES = {
    "stir": "STIR",
    "castor": "CASToR (x right, y up, z front -> back of the gantry)",
    "gate": "GATE (world assumed x -> L, y -> A, z -> S)",
    "siemens": "Siemens e7tools (i -> L, j -> P, k -> S for HFS; unverified)",
    "interfile33": "Interfile 3.3 (read with STIR's axes)",
}
POSITIONS = ("HFS", "HFP", "FFS", "FFP")

# LPS sign of STIR's x, y, z for each patient position (STIR DiscretisedDensity, spec 4.1).
STIR_TO_LPS = {"HFS": (1, 1, -1), "HFP": (-1, -1, -1), "FFS": (-1, 1, 1), "FFP": (1, -1, 1)}
# Sign of each dialect's native axis 1, 2, 3 in STIR's frame (x right, y down, z gantry -> bed):
# CASToR and the declared GATE world have y up and z front -> back (spec 4.2, 4.3); Siemens
# e7tools images are axially reversed against STIR (spec 4.4); 3.3 is read like STIR (4.5).
NATIVE_TO_STIR = {
    "stir": (1, 1, 1),
    "interfile33": (1, 1, 1),
    "castor": (1, -1, -1),
    "gate": (1, -1, -1),
    "siemens": (1, 1, -1),
}

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

PROJECTION_SUFFIXES = (".hs", ".s.hdr", ".l.hdr", ".n.hdr")
PROJECTION_FORMAT_WORDS = ("sinogram", "list", "norm", "projection")
PROJECTION_PET_TYPES = ("normalisation", "normalization", "blank", "transmission")
PROJECTION_AXIS_LABELS = {
    "bin", "projection", "plane", "segment", "view", "sinogram", "angle",
    "tangentialcoordinate", "axialcoordinate", "timingposition",
}  # fmt: skip
SINOGRAM_KEYS = (
    "number of segments", "segment table", "minimum ring difference per segment",
    "maximum ring difference per segment", "number of views", "axial compression",
    "maximum ring difference", "number of scan data types", "number of projections",
)  # fmt: skip

MODALITIES = {"pet": "PT", "pt": "PT", "nucmed": "NM", "nm": "NM", "spect": "NM", "ct": "CT"}
# quantification units written as a unit (Siemens) -> DICOM Units (0054,1001) defined term
UNITS = {"bq/ml": "BQML", "bq/cc": "BQML", "bqml": "BQML", "counts": "CNTS", "cnts": "CNTS", "cps": "CPS",
         "counts/s": "CPS", "%": "PCNT", "percent": "PCNT", "none": "NONE"}  # fmt: skip
ACTIVITY_UNITS = {"bq": 1.0, "kbq": 1e3, "mbq": 1e6, "gbq": 1e9, "uci": 3.7e4, "mci": 3.7e7, "ci": 3.7e10}
SEXES = {"m": "M", "male": "M", "f": "F", "female": "F", "o": "O", "other": "O"}
SLOPE_KEYS = ("rescale slope", "data rescale slope", "%image slope")
INTERCEPT_KEYS = ("rescale intercept", "data rescale intercept", "%image intercept")


@dataclass
class InterfileImage:
    """An Interfile image as dcmforge uses it.

    volume: [z, y, x] or [t, z, y, x]; a numpy.memmap, or a LazyVolume when the
    header scales the values or the frames are not one block of the file.
    affine: 4x4, index (i = column = last numpy axis, j = row, k = slice, 1) ->
    LPS mm of voxel centres. spacing: (dx, dy, dz), positive mm.
    """

    header_path: Path
    data_path: Path
    dialect: str
    volume: object
    affine: np.ndarray
    spacing: tuple
    convention: str
    metadata: dict
    warnings: list
    keys: dict


@dataclass(frozen=True)
class Layout:
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


class LazyVolume:
    """An array-like over memory-mapped frames, scaled when indexed.

    ``volume[f]`` (4-D, [t, z, y, x]) or ``volume[z]`` (3-D) reads only the part
    it selects and returns a numpy array raw * factor + intercept, where factor
    is one number per frame or one per plane (STIR per-plane scaling factors).
    Integers, slices and ``...`` are accepted on every axis. ``np.asarray``
    reads everything, so call it only when that is what you want.
    """

    def __init__(self, frames, factors, intercepts):
        self.frames = list(frames)  # each a memmap [z, y, x]
        self.factors = [np.asarray(f, dtype=np.float64) for f in factors]
        self.intercepts = [float(i) for i in intercepts]
        self.scaled = any(np.any(f != 1) for f in self.factors) or any(self.intercepts)
        raw = self.frames[0].dtype
        self.dtype = _scaled_dtype(raw) if self.scaled else raw
        self.shape = ((len(self.frames),) if len(self.frames) > 1 else ()) + tuple(self.frames[0].shape)

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"LazyVolume(shape={self.shape}, dtype={self.dtype}, scaled={self.scaled})"

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        return data if dtype is None else data.astype(dtype)

    def __getitem__(self, key):
        key = _full_key(key, self.ndim)
        if self.ndim == 3:
            return self._read(0, key)
        picked = range(len(self.frames))[key[0]]
        if isinstance(picked, int):
            return self._read(picked, key[1:])
        parts = [self._read(f, key[1:]) for f in picked]
        if not parts:
            return np.empty((0,) + self.frames[0][key[1:]].shape, self.dtype)
        return np.stack(parts)

    def _read(self, frame, key):
        raw = np.asarray(self.frames[frame][key])
        if not self.scaled:
            return np.array(raw)
        factor = self.factors[frame]
        if factor.ndim:  # one factor per plane: follow the plane index
            factor = factor[key[0]]
            if factor.ndim:
                factor = factor.reshape((-1,) + (1,) * (raw.ndim - 1))
        out = raw.astype(self.dtype)
        out *= factor.astype(self.dtype)
        out += self.dtype.type(self.intercepts[frame])
        return out


def _scaled_dtype(raw):
    """float64 where float32 would lose digits of the raw values, else float32."""
    wide = raw.itemsize >= 8 or (raw.kind in "iu" and raw.itemsize >= 4)
    return np.dtype(np.float64 if wide else np.float32)


def _full_key(key, ndim):
    """key as a tuple of ndim ints and slices (``...`` expanded)."""
    key = key if isinstance(key, tuple) else (key,)
    ellipses = [n for n, k in enumerate(key) if k is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        n = ellipses[0]
        key = key[:n] + (slice(None),) * (ndim - len(key) + 1) + key[n + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices for a {ndim}-dimensional volume")
    key = key + (slice(None),) * (ndim - len(key))
    for k in key:
        if not isinstance(k, (int, np.integer, slice)):
            raise TypeError(f"LazyVolume takes integers, slices and '...' as indices, not {type(k).__name__}")
    return tuple(int(k) if isinstance(k, (int, np.integer)) else k for k in key)


# --- reading -------------------------------------------------------------------------------------


def read_interfile(path, *, dialect=None, patient_position=None, first_voxel=None, flip=()):
    """Read the Interfile image whose header is at path.

    Overrides: dialect (one of DIALECTS; "sirf" means "stir"), patient_position
    ("HFS", "HFP", "FFS", "FFP"), first_voxel (LPS mm of the centre of voxel
    [0, 0, 0]) and flip (a subset of "x", "y", "z": that index axis runs the
    other way). Raises InterfileError for anything that is not a readable image,
    including projection data.
    """
    overrides = _checked_overrides(dialect, patient_position, first_voxel, flip)
    header_path = Path(path)
    header = read_header_file(header_path)
    if header.indexed("%data set") and not header.has("name of data file"):
        return _read_metaheader(header_path, header, overrides)
    return _read_image(header_path, header, overrides)


def _checked_overrides(dialect, patient_position, first_voxel, flip):
    if dialect is not None:
        dialect = {"sirf": "stir"}.get(str(dialect).lower(), str(dialect).lower())
        if dialect not in DIALECTS:
            raise InterfileError(f"unknown dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    if patient_position is not None:
        patient_position = str(patient_position).upper()
        if patient_position not in POSITIONS:
            raise GeometryError(f"unknown patient position {patient_position!r}: expected one of {POSITIONS}")
    if first_voxel is not None:
        first_voxel = np.asarray(first_voxel, dtype=np.float64)
        if first_voxel.shape != (3,) or not np.all(np.isfinite(first_voxel)):
            raise GeometryError(f"first_voxel must be three finite LPS coordinates in mm, not {first_voxel!r}")
    flip = tuple(flip)
    if any(axis not in ("x", "y", "z") for axis in flip) or len(set(flip)) != len(flip):
        raise GeometryError(f"flip must be a subset of 'x', 'y', 'z', not {flip!r}")
    return {"dialect": dialect, "patient_position": patient_position, "first_voxel": first_voxel, "flip": flip}


def _read_image(header_path, header, overrides):
    warnings = list(header.warnings)
    reason = _projection_reason(header_path, header)
    if reason:
        raise InterfileError(f"{header_path} is projection data (sinogram/list mode), not an image: {reason}")
    dialect = overrides["dialect"] or _detect_dialect(header, header_path, warnings)
    data_path = _data_path(header_path, header, warnings)
    data_size = _file_size(data_path, header_path)
    layout = _layout(header, dialect, data_size, warnings)
    whole, frames = _map_data(data_path, data_size, layout, header_path, warnings)
    lazy = LazyVolume(frames, *_scaling(header, len(frames), layout.shape[0], warnings))
    if whole is None or lazy.scaled:
        volume = lazy
    else:  # the memmap itself: nothing to scale and one block of the file
        volume = whole if len(frames) > 1 else whole[0]
    position, position_note, stated = _patient_position(header, dialect, overrides["patient_position"], warnings)
    affine, spacing, convention = _geometry(header, dialect, layout.shape, position, position_note, overrides, warnings)
    metadata = _metadata(header, dialect, header_path, data_path, len(frames), warnings)
    if stated:
        metadata["patient_position"] = position
    if dialect == "stir" and metadata.get("modality") == "NM":
        warnings.append(f"{header_path}: STIR documents its LPS orientation of SPECT images as incorrect: check it")
    return InterfileImage(
        header_path, data_path, dialect, volume, affine, spacing, convention, metadata, warnings, header.keys_dict()
    )


def _read_metaheader(header_path, header, overrides):
    """A CASToR ``.mhd`` (``%data set [n] := {offset, frame.hdr, data}``): one 3-D image per frame."""
    gates = _gate_count(header)
    if gates > 1:
        raise InterfileError(f"{header_path}: gated images ({gates} gates per frame) are not supported")
    images = []
    for index, entry in sorted(header.indexed("%data set").items()):
        items = parse_list(header, entry)
        if len(items) < 2 or not items[1]:
            raise header.fail(entry, "expected {offset, header file, data file}")
        frame_path = _resolve_name(header_path.parent, items[1])
        frame_header = read_header_file(frame_path)
        if frame_header.indexed("%data set") and not frame_header.has("name of data file"):
            raise header.fail(entry, "a metaheader inside a metaheader is not supported")
        images.append(_read_image(frame_path, frame_header, overrides))
    first = images[0]
    for image in images[1:]:
        if image.volume.shape != first.volume.shape or not np.allclose(image.affine, first.affine):
            raise InterfileError(
                f"{header_path}: data set {image.header_path} has another size or position than {first.header_path}"
            )
    if first.volume.ndim != 3:
        raise InterfileError(f"{header_path}: data sets with several frames each are not supported")
    warnings = list(header.warnings)
    declared = header.count("total number of data sets", default=len(images))
    if declared != len(images):
        warnings.append(f"{header_path}: total number of data sets is {declared} but {len(images)} are listed")
    seen = set()
    for image in images:  # each frame header repeats the same warnings: keep one of each
        for warning in image.warnings:
            generic = warning.replace(str(image.header_path), "<frame>").replace(str(image.data_path), "<data>")
            if generic not in seen:
                seen.add(generic)
                warnings.append(warning)
    frames, factors, intercepts = [], [], []
    for image in images:
        volume = image.volume
        if isinstance(volume, LazyVolume):
            frames += volume.frames
            factors += volume.factors
            intercepts += volume.intercepts
        else:
            frames.append(volume)
            factors.append(1.0)
            intercepts.append(0.0)
    metadata = dict(first.metadata)
    for key in ("frame_start", "frame_duration"):
        values = [image.metadata.get(key) for image in images]
        metadata.pop(key, None)
        if all(v is not None and len(v) == 1 for v in values):
            metadata[key] = [v[0] for v in values]
    return InterfileImage(
        header_path, first.data_path, first.dialect, LazyVolume(frames, factors, intercepts), first.affine,
        first.spacing, first.convention, metadata, warnings, header.keys_dict(),
    )  # fmt: skip


def _projection_reason(header_path, header):
    """Why this header describes projection data, or None for an image."""
    name = header_path.name.lower()
    for suffix in PROJECTION_SUFFIXES:
        if name.endswith(suffix):
            return f"the file name ends in {suffix}"
    if normalise_key(header.text("process status", default="")) == "acquired":
        return "process status := acquired"
    data_format = header.text("data format", default="").lower()
    if any(word in data_format for word in PROJECTION_FORMAT_WORDS):
        return f"data format := {data_format}"
    for index, entry in sorted(header.indexed("matrix axis label").items()):
        if normalise_key(entry.value) in PROJECTION_AXIS_LABELS:
            return f"matrix axis label [{index}] := {entry.value}"
    pet_type = normalise_key(header.text("PET data type", default=""))
    if pet_type in PROJECTION_PET_TYPES:
        return f"PET data type := {pet_type}"
    if pet_type and pet_type != "image":
        for key in SINOGRAM_KEYS:
            if header.has(key) or header.has("%" + key):
                return f"PET data type := {pet_type} with the sinogram key '{key}'"
    return None


def _detect_dialect(header, header_path, warnings):
    version = normalise_key(header.text("version of keys", default=""))
    if version.startswith("castor") or header.has("castor version"):
        return "castor"
    if version.startswith("stir"):
        return "stir"
    originating = header.text("originating system", default="").strip()
    if (
        any(e.key.startswith("%sms-mi") for e in header.entries)
        or re.fullmatch(r"\d{4}(/\d+)?", originating)
        or header.has("%patient orientation")
        or header.has("%image orientation")
    ):
        return "siemens"
    if header_path.suffix.lower() == ".h33":
        return "gate"
    if version.startswith("3."):
        return "interfile33"
    if header.indexed("matrix axis label"):
        return "stir"
    if normalise_key(header.text("number format", default="")) == "shortfloat" or header_path.suffix.lower() == ".hdr":
        return "castor"
    if header.indexed("first pixel offset (mm)"):
        return "stir"
    if header.has("number of slices"):
        return "gate"
    warnings.append(f"{header_path}: dialect not recognised: read as Interfile 3.3")
    return "interfile33"


# --- layout of the data file ---------------------------------------------------------------------


def _layout(header, dialect, data_size, warnings):
    for index, entry in sorted(header.indexed("matrix axis label").items()):
        if index <= 3 and normalise_key(entry.value) != "xyz"[index - 1]:
            raise header.fail(entry, f"expected '{'xyz'[index - 1]}': only images stored x, y, z are supported")
    gates = _gate_count(header)
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


def _gate_count(header):
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
        if other_entry.value.strip() and _loose_number(other_entry.value) != expected:
            warnings.append(
                f"{header.source}: {other} := {other_entry.value} disagrees with {name} ({slices} per frame, "
                f"{frames} frame(s)): used {name}"
            )
    return slices


def _loose_number(text):
    try:
        return float(text)
    except ValueError:
        return None


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


def _data_path(header_path, header, warnings):
    """The data file, relative to the header's folder (absolute and Windows paths accepted)."""
    entry = header.get("name of data file")
    if entry is None or not entry.value.strip():
        suffix = DATA_SUFFIX_FOR_HEADER.get(header_path.suffix.lower())
        if suffix is None:
            raise InterfileError(f"{header_path}: no 'name of data file' key")
        warnings.append(f"{header_path}: no 'name of data file': assumed {header_path.with_suffix(suffix).name}")
        return header_path.with_suffix(suffix)
    written = header_path.parent / _portable_name(entry.value)
    path = _resolve_name(header_path.parent, entry.value)
    if not _is_file(path):
        raise header.fail(entry, f"data file not found (looked for {written})")
    if path != written:
        warnings.append(f"{header_path}: data file {written} not found: used {path}")
    return path


def _portable_name(name):
    return name.strip().strip('"').replace("\\", "/")


def _resolve_name(folder, name):
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


def _file_size(data_path, header_path):
    try:
        return os.stat(data_path).st_size
    except (OSError, ValueError) as exc:
        raise InterfileError(f"{header_path}: cannot open the data file {data_path}: {exc}") from None


def _map_data(data_path, size, layout, header_path, warnings):
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


# --- value scaling -------------------------------------------------------------------------------


def _scaling(header, frames, planes, warnings):
    """(factor per frame, a number or one per plane; intercept per frame) from every dialect's keys.

    value = raw * image scaling factor[f] (STIR) * rescale slope (CASToR) or %image slope
    (Siemens) + intercept. A numeric quantification units replaces image scaling factors
    that are all 1 (STIR) and multiplies the slope (CASToR); both readings agree.
    """
    factors = []
    explicit = header.indexed("image scaling factor")
    if not explicit and header.has("image scaling factor"):
        explicit = {1: header.get("image scaling factor")}
    for frame in range(frames):
        entry = explicit.get(frame + 1)
        factors.append(1.0 if entry is None else _plane_factors(header, entry, planes))
    units = _per_frame_numbers(header, ("quantification units",), frames, strict=False)
    if units is not None:
        for frame, unit in enumerate(units):
            factor = np.asarray(factors[frame])
            if unit == 1 or np.all(factor == unit):
                continue
            if not np.all(factor == 1):
                raise header.fail(
                    header.get("quantification units"),
                    "conflicts with 'image scaling factor': give one or the other, or equal values",
                )
            factors[frame] = unit
    slopes = _per_frame_numbers(header, SLOPE_KEYS, frames) or [1.0] * frames
    if 0.0 in slopes:
        raise InterfileError(f"{header.source}: a rescale slope of 0 would erase the image")
    intercepts = _per_frame_numbers(header, INTERCEPT_KEYS, frames) or [0.0] * frames
    ignored = header.number("data rescale offset", default=0.0)
    if ignored:
        warnings.append(
            f"{header.source}: data rescale offset := {ignored:g} ignored (CASToR writes it but reads only "
            "'rescale intercept')"
        )
    return [np.asarray(f, dtype=np.float64) * s for f, s in zip(factors, slopes)], intercepts


def _plane_factors(header, entry, planes):
    if not entry.value.startswith("{"):
        return entry_number(header, entry)
    items = parse_list(header, entry)
    values = [_list_number(header, entry, item) for item in items]
    if len(values) not in (1, planes):
        raise header.fail(entry, f"expected one factor or one per plane ({planes}), found {len(values)}")
    return values[0] if len(values) == 1 else np.array(values)


def _list_number(header, entry, item):
    number = _loose_number(item)
    if number is None or not np.isfinite(number):
        raise header.fail(entry, f"{item!r} in the list is not a finite number")
    return number


def _per_frame_numbers(header, keys, frames, strict=True):
    """One number per frame from the first of keys present: repeated once per frame (CASToR
    frame blocks) or written once. None when absent, or (strict=False) when not a number."""
    for key in keys:
        entries = header.all(key)
        if not entries:
            continue
        if not strict and any(_loose_number(e.value) is None for e in entries):
            return None  # e.g. quantification units := Bq/ml, a unit
        values = [entry_number(header, e) for e in entries]
        if len(values) == frames:
            return values
        if len(set(values)) == 1:
            return [values[0]] * frames
        raise header.fail(entries[-1], f"{len(values)} different values for {frames} frame(s)")
    return None


# --- geometry ------------------------------------------------------------------------------------


def _patient_position(header, dialect, override, warnings):
    """(position, note for the convention line, whether the header or the user stated it)."""
    if override:
        return override, " (given)", True
    if dialect == "gate":
        warnings.append(f"{header.source}: GATE ignores patient position keys: assumed HFS in the GATE world")
        return "HFS", " (assumed)", False
    code = header.get("%patient orientation")
    if code is not None and code.value.strip():
        position = code.value.strip().upper()
        if position not in POSITIONS:
            raise header.fail(code, f"patient position {position} is not one of {POSITIONS}: give patient_position")
        return position, "", True
    orientation = _first_word(header.text("patient orientation"))
    rotation = _first_word(header.text("patient rotation"))
    known = {"headin": "HF", "feetin": "FF", "supine": "S", "prone": "P"}
    for key, word, allowed in (("patient orientation", orientation, ("headin", "feetin")),
                               ("patient rotation", rotation, ("supine", "prone"))):  # fmt: skip
        if word not in allowed + ("", "unknown"):
            raise header.fail(
                header.get(key), "only head_in/feet_in with supine/prone are supported: give patient_position"
            )
    if orientation in ("", "unknown") and rotation in ("", "unknown"):
        what = "not recorded by CASToR" if dialect == "castor" else "patient position unknown"
        warnings.append(f"{header.source}: {what}: assumed HFS")
        return "HFS", f" ({what} -> assumed HFS)", False
    if orientation in ("", "unknown") or rotation in ("", "unknown"):
        position = known.get(orientation, "HF") + known.get(rotation, "S")
        warnings.append(f"{header.source}: patient orientation or rotation unknown: assumed {position}")
        return position, f" (partly unknown -> assumed {position})", False
    return known[orientation] + known[rotation], "", True


def _first_word(text):
    words = (text or "").split()
    return normalise_key(words[0]) if words else ""


def _geometry(header, dialect, shape, position, position_note, overrides, warnings):
    """(affine index -> LPS, spacing, one-line description of the convention)."""
    sizes = np.array(shape[::-1], dtype=np.float64)  # n1, n2, n3
    steps = np.array(_steps(header, dialect, shape[0], warnings))  # signed: a negative size reverses its axis
    directions = np.diag(np.multiply(STIR_TO_LPS[position], NATIVE_TO_STIR[dialect])).astype(np.float64)
    if dialect == "stir":
        origin, origin_note = _stir_origin(header, sizes, steps, warnings)
    else:
        origin, origin_note = _centred_origin(header, dialect, sizes, steps, warnings)
    if dialect == "siemens" and not overrides["patient_position"]:
        directions = _siemens_directions(header, directions)
    affine = np.eye(4)
    affine[:3, :3] = directions * steps
    affine[:3, 3] = directions @ origin
    notes = []
    if overrides["dialect"]:
        notes.append(f"dialect {overrides['dialect']} given")
    for axis in overrides["flip"]:
        column = "xyz".index(axis)
        affine[:3, 3] += (sizes[column] - 1) * affine[:3, column]
        affine[:3, column] *= -1
        notes.append(f"{axis} flipped")
    if overrides["first_voxel"] is not None:
        affine[:3, 3] = overrides["first_voxel"]
        origin_note = "first voxel given"
    if not np.all(np.isfinite(affine)):
        raise InterfileError(f"{header.source}: voxel sizes or offsets too large for a position in mm")
    convention = f"{DIALECT_FRAMES[dialect]}, {position}{position_note}, {origin_note}"
    if notes:
        convention += "; " + ", ".join(notes)
    return affine, tuple(float(s) for s in np.abs(steps)), convention


def _steps(header, dialect, slices, warnings):
    """Signed voxel sizes (d1, d2, d3) in mm."""
    steps = []
    for axis in (1, 2, 3):
        size = header.number("scaling factor (mm/pixel)", axis)
        if size is None:
            size = header.number("scale factor (mm/pixel)", axis)
        steps.append(size)
    for axis in (0, 1):
        if steps[axis] is None:
            warnings.append(f"{header.source}: no 'scaling factor (mm/pixel) [{axis + 1}]': assumed 1 mm")
            steps[axis] = 1.0
    if steps[2] is None:
        steps[2] = _slice_step(header, dialect, abs(steps[0]), slices, warnings)
    for axis, step in enumerate(steps):
        if step == 0:
            raise InterfileError(f"{header.source}: voxel size {axis + 1} is 0 mm")
    return steps


def _slice_step(header, dialect, pixel, slices, warnings):
    """Slice spacing from the 3.3 slice keys: in pixels by the standard, in mm for GATE and CASToR."""
    for key in ("centre-centre slice separation (pixels)", "center-center slice separation (pixels)",
                "slice thickness (pixels)"):  # fmt: skip
        value = header.number(key)
        if value is not None:
            if dialect in ("gate", "castor"):
                warnings.append(f"{header.source}: '{key}' read as mm, as {DIALECT_NAMES[dialect]} does")
                return value
            warnings.append(f"{header.source}: '{key}' read in pixels of {pixel:g} mm (the 3.3 standard)")
            return value * pixel
    if slices > 1:
        warnings.append(f"{header.source}: no slice spacing: assumed equal to the pixel size")
    return pixel


def _stir_origin(header, sizes, steps, warnings):
    """STIR's first voxel: first pixel offset (mm), else -floor(n/2) * d in x, y and 0 in z."""
    default = [-(sizes[0] // 2) * steps[0], -(sizes[1] // 2) * steps[1], 0.0]
    given = [header.number("first pixel offset (mm)", axis) for axis in (1, 2, 3)]
    origin = np.array([d if g is None else g for g, d in zip(given, default)])
    if all(g is not None for g in given):
        return origin, "first voxel from first pixel offset"
    warnings.append(f"{header.source}: no (complete) 'first pixel offset (mm)': STIR's default origin used")
    return origin, "first voxel from STIR default origin (no first pixel offset)"


def _centred_origin(header, dialect, sizes, steps, warnings):
    """A grid centred on the scanner axis and the axial centre (CASToR, GATE, Siemens, 3.3)."""
    origin = -(sizes - 1) / 2 * steps
    if dialect == "castor":
        for key in ("first pixel offset (mm)", "origin (mm)", "offset"):
            shifts = [header.number(key, axis, default=0.0) for axis in (1, 2, 3)]
            if any(shifts):
                warnings.append(
                    f"{header.source}: CASToR '{key}' {shifts} is a FOV shift with an unknown sign, "
                    "not applied: give first_voxel to place the image"
                )
        return origin, "centred grid"
    if dialect == "siemens":
        shift = [header.number("%x-offset (mm)", default=0.0), header.number("%y-offset (mm)", default=0.0), 0.0]
        warnings.append(f"{header.source}: Siemens image geometry is unverified against scanner DICOM")
        return origin + np.array(shift), "centred grid + %x/%y-offset (unverified)"
    what = "GATE headers carry no position" if dialect == "gate" else "Interfile 3.3 defines no origin"
    warnings.append(f"{header.source}: {what}: image centred on the scanner axis")
    return origin, "centred grid (assumed)"


def _siemens_directions(header, directions):
    """Columns i, j, k of the index -> LPS rotation from %image orientation (DICOM IOP) if given."""
    entry = header.get("%image orientation")
    if entry is None:
        return directions
    values = np.array([_list_number(header, entry, item) for item in parse_list(header, entry)])
    if values.shape != (6,):
        raise header.fail(entry, "expected six direction cosines")
    row, column = values[:3], values[3:]
    if not (np.isclose(row @ row, 1, atol=1e-4) and np.isclose(column @ column, 1, atol=1e-4)
            and abs(row @ column) < 1e-4):  # fmt: skip
        raise header.fail(entry, "the two directions are not orthogonal unit vectors")
    return np.column_stack([row, column, np.cross(row, column)])


# --- metadata ------------------------------------------------------------------------------------


def _metadata(header, dialect, header_path, data_path, frames, warnings):
    meta = {}
    readers = (_study_datetime, _patient, _tracer, _modality_and_units, _frame_times)
    for read in readers:
        try:
            read(header, dialect, header_path, data_path, frames, meta, warnings)
        except InterfileError as exc:
            warnings.append(f"{exc}; ignored")
    return meta


def _study_datetime(header, dialect, header_path, data_path, frames, meta, warnings):
    date_entry = header.find_prefixed("study date")
    date = None
    if date_entry is not None and date_entry.value.strip():
        try:
            date = parse_date(header, date_entry)
        except InterfileError as exc:
            warnings.append(f"{exc}; ignored")
    if date is not None:
        meta["StudyDate"] = date
        time_entry = header.find_prefixed("study time")
        if time_entry is None or not time_entry.value.strip():
            warnings.append(f"{header.source}: no study time in the header")
            return
        meta["StudyTime"], zone = parse_time(header, time_entry)
        if zone:
            meta["TimezoneOffsetFromUTC"] = zone
        return
    try:
        stamp = dt.datetime.fromtimestamp(os.stat(data_path).st_mtime).astimezone()
    except (OSError, ValueError, OverflowError):
        return
    meta["StudyDate"] = stamp.strftime("%Y%m%d")
    meta["StudyTime"] = stamp.strftime("%H%M%S")
    meta["TimezoneOffsetFromUTC"] = stamp.strftime("%z")
    warnings.append(
        f"no usable study date in {header.source}: StudyDate/StudyTime taken from the modification time "
        f"of {data_path}"
    )


def _patient(header, dialect, header_path, data_path, frames, meta, warnings):
    for keyword, key in (("PatientName", "patient name"), ("PatientID", "patient id"), ("StudyID", "study id"),
                         ("ManufacturerModelName", "originating system")):  # fmt: skip
        value = header.text(key, default="").strip()
        if value and value.lower() != "unknown":
            meta[keyword] = value
    name = meta.get("PatientName", "").lower()
    if dialect == "castor" and name in (header_path.stem.lower(), data_path.stem.lower()):
        del meta["PatientName"]  # CASToR writes the file name there
        warnings.append(f"{header.source}: patient name := {name} is CASToR's file name: ignored")
    sex = SEXES.get(header.text("patient sex", default="").strip().lower())
    if sex:
        meta["PatientSex"] = sex
    birth = header.find_prefixed("patient dob")
    if birth is not None and birth.value.strip():
        meta["PatientBirthDate"] = parse_date(header, birth)
    weight = header.find_prefixed("patient weight")
    if weight is not None and weight.value.strip() and entry_number(header, weight) > 0:
        meta["PatientWeight"] = entry_number(header, weight)


def _tracer(header, dialect, header_path, data_path, frames, meta, warnings):
    isotope = header.text("radionuclide name", 1) or header.text("radionuclide name") or header.text("isotope name")
    if isotope and isotope.strip():
        meta["isotope"] = isotope.strip()
    drug = header.text("radiopharmaceutical", default="").strip()
    if drug:
        meta["radiopharmaceutical"] = drug
    candidates = {  # STIR's radionuclide keys first, then Siemens' isotope keys
        "half_life": (header.get("radionuclide halflife (sec)", 1), header.get("radionuclide halflife (sec)"),
                      header.find_prefixed("isotope gamma halflife"), header.find_prefixed("isotope halflife")),
        "branching_factor": (header.get("radionuclide branching factor", 1),
                             header.get("radionuclide branching factor"),
                             header.find_prefixed("isotope branching factor")),
    }  # fmt: skip
    for name, entries in candidates.items():
        entry = next((e for e in entries if e is not None and e.value.strip()), None)
        if entry is not None:
            meta[name] = entry_number(header, entry)
    activity = header.find_prefixed("tracer activity at time of injection")
    if activity is not None and activity.value.strip():
        unit = re.search(r"\(([a-z]+)\)$", activity.key)
        scale = ACTIVITY_UNITS.get(unit[1] if unit else "bq")
        if scale is None:
            raise header.fail(activity, "unknown activity unit")
        bq = entry_number(header, activity) * scale
        if bq > 0:
            meta["injected_activity"] = bq
        else:
            warnings.append(f"{header.source}: injected activity {bq:g} Bq read as not recorded")
    _injection_datetime(header, meta, warnings)


def _injection_datetime(header, meta, warnings):
    date_entry = header.find_prefixed("tracer injection date")
    time_entry = header.find_prefixed("tracer injection time")
    if time_entry is None or not time_entry.value.strip():
        return
    if date_entry is not None and date_entry.value.strip():
        date = parse_date(header, date_entry)
    elif "StudyDate" in meta:
        date = meta["StudyDate"]
        warnings.append(f"{header.source}: tracer injection date missing: assumed the study date")
    else:
        return
    time, zone = parse_time(header, time_entry)
    text = f"{date[:4]}-{date[4:6]}-{date[6:]}T{time[:2]}:{time[2:4]}:{time[4:]}"
    meta["injection_datetime"] = text + (f"{zone[:3]}:{zone[3:]}" if zone else "")


def _modality_and_units(header, dialect, header_path, data_path, frames, meta, warnings):
    modality = MODALITIES.get(normalise_key(header.text("imaging modality", default="")))
    pet_type_of_data = normalise_key(header.text("type of data", default="")) == "pet"
    if modality is None and (pet_type_of_data or header.has("PET data type")):
        modality = "PT"
    if modality:
        meta["modality"] = modality
    unit = header.text("quantification units", default="").strip()
    if unit and _loose_number(unit) is None:
        if unit.lower() in UNITS:
            meta["Units"] = UNITS[unit.lower()]
        else:
            warnings.append(f"{header.source}: quantification units := {unit} has no DICOM Units term")


def _frame_times(header, dialect, header_path, data_path, frames, meta, warnings):
    """frame_start and frame_duration (s): STIR vectorised keys, or one per frame block (CASToR)."""
    durations = _frame_values(header, ("image duration (sec)",), frames)
    starts = _frame_values(header, ("image relative start time (sec)", "image start time (sec)"), frames)
    if durations is None and starts is None:
        return
    if durations is not None and starts is None:
        pauses = _frame_values(header, ("pause between frame groups (sec)",), frames) or [0.0] * frames
        starts = [float(sum(durations[:f]) + sum(pauses[:f])) for f in range(frames)]
        warnings.append(f"{header.source}: no frame start times: frames assumed back to back from 0 s")
    meta["frame_start"] = starts
    if durations is not None:
        meta["frame_duration"] = durations


def _frame_values(header, keys, frames):
    for key in keys:
        indexed = header.indexed(key)
        if indexed:
            if sorted(indexed) != list(range(1, frames + 1)):
                raise InterfileError(f"{header.source}: '{key} [f]' is not given for frames 1 to {frames}")
            return [entry_number(header, indexed[f]) for f in range(1, frames + 1)]
        entries = [e for e in header.all(key) if e.value.strip()]
        if entries:
            if len(entries) != frames:
                raise InterfileError(f"{header.source}: '{key}' given {len(entries)} times for {frames} frame(s)")
            return [entry_number(header, e) for e in entries]
    return None


# --- writing -------------------------------------------------------------------------------------

WRITABLE_METADATA = (
    "PatientName", "PatientID", "PatientSex", "PatientBirthDate", "PatientWeight", "StudyID", "StudyDate",
    "StudyTime", "TimezoneOffsetFromUTC", "ManufacturerModelName", "isotope", "radiopharmaceutical",
    "injected_activity", "injection_datetime", "half_life", "branching_factor", "frame_start", "frame_duration",
    "patient_position", "modality",
)  # fmt: skip
# DICOM modality -> (imaging modality, type of data) as STIR writes them
MODALITY_WORDS = {"PT": ("PET", "PET"), "NM": ("nucmed", "Tomographic"), "CT": ("CT", "Other")}
POSITION_WORDS = {"HF": "head_in", "FF": "feet_in", "S": "supine", "P": "prone"}


def write_interfile(header_path, volume, *, spacing, first_voxel=None, byte_order="little", metadata=None):
    """Write volume ([z, y, x] or [t, z, y, x]) as a STIR-style header_path (.hv) + .v float32 pair.

    spacing is (dx, dy, dz) in mm; first_voxel the LPS mm of voxel [0, 0, 0]
    (default: STIR's default origin). metadata takes the keys read_interfile
    produces (WRITABLE_METADATA). Returns the header path.
    """
    header_path = Path(header_path)
    data_path = header_path.with_suffix(".v")
    if data_path == header_path:
        raise InterfileError(f"{header_path}: the header must not end in .v (that is the data file)")
    shape = tuple(int(n) for n in volume.shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise VolumeError(f"write_interfile needs a [z, y, x] or [t, z, y, x] volume, not shape {shape}")
    frames = shape[0] if len(shape) == 4 else 1
    nz, ny, nx = shape[-3:]
    steps = np.asarray(spacing, dtype=np.float64)
    if steps.shape != (3,) or not np.all(np.isfinite(steps)) or np.any(steps <= 0):
        raise GeometryError(f"spacing must be three positive sizes (dx, dy, dz) in mm, not {spacing!r}")
    order = {"little": ("<", "LITTLEENDIAN"), "big": (">", "BIGENDIAN")}.get(byte_order)
    if order is None:
        raise InterfileError(f"byte_order must be 'little' or 'big', not {byte_order!r}")
    meta = dict(metadata or {})
    unknown = sorted(set(meta) - set(WRITABLE_METADATA))
    if unknown:
        raise InterfileError(f"write_interfile cannot store metadata {unknown}: it stores {WRITABLE_METADATA}")
    position = str(meta.get("patient_position", "HFS")).upper()
    if position not in POSITIONS:
        raise GeometryError(f"unknown patient position {position!r}: expected one of {POSITIONS}")
    signs = np.array(STIR_TO_LPS[position], dtype=np.float64)
    if first_voxel is None:
        stir_first = np.array([-(nx // 2) * steps[0], -(ny // 2) * steps[1], 0.0])
    else:
        stir_first = signs * np.asarray(first_voxel, dtype=np.float64)  # the sign table is its own inverse

    modality, data_type = MODALITY_WORDS.get(meta.get("modality"), MODALITY_WORDS["PT"])
    lines = ["!INTERFILE  :=", f"!imaging modality := {modality}", "!version of keys := STIR4.0",
             f"name of data file := {data_path.name}", "!GENERAL DATA :=", "!GENERAL IMAGE DATA :=",
             f"!type of data := {data_type}"]  # fmt: skip
    lines += _metadata_lines(meta, frames)
    lines += [f"imagedata byte order := {order[1]}", "!PET STUDY (General) :=",
              f"patient orientation := {POSITION_WORDS[position[:2]]}",
              f"patient rotation := {POSITION_WORDS[position[2]]}", "!PET data type := Image",
              "process status := Reconstructed", "!number format := float", "!number of bytes per pixel := 4",
              "number of dimensions := 3"]  # fmt: skip
    for axis, (label, size) in enumerate(zip("xyz", (nx, ny, nz)), start=1):
        lines += [f"matrix axis label [{axis}] := {label}", f"!matrix size [{axis}] := {size}",
                  f"scaling factor (mm/pixel) [{axis}] := {float(steps[axis - 1])!r}"]  # fmt: skip
    lines += [f"first pixel offset (mm) [{axis}] := {float(stir_first[axis - 1])!r}" for axis in (1, 2, 3)]
    lines.append(f"number of time frames := {frames}")
    frame_bytes = nx * ny * nz * 4
    for frame in range(1, frames + 1):
        offset = (frame - 1) * frame_bytes
        lines += [f"image scaling factor[{frame}] := 1", f"data offset in bytes[{frame}] := {offset}"]
    lines.append("!END OF INTERFILE :=")

    with open(data_path, "wb") as stream:  # a plane at a time: the volume may be a memmap
        for frame in range(frames):
            for plane in range(nz):
                part = volume[frame, plane] if len(shape) == 4 else volume[plane]
                stream.write(np.ascontiguousarray(part, dtype=order[0] + "f4").tobytes())
    header_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return header_path


def _metadata_lines(meta, frames):
    def text(key):
        value = str(meta[key])
        if any(c in value for c in ";\r\n\\"):
            raise InterfileError(f"metadata {key} = {value!r}: Interfile cannot store ';', '\\' or line breaks")
        return value

    def date(value):
        return f"{value[:4]}:{value[4:6]}:{value[6:8]}"

    def time(value):
        return f"{value[:2]}:{value[2:4]}:{value[4:]}"

    simple = {"PatientName": "patient name", "PatientID": "patient ID", "PatientSex": "patient sex",
              "StudyID": "study ID", "ManufacturerModelName": "originating system", "isotope": "isotope name",
              "radiopharmaceutical": "radiopharmaceutical"}  # fmt: skip
    numbers = {"PatientWeight": "patient weight (kg)", "injected_activity": "tracer activity at time of injection (Bq)",
               "half_life": "radionuclide halflife (sec)[1]",
               "branching_factor": "radionuclide branching factor[1]"}  # fmt: skip
    lines = [f"{simple[k]} := {text(k)}" for k in simple if k in meta]
    lines += [f"{numbers[k]} := {float(meta[k])!r}" for k in numbers if k in meta]
    if "PatientBirthDate" in meta:
        lines.append(f"patient dob := {date(text('PatientBirthDate'))}")
    if "StudyDate" in meta:
        lines.append(f"study date := {date(text('StudyDate'))}")
    if "StudyTime" in meta:
        zone = text("TimezoneOffsetFromUTC") if "TimezoneOffsetFromUTC" in meta else ""
        lines.append(f"study time := {time(text('StudyTime'))}{zone[:3]}{':' if zone else ''}{zone[3:]}")
    if "injection_datetime" in meta:
        try:
            when = dt.datetime.fromisoformat(text("injection_datetime"))
        except ValueError:
            raise InterfileError(
                f"metadata injection_datetime = {meta['injection_datetime']!r} is not ISO 8601"
            ) from None
        zone = when.strftime("%z")
        gmt = f" GMT{zone[:3]}:{zone[3:]}" if zone else ""
        lines += [f"tracer injection date (yyyy:mm:dd) := {when:%Y:%m:%d}",
                  f"tracer injection time (hh:mm:ss{gmt}) := {when:%H:%M:%S}"]  # fmt: skip
    for key, label in (("frame_start", "image relative start time (sec)"), ("frame_duration", "image duration (sec)")):
        if key in meta:
            values = list(meta[key])
            if len(values) != frames:
                raise InterfileError(f"metadata {key} has {len(values)} values for {frames} frame(s)")
            lines += [f"{label}[{f}] := {float(v)!r}" for f, v in enumerate(values, start=1)]
    return lines
