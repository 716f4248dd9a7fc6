"""Read NIfTI-1 and NIfTI-2 images (.nii, .nii.gz, .hdr/.img pairs) through nibabel.

nibabel is an optional extra (``pip install dcmforge[nifti]``): it is imported only
when a NIfTI file is read. What dcmforge decides itself, as nibabel and dcm2niix do:

* geometry from the sform when sform_code > 0, else the qform when qform_code > 0;
  a file with neither is refused unless ``first_voxel`` (and, when pixdim is not
  usable, ``spacing``) say where the voxels are; then the NIfTI-1 "method 1"
  axes (i -> right, j -> anterior, k -> superior) are assumed, with a warning;
* index -> RAS mm (NIfTI) turned into index -> LPS mm (DICOM) explicitly by
  :func:`dcmforge.geometry.from_affine`, which also refuses a sheared stack;
* xyzt_units: metres and micrometres become mm; seconds, ms and µs give the
  frame durations of a 4-D (dynamic PET) image from pixdim[4];
* scl_slope/scl_inter applied as nibabel defines them (slope 0 or not finite:
  no scaling), lazily, so an uncompressed file stays memory-mapped;
* descrip and the intent are kept as notes (warnings), never used for quantitation.
"""

import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DcmforgeError, GeometryError, NiftiError
from ..geometry import finite_vector, from_affine
from ..image import NIFTI, Image

# xyzt_units names (as nibabel spells them) -> factor to mm, or to seconds.
SPACE_UNITS = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3, "unknown": 1.0}
TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
_MAX_VOXELS = 1 << 40  # far beyond any image; guards numpy's size arithmetic against overflow
_NIBABEL_MISSING = "reading NIfTI needs nibabel, an optional extra: pip install 'dcmforge[nifti]'"


def read_nifti(path, *, first_voxel=None, spacing=None):
    """Read the NIfTI image at path into a :class:`dcmforge.image.Image`.

    first_voxel: LPS mm of the centre of voxel [0, 0, 0] (replaces the file's origin;
    required when the file has neither sform nor qform). spacing: (dx, dy, dz) mm for
    a file without geometry whose pixdim is not usable. Raises NiftiError (or
    GeometryError) for what cannot be read as a slice stack.
    """
    try:
        import nibabel
    except ImportError:
        raise ImportError(_NIBABEL_MISSING) from None
    path = Path(path)
    try:
        image = nibabel.load(str(path), mmap=True)
    except FileNotFoundError:
        raise NiftiError(f"{path}: no such file") from None
    except _nibabel_errors(nibabel) as exc:
        raise NiftiError(f"{path}: not a readable NIfTI file: {_reason(exc)}") from None
    header = image.header
    if not isinstance(header, nibabel.Nifti1Header):  # Nifti2Header is a subclass
        raise NiftiError(f"{path}: {type(header).__name__} is not a NIfTI-1 or NIfTI-2 header")
    warnings = []
    try:
        shape = _shape(path, header)
        data_path = Path(image.file_map["image"].filename)
        _check_data_size(path, data_path, header, shape)
        raw = _raw_voxels(path, image, nibabel)
        slope, intercept = _scaling(path, image, nibabel)
        affine, convention = _geometry(path, header, first_voxel, spacing, warnings)
        metadata = _metadata(path, header, shape, warnings)
    except _nibabel_errors(nibabel) as exc:
        if isinstance(exc, DcmforgeError):
            raise
        raise NiftiError(f"{path}: not a readable NIfTI file: {_reason(exc)}") from None
    volume = _volume(raw, shape, slope, intercept)
    geometry = from_affine(affine, "LPS")
    version = "NIfTI-2" if isinstance(header, nibabel.Nifti2Header) else "NIfTI-1"
    keys = {name: _plain(header[name]) for name in header.keys()}
    return Image(
        path, data_path, NIFTI, version, volume, geometry.affine, geometry.spacing, convention, metadata, warnings, keys
    )


def _nibabel_errors(nibabel):
    """What nibabel raises for a damaged or truncated file (it has no single root error)."""
    return (
        nibabel.filebasedimages.ImageFileError, nibabel.spatialimages.HeaderDataError, ValueError, TypeError,
        IndexError, KeyError, EOFError, OSError, OverflowError, zlib.error, np.linalg.LinAlgError,
    )  # fmt: skip


def _reason(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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


def _check_data_size(path, data_path, header, shape):
    """Refuse a header whose dimensions need more bytes than the data file has, before nibabel allocates them.

    A gzip file's last four bytes hold its uncompressed size modulo 2**32, a check for
    anything smaller than that; beyond it, a compressed file (read whole into memory)
    must fit in memory.
    """
    needed = int(header.get_data_offset()) + math.prod(shape) * header.get_data_dtype().itemsize
    with open(data_path, "rb") as file:
        if data_path.name.lower().endswith(".gz"):
            if needed >= 1 << 32:
                if needed > _memory():
                    raise NiftiError(f"{path}: {needed} bytes compressed cannot be read into memory: gunzip it, "
                                     "and the uncompressed file is memory-mapped")  # fmt: skip
                return
            file.seek(0, 2)
            if file.tell() < 4:
                return
            file.seek(-4, 2)
            size = int.from_bytes(file.read(4), "little")
        else:
            size = os.fstat(file.fileno()).st_size
    if needed > size:
        raise NiftiError(f"{path}: dim and datatype need {needed} bytes but {data_path} holds {size}")


def _memory():
    """This machine's memory in bytes (unbounded where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return math.inf


def _raw_voxels(path, image, nibabel):
    """The stored values, [x, y, z, t] as nibabel indexes them; a memmap when the file is uncompressed."""
    proxy = image.dataobj
    raw = proxy.get_unscaled() if nibabel.is_proxy(proxy) else np.asanyarray(proxy)
    if raw.dtype.kind not in "iuf" or raw.dtype.itemsize > 8 or raw.dtype == np.float16:
        raise NiftiError(f"{path}: voxels of type {raw.dtype} cannot be stored (integers, float32 or float64 can)")
    return raw


def _scaling(path, image, nibabel):
    """(slope, intercept) as nibabel applies them (it moves scl_slope/scl_inter from the header to its proxy;
    a slope of 0 or not finite means no scaling)."""
    proxy = image.dataobj
    if not nibabel.is_proxy(proxy):
        return 1.0, 0.0
    slope, intercept = float(proxy.slope), float(proxy.inter)
    if not (np.isfinite(slope) and np.isfinite(intercept)):
        raise NiftiError(f"{path}: scl_slope {slope:g} and scl_inter {intercept:g} are not finite")
    return slope, intercept


def _volume(raw, shape, slope, intercept):
    """[z, y, x] or [t, z, y, x]: a transposed view of nibabel's [x, y, z, t], scaled when it is indexed."""
    from .interfile.scaling import LazyVolume

    nt, nz, ny, nx = shape
    raw = raw.reshape((nx, ny, nz, nt), order="F")
    frames = [raw[..., t].T for t in range(nt)]
    if slope == 1.0 and intercept == 0.0:
        return frames[0] if nt == 1 else raw.T
    return LazyVolume(frames, [slope] * nt, [intercept] * nt)


def _geometry(path, header, first_voxel, spacing, warnings):
    """(index -> LPS affine, convention line) from the sform, else the qform, else the options."""
    space_unit, _ = header.get_xyzt_units()
    to_mm = SPACE_UNITS.get(space_unit)
    if to_mm is None:
        raise NiftiError(f"{path}: xyzt_units says the spatial unit is {space_unit!r}, not a length")
    if space_unit == "unknown":
        warnings.append(f"{path}: xyzt_units gives no spatial unit: millimetres assumed (as nibabel and dcm2niix do)")
    sform_code, qform_code = int(header["sform_code"]), int(header["qform_code"])
    if sform_code > 0:
        ras, source = header.get_sform(), f"sform (code {sform_code})"
    elif qform_code > 0:
        ras, source = header.get_qform(), f"qform (code {qform_code})"
    else:
        return _method_one(path, header, to_mm, first_voxel, spacing, warnings)
    ras = np.asarray(ras, dtype=np.float64)
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
        _, time_unit = header.get_xyzt_units()
        step = float(header["pixdim"][4])
        to_seconds = TIME_UNITS.get(time_unit)
        if time_unit == "unknown" and step > 0:
            to_seconds = 1.0
            warnings.append(f"{path}: xyzt_units gives no time unit: pixdim[4] = {step:g} read as seconds")
        if to_seconds is None:
            warnings.append(f"{path}: the 4th dimension is in {time_unit}, not time: frame times must come from --meta")
        elif not np.isfinite(step) or step <= 0:
            warnings.append(f"{path}: pixdim[4] = {step:g} is no frame duration: frame times must come from --meta")
        else:
            duration = step * to_seconds
            offset = float(header["toffset"]) * to_seconds if np.isfinite(header["toffset"]) else 0.0
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
    raw = bytes(np.asarray(value).tobytes()).split(b"\0", 1)[0]
    return raw.decode("latin-1").strip()


def _plain(value):
    """A header field as plain Python (lists of numbers, text), for Image.keys."""
    array = np.asarray(value)
    if array.dtype.kind == "S":
        return _text(array)
    return array.tolist()
