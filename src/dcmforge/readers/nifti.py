"""Read NIfTI-1 and NIfTI-2 images (.nii, .nii.gz, .hdr/.img pairs) with numpy alone.

The two headers are fixed layouts (348 and 540 bytes, either byte order:
nifti1.h, nifti2.h), read here as numpy structured types; nibabel, the
reference reader, is the tests' oracle (tests/test_nifti.py), as pydicom is for
the DICOM side. Importing nibabel costs more than a whole small conversion
(README, Performance), so the runtime does not. What dcmforge decides, as
nibabel and dcm2niix do:

* geometry from the sform when sform_code > 0, else the qform when qform_code > 0;
  a file with neither is refused unless ``first_voxel`` (and, when pixdim is not
  usable, ``spacing``) say where the voxels are; then the NIfTI-1 "method 1"
  axes (i -> right, j -> anterior, k -> superior) are assumed, with a warning;
* index -> RAS mm (NIfTI) turned into index -> LPS mm (DICOM) explicitly by
  :func:`dcmforge.geometry.from_affine`, which also refuses a sheared stack;
* xyzt_units: metres and micrometres become mm; seconds, ms and µs give the
  frame durations of a 4-D (dynamic PET) image from pixdim[4], starting at toffset;
* scl_slope/scl_inter applied as nibabel defines them (slope 0 or not finite:
  no scaling), lazily, so an uncompressed file stays memory-mapped;
* descrip and the intent are kept as notes (warnings), never used for quantitation.
"""

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import GeometryError, NiftiError
from ..geometry import finite_vector, from_affine
from ..image import NIFTI, Image
from .lazy import LazyVolume

# nifti1.h, in order: (name, type, count). The NIfTI-1 header is 348 bytes.
NIFTI1_FIELDS = (
    ("sizeof_hdr", "i4", 1), ("data_type", "S10", 1), ("db_name", "S18", 1), ("extents", "i4", 1),
    ("session_error", "i2", 1), ("regular", "S1", 1), ("dim_info", "u1", 1), ("dim", "i2", 8),
    ("intent_p1", "f4", 1), ("intent_p2", "f4", 1), ("intent_p3", "f4", 1), ("intent_code", "i2", 1),
    ("datatype", "i2", 1), ("bitpix", "i2", 1), ("slice_start", "i2", 1), ("pixdim", "f4", 8),
    ("vox_offset", "f4", 1), ("scl_slope", "f4", 1), ("scl_inter", "f4", 1), ("slice_end", "i2", 1),
    ("slice_code", "u1", 1), ("xyzt_units", "u1", 1), ("cal_max", "f4", 1), ("cal_min", "f4", 1),
    ("slice_duration", "f4", 1), ("toffset", "f4", 1), ("glmax", "i4", 1), ("glmin", "i4", 1),
    ("descrip", "S80", 1), ("aux_file", "S24", 1), ("qform_code", "i2", 1), ("sform_code", "i2", 1),
    ("quatern_b", "f4", 1), ("quatern_c", "f4", 1), ("quatern_d", "f4", 1), ("qoffset_x", "f4", 1),
    ("qoffset_y", "f4", 1), ("qoffset_z", "f4", 1), ("srow_x", "f4", 4), ("srow_y", "f4", 4), ("srow_z", "f4", 4),
    ("intent_name", "S16", 1), ("magic", "S4", 1),
)  # fmt: skip
# nifti2.h: the same facts, 64-bit sizes and doubles, 540 bytes.
NIFTI2_FIELDS = (
    ("sizeof_hdr", "i4", 1), ("magic", "S8", 1), ("datatype", "i2", 1), ("bitpix", "i2", 1), ("dim", "i8", 8),
    ("intent_p1", "f8", 1), ("intent_p2", "f8", 1), ("intent_p3", "f8", 1), ("pixdim", "f8", 8),
    ("vox_offset", "i8", 1), ("scl_slope", "f8", 1), ("scl_inter", "f8", 1), ("cal_max", "f8", 1),
    ("cal_min", "f8", 1), ("slice_duration", "f8", 1), ("toffset", "f8", 1), ("slice_start", "i8", 1),
    ("slice_end", "i8", 1), ("descrip", "S80", 1), ("aux_file", "S24", 1), ("qform_code", "i4", 1),
    ("sform_code", "i4", 1), ("quatern_b", "f8", 1), ("quatern_c", "f8", 1), ("quatern_d", "f8", 1),
    ("qoffset_x", "f8", 1), ("qoffset_y", "f8", 1), ("qoffset_z", "f8", 1), ("srow_x", "f8", 4),
    ("srow_y", "f8", 4), ("srow_z", "f8", 4), ("slice_code", "i4", 1), ("xyzt_units", "i4", 1),
    ("intent_code", "i4", 1), ("intent_name", "S16", 1), ("dim_info", "u1", 1), ("unused_str", "S15", 1),
)  # fmt: skip
# header size -> (version, fields, the magic of a single file, of a .hdr/.img pair)
VERSIONS = {348: ("NIfTI-1", NIFTI1_FIELDS, b"n+1", b"ni1"), 540: ("NIfTI-2", NIFTI2_FIELDS, b"n+2", b"ni2")}
# NIfTI datatype code -> the numpy type of the stored values (the others: complex, RGB, float128, are no images here)
DATATYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8", 1280: "u8"}
# xyzt_units bits (nifti1.h NIFTI_UNITS_*, named as nibabel names them) -> factor to mm, or to seconds
SPACE_CODES = {0: "unknown", 1: "meter", 2: "mm", 3: "micron"}
TIME_CODES = {0: "unknown", 8: "sec", 16: "msec", 24: "usec", 32: "hz", 40: "ppm", 48: "rads"}
SPACE_UNITS = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3, "unknown": 1.0}
TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
_MAX_VOXELS = 1 << 40  # far beyond any image; guards numpy's size arithmetic against overflow


def header_type(fields, byte_order):
    """The numpy structured type of a header in the given byte order ("<" or ">")."""
    return np.dtype([(name, byte_order + kind, (count,)) if count > 1 else (name, byte_order + kind)
                     for name, kind, count in fields])  # fmt: skip


def read_nifti(
    path: str | os.PathLike, *, first_voxel: Sequence[float] | None = None, spacing: Sequence[float] | None = None
) -> Image:
    """Read the NIfTI image at path into a :class:`dcmforge.image.Image`.

    first_voxel: LPS mm of the centre of voxel [0, 0, 0] (replaces the file's origin;
    required when the file has neither sform nor qform). spacing: (dx, dy, dz) mm for
    a file without geometry whose pixdim is not usable. Raises NiftiError (or
    GeometryError) for what cannot be read as a slice stack.
    """
    path = Path(path)
    header, version, byte_order = read_header(path)
    warnings = []
    shape = _shape(path, header)
    stored = _stored_type(path, header, byte_order)
    data_path, offset = _data_file(path, header, version)
    raw = _raw_voxels(path, data_path, offset, stored, shape)
    slope, intercept = _scaling(path, header)
    affine, convention = _geometry(path, header, first_voxel, spacing, warnings)
    metadata = _metadata(path, header, shape, warnings)
    volume = _volume(raw, shape, slope, intercept)
    keys = {name: _plain(header[name]) for name in header.dtype.names}
    return Image(path, data_path, NIFTI, version, volume, affine, from_affine(affine, "LPS").spacing, convention,
                 metadata, warnings, keys)  # fmt: skip


def read_header(path):
    """(header record, "NIfTI-1" or "NIfTI-2", byte order) of the file at path, gzip or not."""
    try:
        with _open(path) as file:
            start = file.read(540)
    except FileNotFoundError:
        raise NiftiError(f"{path}: no such file") from None
    except (OSError, EOFError, _inflate_error()) as exc:
        raise NiftiError(f"{path}: not a readable NIfTI file: {exc.strerror or exc}") from None
    for byte_order in "<>":
        size = int(np.frombuffer(start[:4], byte_order + "i4")[0]) if len(start) >= 4 else 0
        if size in VERSIONS:
            break
    else:
        raise NiftiError(f"{path}: not a NIfTI-1 or NIfTI-2 header (sizeof_hdr is neither 348 nor 540)")
    version, fields, single, pair = VERSIONS[size]
    if len(start) < size:
        raise NiftiError(f"{path}: the {version} header is cut short at {len(start)} of {size} bytes")
    header = np.frombuffer(start[:size], header_type(fields, byte_order))[0]
    magic = bytes(header["magic"]).rstrip(b"\0")[:3]
    if magic not in (single, pair):
        raise NiftiError(f"{path}: magic {bytes(header['magic'])!r} is not {version}'s (an Analyze header?)")
    return header, version, byte_order


def _inflate_error():
    """zlib's error, which only reading a .gz (gzip imports zlib) can raise: asked for as an exception is
    matched, so that a .nii never loads zlib."""
    import zlib

    return zlib.error


def _open(path):
    if path.name.lower().endswith(".gz"):
        import gzip  # here: a .nii never needs it

        return gzip.open(path, "rb")
    return open(path, "rb")


def _shape(path, header):
    """(t, z, y, x) with t = 1 for a 3-D image; dimensions 5 to 7 must be 1."""
    dims = [int(n) for n in header["dim"]]
    count = dims[0]
    if not 1 <= count <= 7:
        raise NiftiError(f"{path}: dim[0] = {count}: expected 1 to 7 dimensions")
    sizes = dims[1 : count + 1] + [1] * (7 - count)
    if any(n < 1 for n in sizes):
        raise NiftiError(f"{path}: dim = {dims}: every used dimension needs at least one voxel")
    if math.prod(sizes) > _MAX_VOXELS:
        raise NiftiError(f"{path}: dim = {dims}: {math.prod(sizes)} voxels is more than any file here can hold")
    if any(n != 1 for n in sizes[4:]):
        raise NiftiError(f"{path}: dim = {dims}: dimensions beyond time (5 to 7) are not supported")
    nx, ny, nz, nt = sizes[:4]
    return nt, nz, ny, nx


def _stored_type(path, header, byte_order):
    code = int(header["datatype"])
    kind = DATATYPES.get(code)
    if kind is None:
        raise NiftiError(f"{path}: datatype {code} cannot be stored (integers, float32 or float64 can)")
    return np.dtype(byte_order + kind)


def _data_file(path, header, version):
    """(the file holding the voxels, the offset of the first voxel in it)."""
    if bytes(header["magic"])[1:2] == b"+":  # n+1, n+2: the voxels follow the header in the same file
        offset = float(header["vox_offset"])
        if not math.isfinite(offset) or offset < int(header["sizeof_hdr"]) or offset != int(offset):
            raise NiftiError(f"{path}: vox_offset {offset:g} is not a byte offset past the {version} header")
        return path, int(offset)
    name = path.name
    position = name.lower().rfind(".hdr")
    if position < 0:
        raise NiftiError(f"{path}: a .hdr/.img pair's header must be named .hdr")
    image_suffix = ".IMG" if name[position : position + 4] == ".HDR" else ".img"
    data_path = path.with_name(name[:position] + image_suffix + name[position + 4 :])
    offset = float(header["vox_offset"])
    if not math.isfinite(offset) or offset < 0 or offset != int(offset):
        raise NiftiError(f"{path}: vox_offset {offset:g} is not a byte offset")
    return data_path, int(offset)


def _raw_voxels(path, data_path, offset, stored, shape):
    """The stored values in file order (x fastest), a read-only memmap when the file is uncompressed.

    A gzip file's last four bytes hold its uncompressed size modulo 2**32: a data file
    declaring more than it holds is refused before anything is inflated, and no more
    than the declared voxels are ever inflated.
    """
    count = math.prod(shape)
    needed = offset + count * stored.itemsize
    compressed = data_path.name.lower().endswith(".gz")
    try:
        if not compressed:
            size = os.stat(data_path).st_size
            if needed > size:
                raise NiftiError(f"{path}: dim and datatype need {needed} bytes but {data_path} holds {size}")
            return np.memmap(data_path, stored, "r", offset, (count,))
        _check_compressed_size(path, data_path, needed)
        import gzip  # here: a .nii never needs it

        with gzip.open(data_path, "rb") as file:
            file.seek(offset)
            data = file.read(count * stored.itemsize)
    except FileNotFoundError:
        raise NiftiError(f"{path}: its data file {data_path} does not exist") from None
    except (OSError, EOFError, _inflate_error()) as exc:
        raise NiftiError(f"{path}: {data_path} cannot be read: {exc.strerror or exc}") from None
    if len(data) < count * stored.itemsize:
        raise NiftiError(f"{path}: dim and datatype need {needed} bytes but {data_path} inflates to fewer")
    return np.frombuffer(data, stored)


def _check_compressed_size(path, data_path, needed):
    from .inflate import DEFLATE_MOST, cannot_inflate_to

    compressed = os.stat(data_path).st_size
    if cannot_inflate_to(compressed, needed):
        raise NiftiError(f"{path}: {compressed} bytes of gzip data cannot inflate to the {needed} bytes dim and datatype "
                         f"need (deflate gives at most {DEFLATE_MOST} times its size): not inflated")  # fmt: skip
    if needed >= 1 << 32:
        if needed > _memory():
            raise NiftiError(f"{path}: {needed} bytes compressed cannot be read into memory: gunzip it, "
                             "and the uncompressed file is memory-mapped")  # fmt: skip
        return
    with open(data_path, "rb") as file:
        file.seek(0, 2)
        if file.tell() < 4:
            return
        file.seek(-4, 2)
        size = int.from_bytes(file.read(4), "little")
    if needed > size:
        raise NiftiError(f"{path}: dim and datatype need {needed} bytes but {data_path} holds {size}")


def _memory():
    """This machine's memory in bytes (unbounded where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return math.inf


def _scaling(path, header):
    """(slope, intercept) as nibabel applies them: a slope of 0 or not finite means no scaling."""
    slope, intercept = float(header["scl_slope"]), float(header["scl_inter"])
    if slope == 0 or not math.isfinite(slope):
        return 1.0, 0.0
    if not math.isfinite(intercept):
        raise NiftiError(f"{path}: scl_slope {slope:g} and scl_inter {intercept:g} are not finite")
    return slope, intercept


def _volume(raw, shape, slope, intercept):
    """[z, y, x] or [t, z, y, x]: a transposed view of the file's [x, y, z, t], scaled when it is indexed."""
    nt, nz, ny, nx = shape
    raw = raw.reshape((nx, ny, nz, nt), order="F")
    frames = [raw[..., t].T for t in range(nt)]
    if slope == 1.0 and intercept == 0.0:
        return frames[0] if nt == 1 else raw.T
    return LazyVolume(frames, [slope] * nt, [intercept] * nt)


def units(header):
    """(space unit, time unit) names of xyzt_units; None for a code nifti1.h does not define."""
    code = int(header["xyzt_units"])
    return SPACE_CODES.get(code & 0x07), TIME_CODES.get(code & 0x38)


def sform(header):
    """The index -> RAS affine of srow_x/y/z."""
    ras = np.eye(4)
    ras[:3] = [header["srow_x"], header["srow_y"], header["srow_z"]]
    return ras


def qform(path, header):
    """The index -> RAS affine of the quaternion, qfac and pixdim (nifti1.h, "method 2")."""
    b, c, d = (float(header[name]) for name in ("quatern_b", "quatern_c", "quatern_d"))
    # a is the quaternion's fourth part, implied by a unit quaternion; a float32 rounding below 0 is a 180° turn
    squared = 1.0 - (b * b + c * c + d * d)
    threshold = 3 * np.finfo(header["quatern_b"].dtype).eps
    if squared < -threshold:
        raise NiftiError(f"{path}: quatern_b, c, d = {b:g}, {c:g}, {d:g} is no rotation (their squares exceed 1)")
    a = math.sqrt(squared) if squared > threshold else 0.0
    rotation = np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ]) / (a * a + b * b + c * c + d * d)  # a rotation even where a rounds to 0 and b, c, d miss unit length
    steps = np.array(header["pixdim"][1:4], dtype=np.float64)
    if np.any(steps < 0):
        raise NiftiError(f"{path}: pixdim[1:4] = {steps.tolist()}: the qform needs positive voxel sizes")
    qfac = -1.0 if float(header["pixdim"][0]) == -1 else 1.0  # nifti1.h: any value but -1 is taken as 1
    ras = np.eye(4)
    ras[:3, :3] = rotation * (steps * [1.0, 1.0, qfac])
    ras[:3, 3] = [header["qoffset_x"], header["qoffset_y"], header["qoffset_z"]]
    return ras


def _geometry(path, header, first_voxel, spacing, warnings):
    """(index -> LPS affine, convention line) from the sform, else the qform, else the options."""
    space_unit, _ = units(header)
    to_mm = SPACE_UNITS.get(space_unit)
    if to_mm is None:
        raise NiftiError(f"{path}: xyzt_units = {int(header['xyzt_units'])} does not say a length unit nifti1.h knows")
    if space_unit == "unknown":
        warnings.append(f"{path}: xyzt_units gives no spatial unit: millimetres assumed (as nibabel and dcm2niix do)")
    sform_code, qform_code = int(header["sform_code"]), int(header["qform_code"])
    if sform_code > 0:
        ras, source = sform(header), f"sform (code {sform_code})"
    elif qform_code > 0:
        ras, source = qform(path, header), f"qform (code {qform_code})"
    else:
        return _method_one(path, header, to_mm, first_voxel, spacing, warnings)
    if not np.all(np.isfinite(ras)):
        raise NiftiError(f"{path}: the {source} is not finite: {ras[:3].round(6).tolist()}")
    ras[:3] *= to_mm
    lps = from_affine(ras, "RAS").affine.copy()
    if first_voxel is not None:
        lps[:3, 3] = finite_vector(first_voxel, 3, "first_voxel (LPS mm)")
        warnings.append(f"{path}: voxel [0,0,0] placed at {lps[:3, 3].tolist()} LPS mm by the option, not the {source}")
    if spacing is not None:
        warnings.append(f"{path}: spacing option ignored: the {source} gives the voxel steps")
    return lps, f"NIfTI {source}, RAS turned into LPS"


def _method_one(path, header, to_mm, first_voxel, spacing, warnings):
    """A file without sform and qform: NIfTI-1 method 1 axes, where the options place and size them."""
    if first_voxel is None and spacing is None:
        raise NiftiError(
            f"{path}: neither sform_code nor qform_code is set, so the file does not say where its voxels are: "
            "give --first-voxel (LPS mm of voxel [0,0,0]) and, if pixdim is wrong, --spacing"
        )
    if spacing is None:
        steps = np.asarray(header["pixdim"][1:4], dtype=np.float64) * to_mm
        if not np.all(np.isfinite(steps)) or np.any(steps <= 0):
            raise NiftiError(f"{path}: pixdim[1:4] = {steps.tolist()} is not a spacing: give --spacing")
    else:
        steps = finite_vector(spacing, 3, "spacing (mm)")
        if np.any(steps <= 0):
            raise GeometryError(f"spacing must be positive mm, not {steps.tolist()}")
    origin = np.zeros(3) if first_voxel is None else finite_vector(first_voxel, 3, "first_voxel (LPS mm)")
    lps = np.eye(4)
    lps[:3, :3] = np.diag(steps * [-1.0, -1.0, 1.0])  # i -> right, j -> anterior, k -> superior
    lps[:3, 3] = origin
    warnings.append(
        f"{path}: no sform or qform: axes assumed as NIfTI-1 method 1 (i -> right, j -> anterior, k -> superior), "
        f"voxel [0,0,0] at {origin.tolist()} LPS mm"
    )
    return lps, "NIfTI without sform/qform: method 1 axes (i -> R, j -> A, k -> S) and the given position"


def _metadata(path, header, shape, warnings):
    """Frame times of a 4-D image, and descrip/intent as notes."""
    meta = {}
    frames = shape[0]
    if frames > 1:
        _, time_unit = units(header)
        step = float(header["pixdim"][4])
        to_seconds = TIME_UNITS.get(time_unit)
        if time_unit == "unknown" and step > 0:
            to_seconds = 1.0
            warnings.append(f"{path}: xyzt_units gives no time unit: pixdim[4] = {step:g} read as seconds")
        if to_seconds is None:
            warnings.append(f"{path}: the 4th dimension is in {time_unit}, not time: frame times must come from --meta")
        elif not math.isfinite(step) or step <= 0:
            warnings.append(f"{path}: pixdim[4] = {step:g} is no frame duration: frame times must come from --meta")
        else:
            duration = step * to_seconds
            toffset = float(header["toffset"])
            offset = toffset * to_seconds if math.isfinite(toffset) else 0.0
            meta["frame_duration"] = [duration] * frames
            meta["frame_start"] = [offset + f * duration for f in range(frames)]
            warnings.append(
                f"{path}: {frames} frames of {duration:g} s each, back to back from {offset:g} s (pixdim[4], toffset)"
            )
    descrip = _text(header["descrip"])
    if descrip:
        warnings.append(f"{path}: note: descrip := {descrip!r} (kept as a note, not used for quantitation)")
    intent_code = int(header["intent_code"])
    intent_name = _text(header["intent_name"])
    if intent_code or intent_name:
        warnings.append(f"{path}: note: intent {intent_code} {intent_name!r} (kept as a note, not used for quantitation)")
    return meta


def _text(value):
    return bytes(value).split(b"\0", 1)[0].decode("latin-1").strip()


def _plain(value):
    """A header field as plain Python (lists of numbers, text), for Image.keys."""
    if isinstance(value, bytes):
        return _text(value)
    return np.asarray(value).tolist()
