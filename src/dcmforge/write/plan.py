"""A series planned once: what both writers (single-frame files, one Enhanced PET file) need before any pixel.

Data flows one way: the options (``WriteOptions``, the one definition of the
writers' keyword arguments) and the volume's shape -> ``plan_series``: the
image description, geometry, resolved metadata, frame timing and decay, the
reference and clock times, per-slice positions -> a sink (series.py writes
one file per slice, multiframe.py one Enhanced PET file) that adds what is
its own and streams the pixels. The volume is read by the helpers at the end
(``chunks``, ``volume_extrema``, ``release_pages``), a bounded chunk at a time.
"""

import datetime
import functools
import inspect
import logging
import math
import mmap
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from .. import geometry, iods, metadata as metadata_files, pixels, timing
from ..dicom.encode import encode_element
from ..dicom.uids import new_uid, new_uids
from ..dicom.values import dicom_date, dicom_time
from ..errors import DcmforgeError, MetadataError, VolumeError
from ..iods.common import DCMFORGE_VERSION
from .axes import ZYX, check_axes
from .study import with_study

log = logging.getLogger("dcmforge")

# Slices read per chunk by the two-pass readers: bounds memory (about 16 Mi voxels) whatever the volume's size.
CHUNK_VOXELS = 1 << 24


class WriteOptions(NamedTuple):
    """The keyword arguments of write_series, SeriesWriter and the Enhanced PET writer.

    Geometry is either ``spacing`` (dx, dy, dz in mm: columns, rows, slices)
    with ``origin`` (LPS mm of the centre of voxel [0, 0, 0]) and
    ``orientation`` (row then column direction cosines), or a 4x4 ``affine``
    with ``affine_convention`` "LPS" or "RAS"; ``axes``: the array's axis
    order, "zyx" ([z, y, x], the default) or "xyz" (nibabel's [i, j, k]),
    required with an affine (write/axes.py). ``metadata``: a mapping or a
    metadata file (TOML or JSON). ``seed``: reproducible UIDs. ``overwrite``:
    replace an existing series folder as a whole. ``backend``: "numpy",
    "numba" or "auto" (pixels.select_backend). ``durable``: fsync files and
    folders (write/commit.py). ``scaling``: Enhanced PET's rescale, "volume"
    (default) or "slice". ``study``: from new_study, shared with other series.
    ``preview``: draw ``<out_dir>.preview.png`` beside the committed series
    (dcmforge.preview). ``before_commit``: called with the path of the
    written series' temporary folder after its last file, before the rename
    that commits it (SeriesFolder.commit); what it raises aborts the series.
    ``progress``: called with (images written, images of the series) after
    each window of files of a series of single-frame files (a progress bar).
    """

    spacing: Sequence[float] | None = None
    origin: Sequence[float] = (0.0, 0.0, 0.0)
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0)
    affine: np.ndarray | Sequence[Sequence[float]] | None = None
    affine_convention: Literal["LPS", "RAS"] | None = None
    axes: Literal["zyx", "xyz"] | None = None
    modality: str = "PT"
    metadata: Mapping[str, Any] | str | os.PathLike | None = None
    seed: str | None = None
    overwrite: bool = False
    backend: Literal["auto", "numpy", "numba"] = "auto"
    durable: bool = False
    scaling: Literal["volume", "slice"] | None = None
    study: Mapping[str, str] | None = None
    preview: bool = False
    before_commit: Callable[[Path], object] | None = None
    progress: Callable[[int, int], object] | None = None


_OPTION_NAMES = WriteOptions._fields


def options_from(arguments, caller):
    """WriteOptions from a call's keyword arguments; an unknown one is a TypeError, as for any Python function."""
    for name in arguments:
        if name not in _OPTION_NAMES:
            raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}{_did_you_mean(name)}")
    return WriteOptions(**arguments)


def folder_options(options):
    """SeriesFolder's keyword arguments from the WriteOptions (write/commit.py)."""
    return {"overwrite": options.overwrite, "durable": options.durable, "before_commit": options.before_commit}


def _did_you_mean(name):
    import difflib  # for a misspelled keyword only

    close = difflib.get_close_matches(name, _OPTION_NAMES, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def takes_write_options(function):
    """``function(..., **options)`` with WriteOptions' fields as its keyword-only parameters.

    Its signature (what ``help()`` and editors show) lists them, typed and with
    their defaults, from the one definition above; a call with an unknown
    keyword is a TypeError naming it before ``function`` runs.
    """
    own = inspect.signature(function)
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [parameter for parameter in own.parameters.values() if parameter.kind != parameter.VAR_KEYWORD]
    parameters += [
        inspect.Parameter(name, keyword, default=WriteOptions._field_defaults[name], annotation=annotation)
        for name, annotation in WriteOptions.__annotations__.items()
    ]
    caller = function.__qualname__.removesuffix(".__init__").removesuffix(".__new__")

    @functools.wraps(function)
    def checked(*args, **options):
        for name in options:
            if name not in signature.parameters:
                raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}{_did_you_mean(name)}")
        return function(*args, **options)

    signature = own.replace(parameters=parameters)
    checked.__signature__ = signature
    return checked


class SeriesPlan(NamedTuple):
    """What a series is before any pixel: the same for both kinds of output."""

    options: WriteOptions
    description: object  # iods image description
    modality: str
    shape: tuple  # (z, y, x) or (t, z, y, x)
    geometry: object
    user: dict  # the resolved metadata (and study)
    values: dict  # the metadata over the PET or CT image defaults, decay correction settled
    frames: list  # timing.FrameTiming per time frame
    half_life: object  # s, or None
    decay: list  # DecayFactor per time frame, or None each
    reference: datetime.datetime  # the acquisition start
    now: datetime.datetime
    positions: np.ndarray  # ImagePositionPatient per slice, rounded to 6 decimals

    @property
    def frame_count(self):
        return self.shape[0] if len(self.shape) == 4 else 1

    @property
    def slice_count(self):
        return self.shape[-3]

    @property
    def image_count(self):
        return self.frame_count * self.slice_count


def plan_series(shape, options, multiframe=False):
    """The SeriesPlan of a volume of ``shape`` ([z, y, x] order, validated here) written with ``options``."""
    description = iods.description_for(options.modality, multiframe=multiframe)  # refuses a modality it does not describe
    modality = description.modality
    # An affine over an array of unnamed axis order is refused; nibabel's order is turned into [z, y, x] by the
    # writers that take it (write_series, SeriesWriter): one that reaches a plan would be read transposed.
    if check_axes(options.axes, options.affine) != ZYX:
        raise DcmforgeError(f'axes="{options.axes}": this writer takes [z, y, x] arrays only (axes="zyx")')
    shape = check_shape(shape, modality, multiframe)
    frame_count = shape[0] if len(shape) == 4 else 1
    place = geometry_from(options.spacing, options.origin, options.orientation, options.affine, options.affine_convention)
    user, frames, half_life = user_metadata(options.metadata, modality, frame_count, options.study)
    # Enhanced PET reads the single-frame PET series' values, so both forms of one input say the same.
    values = {**iods.defaults(iods.description_for("PT") if multiframe else description), **user}
    if modality != "CT":
        for key, warning in metadata_files.unstated(user):
            log.warning("%s: %s", key, warning)
    now = datetime.datetime.now()
    reference = reference_datetime(user, now)
    decay = decay_factors(frames, values.get("DecayCorrection", "NONE"), half_life)
    positions = place.image_positions(shape[-3]).round(6)
    return SeriesPlan(
        options, description, modality, shape, place, user, values, frames, half_life, decay, reference, now, positions
    )


def geometry_from(spacing, origin, orientation, affine, affine_convention):
    """The volume's Geometry from an affine, or else from spacing, origin and orientation."""
    if affine is not None:
        return geometry.from_affine(affine, affine_convention)
    if spacing is not None:
        return geometry.from_spacing(spacing, origin, orientation)
    raise DcmforgeError("give either spacing (with origin and orientation) or an affine")


def user_metadata(metadata, modality, frame_count, study=None):
    """(DICOM values from the metadata and the study, frame timings, half-life or None)."""
    metadata = metadata_files.metadata_mapping(metadata)  # a DcmforgeError for what is neither mapping nor path
    resolved, notes = metadata_files.resolve_metadata(with_study(metadata, study), modality)
    for note in notes:
        log.warning("%s", note)
    frames = timing.frame_timings(frame_count, resolved.pop("frame_start", None), resolved.pop("frame_duration", None))
    half_life = None
    for item in resolved.get("RadiopharmaceuticalInformationSequence") or []:
        if item.get("RadionuclideHalfLife") not in (None, ""):
            half_life = float(item["RadionuclideHalfLife"])
            break
    return resolved, frames, half_life


def reference_datetime(user, now):
    """The series reference time: acquisition start, from metadata or, failing that, the clock."""
    for date_key, time_key in (("SeriesDate", "SeriesTime"), ("StudyDate", "StudyTime")):
        if user.get(date_key) and user.get(time_key):
            return timing.parse_dicom_datetime(user[date_key], user[time_key])
    log.warning("no acquisition start in the metadata: study and series times set to the write time")
    return now.replace(microsecond=0)


def uid_and_clock_values(plan, series_name):
    """The description's UIDs (the user's or new ones) and dates and times (the user's, else the clock's).

    ``series_name`` tells series of one seed apart ("PT", "CT", ...).
    """
    values = {}
    user, seed = plan.user, plan.options.seed
    keywords = iods.keywords_from(plan.description, "uid")
    drawn = iter(new_uids(len(keywords))) if seed is None else None  # random ones: one system call for all
    for keyword in keywords:
        # One seed may serve a PET and a CT of one study: they share the study and
        # frame of reference, but each series (and so each instance) is its own.
        names = (keyword, series_name) if keyword == "SeriesInstanceUID" else (keyword,)
        values[keyword] = user.get(keyword) or (next(drawn) if drawn else new_uid(seed, *names))
    # Study, series and content times default to the acquisition start; creation is now. Each text made once.
    start = dicom_date(plan.reference), dicom_time(plan.reference)
    creation = dicom_date(plan.now), dicom_time(plan.now)
    for keyword in iods.keywords_from(plan.description, "clock"):
        date, time = creation if keyword.startswith("InstanceCreation") else start
        values[keyword] = user.get(keyword) or (date if keyword.endswith("Date") else time)
    return values


def decay_factors(frames, decay_correction, half_life):
    """Every frame's DecayFactor, or None for each when DecayCorrection is NONE."""
    if str(decay_correction).strip() == "NONE":
        return [None] * len(frames)
    if half_life is None:
        raise MetadataError(
            f"DecayFactor (0054,1321) is required when DecayCorrection is {decay_correction}: "
            "give the isotope (for its half-life) or set DecayCorrection NONE"
        )
    return [timing.decay_factor(frame, half_life) for frame in frames]


def check_shape(shape, modality, multiframe=False):
    try:
        shape = tuple(operator.index(n) for n in shape)  # 2.5 is not a size; numpy integers are
    except TypeError:
        raise VolumeError(f"shape must be a tuple of integers ([z, y, x] or [t, z, y, x]), not {shape!r:.60}") from None
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise VolumeError(f"a volume is [z, y, x] or [t, z, y, x] with no empty axis, got shape {shape}")
    if len(shape) == 4 and modality != "PT":
        raise VolumeError(f"only PET series can be dynamic ([t, z, y, x]); got shape {shape} for {modality}")
    if max(shape[-2:]) > 0xFFFF:
        raise VolumeError(f"rows and columns (the shape's last two axes) must be at most 65535, got {shape[-2:]}")
    images = math.prod(shape[:-2])
    if modality == "PT" and not multiframe and images > 0xFFFF:  # checked before a voxel is read
        frames = f"{shape[0]} frames of {shape[1]} slices are" if len(shape) == 4 else f"{shape[0]} slices are"
        raise VolumeError(
            f"{frames} {images} images; a PET series numbers its images with ImageIndex (US), at most 65535: "
            "write it with --multiframe, or in parts"
        )
    return shape


def set_derived(dataset, user, derived):
    """Put derived values into dataset; a user value that contradicts one is an error, not overwritten."""
    for keyword, value in derived.items():
        given = user.get(keyword)
        if given not in (None, "") and encode_element(keyword, given) != encode_element(keyword, value):
            raise MetadataError(f"{keyword} comes from the volume and geometry ({value!r}); the metadata says {given!r}")
        dataset[keyword] = value


def software_versions(given):
    """The user's software versions (the reconstruction's) followed by dcmforge's own."""
    given = [] if given in (None, "") else [given] if isinstance(given, str) else list(given)
    return given if DCMFORGE_VERSION in given else [*given, DCMFORGE_VERSION]


# -- the default display window ------------------------------------------------------------

# PET's default window (the metadata's wins): 0 to a robust maximum of the volume, this percentile
# of its images' maxima (found by the extrema pass that scaling needs), so that a few slices
# through the bladder or a hot spot do not leave the rest black, nor an empty first slice set it.
PET_WINDOW_PERCENTILE = 90


def pet_window(maxima):
    """(WindowCenter, WindowWidth) showing 0 to a robust maximum of the images' ``maxima``, at least 1 wide
    (PS3.3 C.11.2.1.2)."""
    width = max(float(f"{percentile(maxima, PET_WINDOW_PERCENTILE):.6g}"), 1.0)
    return width / 2, width


def percentile(values, q):
    """np.percentile(values, q) of its default (linear) method, the same arithmetic by partition:
    np.percentile imports numpy.ma, about 10 ms of a one-file command's start."""
    values = np.asarray(values, np.float64).ravel()
    index = (values.size - 1) * (q / 100)
    below = min(max(math.floor(index), 0), values.size - 1)
    above = min(below + 1, values.size - 1)
    ranked = np.partition(values, (below, above))
    a, b, t = ranked[below], ranked[above], index - below
    difference = b - a
    # numpy's _lerp: from the nearer end, so that t = 1 gives b exactly
    return float(b - difference * (1 - t) if t >= 0.5 else a + difference * t)


# -- reading the volume, a bounded chunk at a time ---------------------------------------


def chunks(shape, voxels=None):
    """(the chunk's image numbers as a slice, its index into the volume): whole slices, bounded memory.

    ``voxels``: the most a chunk holds (at least one slice); CHUNK_VOXELS by default.
    """
    slices = shape[-3]
    step = max(1, (CHUNK_VOXELS if voxels is None else voxels) // (shape[-1] * shape[-2]))
    frames = [()] if len(shape) == 3 else [(f,) for f in range(shape[0])]
    for f, frame in enumerate(frames):
        for k0 in range(0, slices, step):
            k1 = min(k0 + step, slices)
            yield slice(f * slices + k0, f * slices + k1), (*frame, slice(k0, k1))


def volume_extrema(volume, backend):
    """(mins, maxs): the smallest and largest value of every image (frame-major), a chunk at a time."""
    parts = list(chunks(volume.shape))
    extrema = []
    for part, index in parts:
        chunk = volume[index]
        extrema.append(chunk_extrema(chunk, part, index, backend))
        if len(parts) > 1:  # one chunk is read again at once, while its pages are still mapped
            release_pages(chunk)
    return tuple(np.concatenate(values) for values in zip(*extrema))


def chunk_extrema(chunk, part, index, backend, parallel=None):
    """slice_extrema of one chunk; a bad voxel of a dynamic volume is named by frame and slice."""
    try:
        return pixels.slice_extrema(chunk, part.start if len(index) == 1 else index[1].start, backend, parallel)
    except VolumeError as exc:
        raise VolumeError(f"frame {index[0]}, {exc}" if len(index) == 2 else str(exc)) from None


def release_pages(chunk):
    """Give a memory-mapped chunk's pages back to the kernel once it has been read.

    A file mapping's pages count in the process's resident memory until they
    are unmapped: dropping each chunk's after use keeps a conversion's memory
    bounded however large the input file is. Only for mappings that hold no
    private changes (modes "r" and "r+"); a copy-on-write page would lose them.
    """
    owner = chunk
    while isinstance(owner, np.ndarray) and not isinstance(owner.base, mmap.mmap):
        owner = owner.base
    if not (isinstance(owner, np.memmap) and owner.mode in ("r", "r+") and chunk.flags.c_contiguous):
        return
    if not hasattr(mmap, "MADV_DONTNEED") or owner.base.closed:
        return
    start = chunk.ctypes.data - np.frombuffer(owner.base, np.uint8).ctypes.data
    first = start - start % mmap.PAGESIZE
    owner.base.madvise(mmap.MADV_DONTNEED, first, start + chunk.nbytes - first)


# -- the preview picture, drawn from the chunks as they pass --------------------------


def projections_for(shape):
    """The accumulator of a preview's projections (imported only when a preview is asked for)."""
    from ..preview.projection import ProjectionAccumulator

    return ProjectionAccumulator(shape)


def draw_preview(out_dir, projections, geometry, modality):
    """The picture of a committed series, beside its folder."""
    from ..preview import write_preview

    return write_preview(out_dir, projections, geometry.affine, modality)
