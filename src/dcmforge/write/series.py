"""Volumes to image series: one DICOM file per slice, written as fast as files can be.

Data flows one way: volume + geometry + metadata -> the series' shared
dataset (validated against its image description, encoded once) -> per
chunk of slices: pixel packing (pixels.py) and the few per-slice elements
-> files in a private folder (commit.py), renamed to out_dir when the series is whole.
"""

import datetime
import logging
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import geometry, iods, metadata as metadata_files, pixels, timing
from ..dicom.encode import ABSENT, HeaderTemplate, element_header, encode_element, with_character_set
from ..dicom.part10 import file_meta
from ..dicom.uids import new_uid
from ..dicom.values import values_of
from ..errors import DcmforgeError, MetadataError, VolumeError
from ..iods import validate
from ..iods.common import DCMFORGE_VERSION
from .study import with_study
from .commit import SeriesFolder, refuse_existing

log = logging.getLogger("dcmforge")

# Slices packed per chunk: bounds memory (about 16 Mi voxels of output) whatever the volume's size.
CHUNK_VOXELS = 1 << 24

def write_series(
    volume,
    out_dir,
    *,
    spacing=None,
    origin=(0.0, 0.0, 0.0),
    orientation=(1, 0, 0, 0, 1, 0),
    affine=None,
    affine_convention=None,
    modality="PT",
    metadata=None,
    seed=None,
    overwrite=False,
    backend="auto",
    multiframe=False,
    scaling=None,
    study=None,
    durable=False,
    preview=False,
):
    """Write ``volume`` ([z, y, x], or [t, z, y, x] for dynamic PET) as a DICOM series in ``out_dir``.

    Geometry is either ``spacing`` (dx, dy, dz in mm: columns, rows, slices)
    with ``origin`` (LPS mm of the centre of voxel [0, 0, 0]) and
    ``orientation`` (row then column direction cosines), or a 4x4 ``affine``
    with ``affine_convention`` "LPS" or "RAS". ``metadata`` is a mapping or a
    metadata file (TOML or JSON). Returns the written paths in slice order.

    ``out_dir`` is the series folder: it appears whole when every file is
    written, or not at all (see ``dcmforge.write.commit``). An existing one is
    refused (OutputExistsError, before any voxel is read) unless ``overwrite``,
    which replaces it as a whole once the new series is complete.
    ``durable=True`` fsyncs the files and folders (for a power loss).

    ``multiframe=True`` writes one Enhanced PET Image file instead, every slice
    (of every time frame) one frame of it: see ``dcmforge.write.multiframe``;
    its rescale is the volume's one, or each frame's own with ``scaling="frame"``.
    A series of single-frame files always has each file's own.

    ``study`` (from ``new_study``) puts the series in a study that other calls
    share: a PET and its CT (see ``dcmforge.write.study``).

    ``preview=True`` also draws ``<out_dir>.preview.png`` beside the series
    once it is committed: see ``dcmforge.preview``.
    """
    if not isinstance(volume, np.ndarray):  # lists and other array-likes; arrays and memmaps are not copied
        volume = np.asarray(volume)
    if multiframe:
        from .multiframe import write_multiframe

        return write_multiframe(
            volume,
            out_dir,
            spacing=spacing,
            origin=origin,
            orientation=orientation,
            affine=affine,
            affine_convention=affine_convention,
            modality=modality,
            metadata=metadata,
            seed=seed,
            overwrite=overwrite,
            backend=backend,
            scaling=scaling,
            study=study,
            durable=durable,
            preview=preview,
        )
    if scaling not in (None, "frame"):
        raise DcmforgeError(f"scaling={scaling!r}: a series of single-frame files has each file's own rescale")
    shape = volume.shape
    with SeriesWriter(
        out_dir,
        shape,
        spacing=spacing,
        origin=origin,
        orientation=orientation,
        affine=affine,
        affine_convention=affine_convention,
        modality=modality,
        metadata=metadata,
        seed=seed,
        overwrite=overwrite,
        backend=pixels.select_backend(int(np.prod(shape)), backend),
        study=study,
        durable=durable,
        preview=preview,
    ) as writer:
        # Two passes over the volume: the extrema of every slice first, so a NaN is
        # found before any file is written and integer input is judged as a whole;
        # then packing and writing, a chunk at a time (memory stays bounded).
        mins, maxs = volume_extrema(volume, writer.backend)
        scaling = pixels.plan_slice_scaling(mins, maxs, volume.dtype, writer.modality)
        for part, index in chunks(shape):
            chunk_scaling = pixels.SliceScaling(*(values[part] for values in scaling))
            chunk = volume[index]
            writer._write_packed(chunk, mins[part], maxs[part], chunk_scaling)
            release_pages(chunk)
    return writer.paths


def volume_extrema(volume, backend):
    """(mins, maxs): the smallest and largest value of every image (frame-major), a chunk at a time."""
    parts = list(chunks(volume.shape))
    extrema = []
    for part, index in parts:
        chunk = volume[index]
        extrema.append(_extrema(chunk, part, index, backend))
        if len(parts) > 1:  # one chunk is read again at once, while its pages are still mapped
            release_pages(chunk)
    return tuple(np.concatenate(values) for values in zip(*extrema))


def _extrema(chunk, part, index, backend):
    """slice_extrema of one chunk; a bad voxel of a dynamic volume is named by frame and slice."""
    try:
        return pixels.slice_extrema(chunk, part.start if len(index) == 1 else index[1].start, backend)
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


def chunks(shape):
    """(the chunk's image numbers as a slice, its index into the volume): whole slices, bounded memory."""
    slices = shape[-3]
    step = max(1, CHUNK_VOXELS // (shape[-1] * shape[-2]))
    frames = [()] if len(shape) == 3 else [(f,) for f in range(shape[0])]
    for f, frame in enumerate(frames):
        for k0 in range(0, slices, step):
            k1 = min(k0 + step, slices)
            yield slice(f * slices + k0, f * slices + k1), (*frame, slice(k0, k1))


class SeriesWriter:
    """Write a series slice by slice, for loops that produce one slice or frame at a time.

    >>> with SeriesWriter(out, (nz, ny, nx), spacing=(2, 2, 2)) as series:   # doctest: +SKIP
    ...     for k in range(nz):
    ...         series.write_slice(reconstruct(k))

    Memory does not grow with the volume. Slices must come in order. The
    files go into a private folder that becomes ``out_dir`` when the block
    ends with every slice written; if it raises, or ends early, the folder is
    removed: a series is either whole or absent. ``preview=True`` draws the
    series' picture beside out_dir once it is committed.
    """

    def __init__(
        self,
        out_dir,
        shape,
        *,
        spacing=None,
        origin=(0.0, 0.0, 0.0),
        orientation=(1, 0, 0, 0, 1, 0),
        affine=None,
        affine_convention=None,
        modality="PT",
        metadata=None,
        seed=None,
        overwrite=False,
        backend="auto",
        workers=1,
        study=None,
        durable=False,
        preview=False,
    ):
        refuse_existing(out_dir, overwrite)  # before anything else is done
        self.description = iods.description_for(modality)  # refuses a modality it does not describe
        modality = self.description.modality
        self.shape = check_shape(shape, modality)
        self.frame_count = self.shape[0] if len(self.shape) == 4 else 1
        self.slice_count, self.rows, self.columns = self.shape[-3:]
        self.image_count = self.frame_count * self.slice_count
        self.modality = modality
        self.backend = pixels.select_backend(int(np.prod(self.shape)), backend)
        self.seed = seed
        self.geometry = geometry_from(spacing, origin, orientation, affine, affine_convention)

        user, self.frames, self.half_life = user_metadata(metadata, modality, self.frame_count, study)
        shared = {**iods.defaults(self.description), **user}
        settle_decay_correction(shared, user, modality, self.half_life)
        set_derived(shared, user, self._series_values(user))
        shared["SoftwareVersions"] = software_versions(user.get("SoftwareVersions"))
        self.shared, codec = with_character_set(shared)
        # What the description derives per slice is encoded per slice; PixelData goes last, raw.
        self.slice_keywords = tuple(k for k in iods.keywords_from(self.description, "slice") if k != "PixelData")
        self.template = HeaderTemplate(
            {k: v for k, v in self.shared.items() if k not in self.slice_keywords}, self.slice_keywords, codec
        )
        self.series_uid = self.shared["SeriesInstanceUID"]
        decay = decay_factors(self.frames, shared.get("DecayCorrection", "NONE"), self.half_life)
        self._frame_values = [self._frame_values_for(f, decay[f]) for f in range(self.frame_count)]
        self._positions = self.geometry.image_positions(self.slice_count).round(6)
        self._locations = self.geometry.slice_locations(self.slice_count).round(6)
        self._pixel_header = element_header(0x7FE00010, "OW", self.rows * self.columns * 2)

        self.out_dir = Path(out_dir)
        width = max(4, len(str(self.image_count)))
        self.names = [f"{modality}_{n + 1:0{width}d}.dcm" for n in range(self.image_count)]
        self.paths = [self.out_dir / name for name in self.names]
        self.written = 0
        self._validated = False
        self._stored = None  # the packed-pixel buffer, reused from chunk to chunk
        self._last_slope = None  # write_slices' latest RescaleSlope
        self.folder = SeriesFolder(self.out_dir, overwrite=overwrite, durable=durable)
        self._pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self._projections = projections_for(self.shape) if preview else None

    # -- the series-wide dataset ---------------------------------------------

    def _series_values(self, user):
        """Values derived from the volume, geometry, UIDs and clock, the same in every slice."""
        g = self.geometry
        now = datetime.datetime.now()
        self.reference = reference_datetime(user, now)
        values = {
            "SOPClassUID": self.description.sop_class_uid,
            "Modality": self.modality,
            "Rows": self.rows,
            "Columns": self.columns,
            "PixelSpacing": [round(v, 6) for v in g.pixel_spacing],
            "ImageOrientationPatient": g.image_orientation,
            "SliceThickness": round(g.slice_thickness, 6),
        }
        values.update(uid_and_clock_values(self.description, self.modality, user, self.seed, self.reference, now))
        if self.modality == "PT":
            values["NumberOfSlices"] = self.slice_count
            if self.frame_count > 1:
                values["NumberOfTimeSlices"] = self.frame_count
                series_type = user.get("SeriesType") or ["DYNAMIC", "IMAGE"]
                values["SeriesType"] = ["DYNAMIC", *list(series_type)[1:]]
        return values

    def _frame_values_for(self, frame, decay_factor):
        """Per-frame PET values: acquisition time, duration, reference time, decay factor."""
        if self.modality != "PT":
            return {}
        frame_timing = self.frames[frame]
        start = self.reference + datetime.timedelta(seconds=frame_timing.start)
        return {
            "AcquisitionDate": start.strftime("%Y%m%d"),
            "AcquisitionTime": timing.dicom_time(start),
            "FrameReferenceTime": round(1000 * timing.reference_time(frame_timing, self.half_life), 3),
            "ActualFrameDuration": "" if frame_timing.duration is None else round(1000 * frame_timing.duration),
            "DecayFactor": ABSENT if decay_factor is None else decay_factor,
        }

    # -- writing ---------------------------------------------------------------

    def write_slice(self, image):
        """Write the next slice (a 2-D [y, x] array)."""
        self.write_slices(np.asarray(image)[None])

    def write_frame(self, volume):
        """Write the next frame (a 3-D [z, y, x] array) of a dynamic series."""
        self.write_slices(volume)

    def write_slices(self, slices):
        """Write the next len(slices) slices (a 3-D [z, y, x] array, in order).

        Each call is scaled on its own: integer slices that fit 16 bits are
        stored as they are, judged per call (write_series judges the whole volume);
        all-zero slices take the slope of a slice with values in the call, else the last one written.
        """
        slices = np.asarray(slices)
        mins, maxs = pixels.slice_extrema(slices, self.written, self.backend)
        # All-zero slices of a call take the slope written last (see pixels._fit_16_bits).
        scaling = pixels.plan_slice_scaling(mins, maxs, slices.dtype, self.modality, self._last_slope)
        self._write_packed(slices, mins, maxs, scaling)
        self._last_slope = float(scaling.slopes[-1])

    def _write_packed(self, slices, mins, maxs, scaling):
        count = len(slices)
        if np.ndim(slices) != 3 or np.shape(slices)[1:] != (self.rows, self.columns):
            raise VolumeError(f"expected slices of shape (n, {self.rows}, {self.columns}), got {np.shape(slices)}")
        if self.written + count > self.image_count:
            raise VolumeError(f"the series has {self.image_count} images; {self.written + count} were given")
        if self._projections is not None:
            self._projections.add_images(slices, self.written, self.slice_count)
        if self._stored is None or len(self._stored) < count:
            self._stored = np.empty((count, self.rows, self.columns), np.uint16)
        stored = pixels.pack_slices(slices, *scaling, self._stored[:count], self.backend)
        smallest, largest = pixels.stored_extrema(mins, maxs, *scaling)
        packed = Packed(stored, scaling.slopes, scaling.intercepts, scaling.signed, smallest, largest)
        first = self.written
        if not self._validated:
            validate.check(self._dataset_for(first, packed, 0), self.description)
            self._validated = True
        jobs = []
        for i in range(count):
            n = first + i
            pieces = self._file_pieces(n, packed, i)
            if self._pool is None:
                self._finish(n, self.folder.write, self.names[n], pieces)
            else:
                jobs.append((n, self._pool.submit(self.folder.write, self.names[n], pieces)))
            self.written = n + 1
        for n, job in jobs:  # the packed buffer is reused by the next chunk: wait for every write
            self._finish(n, job.result)

    def _finish(self, n, write, *args):
        """Run one file's write (or wait for it); a failure names the image and its file."""
        try:
            write(*args)
        except OSError as exc:
            exc.add_note(f"while writing image {n + 1} of {self.image_count} ({self.paths[n]})")
            raise

    def _slice_values(self, n, packed, i):
        frame, z = divmod(n, self.slice_count)
        values = {
            "SOPInstanceUID": new_uid(self.seed, self.series_uid, n),
            "InstanceNumber": n + 1,
            "ImageIndex": n + 1,  # PET: (time slice - 1) x NumberOfSlices + slice
            "ImagePositionPatient": self._positions[z].tolist(),
            "SliceLocation": float(self._locations[z]),
            "PixelRepresentation": int(packed.signed[i]),
            "SmallestImagePixelValue": int(packed.smallest[i]),
            "LargestImagePixelValue": int(packed.largest[i]),
            "RescaleSlope": float(packed.slopes[i]),
            "RescaleIntercept": float(packed.intercepts[i]),
            **self._frame_values[frame],
        }
        return values

    def _file_pieces(self, n, packed, i):
        values = self._slice_values(n, packed, i)
        header = b"".join(
            [file_meta(self.shared["SOPClassUID"], values["SOPInstanceUID"]), *self.template.render(values)]
        )
        return [header, self._pixel_header, packed.stored[i]]

    def _dataset_for(self, n, packed, i):
        """The whole dataset of one slice, for validation."""
        per_slice = {k: v for k, v in self._slice_values(n, packed, i).items() if k in self.slice_keywords}
        dataset = {**self.shared, **per_slice, "PixelData": packed.stored[i]}
        return {k: v for k, v in dataset.items() if v is not ABSENT}

    # -- ending ----------------------------------------------------------------

    def close(self):
        """Commit the series to out_dir; it is an error if slices are missing."""
        self._shutdown()
        if self.folder.committed:
            return self.paths
        if self.written != self.image_count:
            self.folder.abort()
            raise VolumeError(f"the series ended after {self.written} of {self.image_count} images; its files were removed")
        self.folder.commit()
        if self._projections is not None:
            draw_preview(self.out_dir, self._projections, self.geometry, self.modality)
        return self.paths

    def _shutdown(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._shutdown()
            self.folder.abort()
        return False


class Packed(NamedTuple):
    """One chunk's pixels as stored, and the per-slice values that go with them."""

    stored: np.ndarray  # uint16 bit patterns [n, rows, columns]
    slopes: np.ndarray
    intercepts: np.ndarray
    signed: np.ndarray
    smallest: np.ndarray
    largest: np.ndarray


# -- what write_series, SeriesWriter and the multi-frame writer share ----------------


def geometry_from(spacing, origin, orientation, affine, affine_convention):
    """The volume's Geometry from an affine, or else from spacing, origin and orientation."""
    if affine is not None:
        return geometry.from_affine(affine, affine_convention)
    if spacing is not None:
        return geometry.from_spacing(spacing, origin, orientation)
    raise DcmforgeError("give either spacing (with origin and orientation) or an affine")


def projections_for(shape):
    """The accumulator of a preview's projections (imported only when a preview is asked for)."""
    from ..preview import ProjectionAccumulator

    return ProjectionAccumulator(shape)


def draw_preview(out_dir, projections, geometry, modality):
    """The picture of a committed series, beside its folder."""
    from ..preview import write_preview

    return write_preview(out_dir, projections, geometry.affine, modality)


def user_metadata(metadata, modality, frame_count, study=None):
    """(DICOM values from the metadata and the study, frame timings, half-life or None)."""
    if metadata is None:
        metadata = {}
    elif isinstance(metadata, (str, os.PathLike)):
        metadata = metadata_files.read_metadata(metadata)
    resolved, notes = metadata_files.resolve_metadata(with_study(dict(metadata), study), modality)
    for note in notes:
        log.warning("%s", note)
    frames = timing.frame_timings(frame_count, resolved.pop("frame_start", None), resolved.pop("frame_duration", None))
    half_life = None
    for item in resolved.get("RadiopharmaceuticalInformationSequence") or []:
        if item.get("RadionuclideHalfLife") not in (None, ""):
            half_life = float(item["RadionuclideHalfLife"])
            break
    return resolved, frames, half_life


def settle_decay_correction(shared, user, modality, half_life):
    """Without a half-life no DecayFactor can be computed: unless the user said
    DecayCorrection, write NONE (and no DECY) rather than a made-up factor."""
    if modality != "PT" or half_life is not None or "DecayCorrection" in user:
        return
    if str(shared.get("DecayCorrection", "NONE")).strip() != "NONE":
        log.warning("no isotope or half-life in the metadata: DecayCorrection set to NONE")
        shared["DecayCorrection"] = "NONE"
        if "CorrectedImage" not in user:
            shared["CorrectedImage"] = [c for c in values_of(shared.get("CorrectedImage")) if c != "DECY"]


def reference_datetime(user, now):
    """The series reference time: acquisition start, from metadata or, failing that, the clock."""
    for date_key, time_key in (("SeriesDate", "SeriesTime"), ("StudyDate", "StudyTime")):
        if user.get(date_key) and user.get(time_key):
            return timing.parse_dicom_datetime(user[date_key], user[time_key])
    log.warning("no acquisition start in the metadata: study and series times set to the write time")
    return now.replace(microsecond=0)


def uid_and_clock_values(description, series_name, user, seed, reference, now):
    """The description's UIDs (the user's or new ones) and dates and times (the user's, else the clock's).

    ``series_name`` tells series of one seed apart ("PT", "CT", ...).
    """
    values = {}
    for keyword in iods.keywords_from(description, "uid"):
        # One seed may serve a PET and a CT of one study: they share the study and
        # frame of reference, but each series (and so each instance) is its own.
        names = (keyword, series_name) if keyword == "SeriesInstanceUID" else (keyword,)
        values[keyword] = user.get(keyword) or new_uid(seed, *names)
    # Study, series and content times default to the acquisition start; creation is now.
    for keyword in iods.keywords_from(description, "clock"):
        moment = now if keyword.startswith("InstanceCreation") else reference
        default = moment.strftime("%Y%m%d") if keyword.endswith("Date") else timing.dicom_time(moment)
        values[keyword] = user.get(keyword) or default
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


def check_shape(shape, modality):
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise VolumeError(f"a volume is [z, y, x] or [t, z, y, x] with no empty axis, got shape {shape}")
    if len(shape) == 4 and modality != "PT":
        raise VolumeError(f"only PET series can be dynamic ([t, z, y, x]); got shape {shape} for {modality}")
    if max(shape[-2:]) > 0xFFFF:
        raise VolumeError(f"rows and columns must be at most 65535, got {shape[-2:]}")
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
