"""Read Interfile images (STIR/SIRF, CASToR, GATE, Siemens, Interfile 3.3) into a volume,

an index -> LPS affine and metadata; write a small STIR-style pair for tests and the demo.

This module is the entry point, following docs/interfile.md: it reads
the header, refuses projection data, recognises the dialect, follows CASToR
metaheaders, and puts the parts read by its sibling modules into an :class:`dcmforge.image.Image`:

* :mod:`dcmforge.readers.interfile.grammar`: header text -> keys and values.
* :mod:`dcmforge.readers.interfile.layout`: where the voxels are in the data file, and
  numpy.memmap views of it, [z, y, x] per frame (Interfile axis 1 varies
  fastest, so it is the last numpy axis).
* :mod:`dcmforge.readers.interfile.byteorder`: refuses or warns about data that only the
  other byte order makes plausible.
* :mod:`dcmforge.readers.interfile.scaling`: the values' factors and intercepts, which
  :class:`dcmforge.readers.lazy.LazyVolume` applies one indexed part at a time.
* :mod:`dcmforge.readers.interfile.geometry`: patient position, voxel sizes and origin
  -> the index -> LPS affine.
* :mod:`dcmforge.readers.interfile.metadata`: study, patient, tracer, modality, frame times.
* :mod:`dcmforge.readers.interfile.writer`: :func:`write_interfile`.

Every default assumed along the way is reported in ``warnings``.
"""

import re
from collections.abc import Sequence
import os

import numpy as np

from ...errors import GeometryError, InterfileError
from ...geometry import finite_vector
from ...image import INTERFILE, Image
from ...paths import check_inside, path_argument
from .byteorder import check_byte_order
from .geometry import POSITIONS, geometry_from_header, patient_position_from_header
from .grammar import normalise_key, parse_header, parse_list, read_header_file
from .layout import data_file_size, find_data_file, gate_count, layout_from_header, map_data, resolve_name
from .metadata import metadata_from_header
from ..lazy import LazyVolume
from .scaling import scaling_from_header
from .writer import write_interfile

__all__ = ["LazyVolume", "parse_header", "read_interfile", "write_interfile"]

DIALECTS = ("stir", "castor", "gate", "siemens", "interfile33")

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


def read_interfile(
    path: str | os.PathLike,
    *,
    dialect: str | None = None,
    patient_position: str | None = None,
    first_voxel: Sequence[float] | None = None,
    flip: str | Sequence[str] = (),
    allow_data_outside: bool = False,
) -> Image:
    """Read the Interfile image whose header is at path.

    Overrides: dialect (one of DIALECTS; "sirf" means "stir"), patient_position
    ("HFS", "HFP", "FFS", "FFP"), first_voxel (LPS mm of the centre of voxel
    [0, 0, 0]) and flip (a subset of "x", "y", "z": that index axis runs the
    other way). A data file (or a metaheader's data set header) outside the
    header's folder tree is refused unless allow_data_outside. Raises
    InterfileError for anything that is not a readable image, including
    projection data.
    """
    overrides = _checked_overrides(dialect, patient_position, first_voxel, flip)
    overrides["allow_data_outside"] = bool(allow_data_outside)
    header_path = path_argument(path, "read_interfile's path", InterfileError)
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
        first_voxel = finite_vector(first_voxel, 3, "first_voxel (LPS mm)")
    flip = tuple(flip) if isinstance(flip, (str, list, tuple)) else (flip,)
    if any(axis not in ("x", "y", "z") for axis in flip) or len(set(flip)) != len(flip):
        raise GeometryError(f"flip must be a subset of 'x', 'y', 'z', not {flip!r}")
    return {"dialect": dialect, "patient_position": patient_position, "first_voxel": first_voxel, "flip": flip}


def _read_image(header_path, header, overrides):
    warnings = list(header.warnings)
    reason = _projection_reason(header_path, header)
    if reason:
        raise InterfileError(f"{header_path} is projection data (sinogram/list mode), not an image: {reason}")
    dialect = overrides["dialect"] or _detect_dialect(header, header_path, warnings)
    data_path = find_data_file(header_path, header, warnings, overrides["allow_data_outside"])
    data_size = data_file_size(data_path, header_path)
    layout = layout_from_header(header, dialect, data_size, warnings)
    whole, frames = map_data(data_path, data_size, layout, header_path, warnings)
    check_byte_order(header, frames, warnings)
    lazy = LazyVolume(frames, *scaling_from_header(header, len(frames), layout.shape[0], warnings))
    if whole is None or lazy.scaled:
        volume = lazy
    else:  # the memmap itself: nothing to scale and one block of the file
        volume = whole if len(frames) > 1 else whole[0]
    position, position_note, stated = patient_position_from_header(
        header, dialect, overrides["patient_position"], warnings
    )
    affine, spacing, convention = geometry_from_header(
        header, dialect, layout.shape, position, position_note, overrides, warnings
    )
    metadata = metadata_from_header(header, dialect, header_path, data_path, len(frames), warnings)
    if stated:
        metadata["patient_position"] = position
    if dialect == "stir" and metadata.get("modality") == "NM":
        warnings.append(f"{header_path}: STIR documents its LPS orientation of SPECT images as incorrect: check it")
    return Image(
        header_path, data_path, INTERFILE, dialect, volume, affine, spacing, convention, metadata, warnings,
        header.keys_dict(),
    )  # fmt: skip


def _read_metaheader(header_path, header, overrides):
    """A CASToR ``.mhd`` (``%data set [n] := {offset, frame.hdr, data}``): one 3-D image per frame."""
    gates = gate_count(header)
    if gates > 1:
        raise InterfileError(f"{header_path}: gated images ({gates} gates per frame) are not supported")
    images = []
    for _, entry in sorted(header.indexed("%data set").items()):
        items = parse_list(header, entry)
        if len(items) < 2 or not items[1]:
            raise header.fail(entry, "expected {offset, header file, data file}")
        frame_path = resolve_name(header_path.parent, items[1])
        check_inside(header_path, frame_path, overrides["allow_data_outside"], InterfileError, "data set header")
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
    return Image(
        header_path, first.data_path, INTERFILE, first.dialect, LazyVolume(frames, factors, intercepts), first.affine,
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
