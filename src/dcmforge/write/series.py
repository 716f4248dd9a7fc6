"""Volumes to image series: one DICOM file per slice, written as fast as files can be.

Data flows one way: the series' plan (plan.py) -> its shared dataset
(validated against its image description, encoded once) -> a few slices at a
time: their extrema, scaling and packing while they are in the cache, and
per file the few per-slice elements spliced into the shared bytes by
dedicated encoders -> files in a private folder (commit.py), renamed to
out_dir when the series is whole. A NaN found late, or any other failure,
removes the private folder: the series is still whole or absent.
"""

import datetime
import functools
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import iods, pixels, timing
from ..dicom.encode import (
    ABSENT,
    HeaderTemplate,
    ds_element,
    element_header,
    encode_element,
    is_element,
    ss_element,
    ui_element,
    us_element,
    with_character_set,
)
from ..dicom.part10 import file_meta
from ..dicom.tags import lookup
from ..dicom.uids import new_uids
from ..dicom.vr import format_ds
from ..dicom.values import dicom_date, dicom_time
from ..errors import DcmforgeError, VolumeError
from ..iods import validate
from ..paths import path_argument
from .axes import XYZ, ZYX, check_axes, volume_in_zyx
from .commit import SeriesFolder, abort_on_interrupt, refuse_existing
from .plan import (
    chunk_extrema,
    chunks,
    draw_preview,
    folder_options,
    options_from,
    pet_window,
    plan_series,
    projections_for,
    release_pages,
    set_derived,
    software_versions,
    takes_write_options,
    uid_and_clock_values,
    volume_extrema,
)

# Slices that write_series reads, scales, packs and writes together: about 8 MB of float32, in the
# shared cache (32 MB here) when they are packed after their extrema. Each window costs about 0.2 ms
# of planning and calls: with 2 MB windows (a core's L2) W1 took 7 % longer (README Performance).
# The numba kernels run one thread on them (starting the others costs more than they save).
WINDOW_VOXELS = 1 << 21
# Slices of this many voxels or more (total-body 440x440) go LARGE_WINDOW_VOXELS at a time, on
# which the numba kernels run in parallel (pixels.PARALLEL_MIN_VOXELS): W2 took 0.68x the floor
# so against 1.10x one slice after another on an idle machine (README Performance).
LARGE_SLICE_VOXELS = 1 << 17
LARGE_WINDOW_VOXELS = 1 << 22

# The default display window when the metadata gives none. CT: the soft-tissue window, W400/L40 HU.
# PET: plan.pet_window, known only once every image is written: each file gets a fixed-width
# placeholder that close() overwrites in place.
CT_WINDOW = {"WindowCenter": 40, "WindowWidth": 400}
WINDOW_KEYWORDS = ("WindowCenter", "WindowWidth")
# A DS of exactly 16 characters (and a valid width): every file's window starts as this one.
_WINDOW_PLACEHOLDER = 1.00000000000001
# close() writes the window through the descriptors the writes left open, one open() per file less
# (README Performance): at most an eighth of the process's descriptors at a time, however many
# writers run in its threads; beyond, a file is opened again (always, where the limit is unknown: -1).
_KEPT_DESCRIPTORS = threading.BoundedSemaphore(max(0, min(4096, os.sysconf("SC_OPEN_MAX") // 8)))


@takes_write_options
def write_series(
    volume: np.ndarray, out_dir: str | os.PathLike, *, multiframe: bool = False, split_frames: bool = False, **options
) -> list[Path]:
    """Write ``volume`` ([z, y, x], or [t, z, y, x] for dynamic PET) as a DICOM series in ``out_dir``.

    ``volume`` may be a nibabel image: its array [i, j, k] ([i, j, k, t]) and
    its affine (RAS+) are used as nibabel defines them. An array given with
    ``affine`` must name its axis order: ``axes="xyz"`` (nibabel's, e.g.
    ``img.get_fdata()``) or ``axes="zyx"`` (see ``dcmforge.write.axes``).

    The options (geometry, metadata, seed, overwrite, backend, durable,
    scaling, study, preview) are ``dcmforge.write.plan.WriteOptions``. Returns
    the written paths in slice order.

    ``out_dir`` is the series folder: it appears whole when every file is
    written, or not at all (see ``dcmforge.write.commit``). An existing one is
    refused (OutputExistsError, before any voxel is read) unless ``overwrite``,
    which replaces it as a whole once the new series is complete.

    ``modality="NM"`` writes one NM Image file (see ``dcmforge.write.nm``).
    ``multiframe=True`` writes one Enhanced PET Image file instead, every slice
    (of every time frame) one frame of it: see ``dcmforge.write.multiframe``;
    its rescale is the volume's one, or each slice's own with ``scaling="slice"``.
    A series of single-frame files always has each file's own.

    ``split_frames=True`` writes a dynamic volume as one series per time
    frame, ``out_dir``/frame_NN, for GDCM/ITK-based readers that take a
    series for one 3-D stack (``dcmforge.write.frames``); a static volume is
    written as without it.
    """
    out_dir = path_argument(out_dir, "out_dir", DcmforgeError)
    volume, options = volume_in_zyx(volume, options)
    if _writes_nm(options.get("modality")):
        # An NM image is one multi-frame file, whatever multiframe says (write/nm.py).
        from .nm import write_nm

        return write_nm(volume, out_dir, **options)
    if split_frames and volume.ndim == 4:
        if multiframe:
            raise DcmforgeError("split_frames writes a series of single-frame files per time frame; multiframe=True one file")
        # Imported here: only split_frames needs it.
        from .frames import write_frames

        return write_frames(volume, out_dir, options, write_series)
    if multiframe:
        # Imported here: a series of single-frame files never needs it.
        from .multiframe import write_multiframe

        return write_multiframe(volume, out_dir, **options)
    scaling = options_from(options, "write_series").scaling
    if scaling not in (None, "slice"):
        raise DcmforgeError(f"scaling={scaling!r}: a series of single-frame files has each file's own rescale")
    with SeriesWriter(out_dir, volume.shape, **options) as writer:
        writer._write_volume(volume)
    return writer.paths


class SeriesWriter:
    """Write a series slice by slice, for loops that produce one slice or frame at a time.

    >>> with SeriesWriter(out, (nz, ny, nx), spacing=(2, 2, 2)) as series:   # doctest: +SKIP
    ...     for k in range(nz):
    ...         series.write_slice(reconstruct(k))

    The options are write_series' (``WriteOptions``); ``workers`` > 1 writes
    files from that many threads. With ``modality="NM"`` it is an
    NMSeriesWriter (write/nm.py): the slices are kept in a temporary file
    and written as one NM Image file when the block ends. Memory does not grow with the volume.
    Slices must come in order. With ``axes="xyz"`` (nibabel's order, an
    ``affine`` over (i, j, k)) ``shape`` is (ni, nj, nk) and every array given
    keeps that order: a slice is [i, j] (``data[:, :, k]``), ``write_slices``
    takes [i, j, n] and ``write_frame`` [i, j, k]. The files go into a private folder that becomes
    ``out_dir`` when the block ends with every slice written; if it raises, or
    ends early, the folder is removed: a series is either whole or absent.
    """

    @takes_write_options
    def __new__(cls, out_dir: str | os.PathLike, shape: Sequence[int], *, workers: int = 1, **options) -> "SeriesWriter":
        # An NM image is one file with one rescale: its slices wait on disk until the block ends (write/nm.py).
        if _writes_nm(options.get("modality")):
            from .nm import NMSeriesWriter

            return NMSeriesWriter(out_dir, shape, **options)
        return super().__new__(cls)

    @takes_write_options
    def __init__(self, out_dir: str | os.PathLike, shape: Sequence[int], *, workers: int = 1, **options) -> None:
        options = options_from(options, "SeriesWriter")
        out_dir = path_argument(out_dir, "out_dir", DcmforgeError)
        # nibabel's order: the shape and every array given are [i, j, k] (x, y, z); the series is [z, y, x].
        self._nibabel_order = check_axes(options.axes, options.affine) == XYZ
        if self._nibabel_order:
            shape = tuple(shape)[::-1]
            options = options._replace(axes=ZYX)
        if not isinstance(workers, int) or workers < 1:
            raise DcmforgeError(f"workers must be a whole number of at least 1, not {workers!r:.60}")
        refuse_existing(out_dir, options.overwrite)  # before anything else is done
        plan = plan_series(shape, options)
        self.plan = plan
        self.description, self.modality, self.shape, self.geometry = (
            plan.description, plan.modality, plan.shape, plan.geometry,
        )  # fmt: skip
        self.frame_count, self.slice_count, self.image_count = plan.frame_count, plan.slice_count, plan.image_count
        self.rows, self.columns = self.shape[-2:]
        # Small slices are packed one thread at a time, however many go together (WINDOW_VOXELS).
        self._parallel = None if self.rows * self.columns >= LARGE_SLICE_VOXELS else False
        self.backend = pixels.select_backend(math.prod(self.shape), options.backend)

        shared = dict(plan.values)
        set_derived(shared, plan.user, self._series_values())
        shared["SoftwareVersions"] = software_versions(plan.user.get("SoftwareVersions"))
        # The user's window wins (either of its two values); otherwise a default one (CT_WINDOW).
        given_window = any(plan.user.get(k) not in (None, "") for k in WINDOW_KEYWORDS)
        if not given_window and self.modality == "CT":
            shared.update(CT_WINDOW)
        self._window_later = not given_window and self.modality == "PT"
        self.shared, codec = with_character_set(shared)
        # What the description derives per slice is encoded per slice; PixelData goes last, raw.
        self.slice_keywords = tuple(k for k in iods.keywords_from(self.description, "slice") if k != "PixelData")
        if self._window_later:  # a placeholder per file, overwritten at close()
            self.slice_keywords += WINDOW_KEYWORDS
        per_slice = frozenset(self.slice_keywords)
        shared_only = {k: v for k, v in self.shared.items() if k not in per_slice}
        self.template = HeaderTemplate(shared_only, self.slice_keywords, codec)
        self._frame_values = [self._frame_values_for(f) for f in range(self.frame_count)]
        self._locations = self.geometry.slice_locations(self.slice_count).round(6)
        self._uids = new_uids(self.image_count, options.seed, self.shared["SeriesInstanceUID"])
        self._splice = _SliceElements(self, codec)
        self._pixel_header = element_header(0x7FE00010, "OW", self.rows * self.columns * 2)

        self.out_dir = out_dir  # a Path (path_argument)
        width = max(4, len(str(self.image_count)))
        self.names = [f"{self.modality}_{n + 1:0{width}d}.dcm" for n in range(self.image_count)]
        self.paths = [self.out_dir / name for name in self.names]
        self.written = 0
        self._validated = False
        self._stored = None  # the packed-pixel buffer, reused from chunk to chunk
        self._scratch = np.empty((self.rows, self.columns), np.float64)  # numpy packing's temporary, reused
        self._last_slope = None  # write_slices' latest RescaleSlope
        self._held = []  # write_series: all-zero images waiting for their neighbour's slope (_write_window)
        self._last_values = None  # write_series: (min, max) of the last image with values written
        self._signed = False  # PixelRepresentation 1: once one image needs it, every later one has it
        self._maxima = np.zeros(self.image_count)  # each image's largest value, for the default window
        self._kept = {}  # file name -> the descriptor its write left open (_KEPT_DESCRIPTORS), for close()
        # The first files written with the window's placeholder (close() writes the window into them):
        # all, unless the window is known before the last images are written (_window_known).
        self._placeholders = self.image_count if self._window_later else 0
        self._pool = _thread_pool(workers) if workers > 1 else None
        self._projections = projections_for(self.shape) if options.preview else None
        self._folder_options = folder_options(options)
        # Made with the first images, within the writer's block: an interrupt as the block begins leaves nothing.
        self.folder = None

    # -- the series-wide dataset ---------------------------------------------

    def _series_values(self):
        """Values derived from the volume, geometry, UIDs and clock, the same in every slice."""
        g, plan = self.geometry, self.plan
        values = {
            "SOPClassUID": self.description.sop_class_uid,
            "Modality": self.modality,
            "Rows": self.shape[-2],
            "Columns": self.shape[-1],
            "PixelSpacing": [round(v, 6) for v in g.pixel_spacing],
            "ImageOrientationPatient": g.image_orientation,
            "SliceThickness": round(g.slice_thickness, 6),
        }
        values.update(uid_and_clock_values(plan, self.modality))
        if self.modality == "PT":
            values["NumberOfSlices"] = self.slice_count
            if self.frame_count > 1:
                values["NumberOfTimeSlices"] = self.frame_count
                series_type = plan.user.get("SeriesType") or ["DYNAMIC", "IMAGE"]
                values["SeriesType"] = ["DYNAMIC", *list(series_type)[1:]]
        return values

    def _frame_values_for(self, frame):
        """Per-frame PET values: acquisition time, duration, reference time, decay factor."""
        if self.modality != "PT":
            return {}
        plan = self.plan
        frame_timing, decay_factor = plan.frames[frame], plan.decay[frame]
        start = plan.reference + datetime.timedelta(seconds=frame_timing.start)
        return {
            "AcquisitionDate": dicom_date(start),
            "AcquisitionTime": dicom_time(start),
            "FrameReferenceTime": round(1000 * timing.reference_time(frame_timing, plan.half_life), 3),
            "ActualFrameDuration": "" if frame_timing.duration is None else round(1000 * frame_timing.duration),
            "DecayFactor": ABSENT if decay_factor is None else decay_factor,
        }

    # -- writing ---------------------------------------------------------------

    def write_slice(self, image: np.ndarray) -> None:
        """Write the next slice (a 2-D [y, x] array; [i, j] with axes="xyz")."""
        image = np.asarray(image)
        self.write_slices(image[..., None] if self._nibabel_order else image[None])

    def write_frame(self, volume: np.ndarray) -> None:
        """Write the next frame (a 3-D [z, y, x] array; [i, j, k] with axes="xyz") of a dynamic series."""
        self.write_slices(volume)

    def write_slices(self, slices: np.ndarray) -> None:
        """Write the next slices (a 3-D [z, y, x] array, in order; [i, j, n] with axes="xyz").

        Each call is scaled on its own: integer slices that fit 16 bits are
        stored as they are, judged per call (write_series judges the whole volume);
        all-zero slices take the slope of a slice with values in the call, else the last one written.
        Slices are signed from the first call with negative values on; the slices
        written before it are gone and stay unsigned (write_series, which holds the
        whole volume, gives every slice of a series one PixelRepresentation).
        """
        slices = np.asarray(slices)
        if self._nibabel_order:
            slices = slices.T
        mins, maxs = pixels.slice_extrema(slices, self.written, self.backend, self._parallel)
        # All-zero slices of a call take the slope written last (see pixels._fit_16_bits).
        scaling = pixels.plan_series_scaling(
            mins, maxs, slices.dtype, self.modality, self._last_slope, self.written, self._signed
        )
        self._write_images(slices, mins, maxs, scaling)
        self._last_slope = float(scaling.slopes[-1])

    def _write_volume(self, volume):
        """write_series' pass over the whole volume: the same scaling as one plan of every slice.

        Every image has one PixelRepresentation: the first image found to need
        signed pixels after unsigned ones were written starts the series again,
        signed from its first image (a second read of the images before it, only then).
        """
        try:
            self._write_pass(volume)
        except _SignedFromTheStart:
            self._start_again()
            self._write_pass(volume)

    def _start_again(self):
        """Drop what was written and begin the series afresh, every image signed."""
        self._abort()
        self.written, self._held, self._last_values, self._signed = 0, [], None, True
        if self._placeholders < self.image_count:  # the window is known: every file carries it now
            self._placeholders = 0
        if self._projections is not None:
            self._projections = projections_for(self.shape)

    def _write_pass(self, volume):
        if volume.dtype.kind in "iu" and self.modality == "PT":
            # Integer counts are stored as they are only if every slice fits: the extrema of all first.
            mins, maxs = volume_extrema(volume, self.backend)
            self._window_known(maxs)
            scaling = pixels.plan_series_scaling(mins, maxs, volume.dtype, self.modality)
            for part, index in chunks(volume.shape):
                chunk = volume[index]
                self._write_images(chunk, mins[part], maxs[part], pixels.SliceScaling(*(v[part] for v in scaling)))
                release_pages(chunk)
            return
        large = self.rows * self.columns >= LARGE_SLICE_VOXELS
        for part, index in chunks(volume.shape, LARGE_WINDOW_VOXELS if large else WINDOW_VOXELS):
            chunk = volume[index]
            mins, maxs = chunk_extrema(chunk, part, index, self.backend, self._parallel)
            if part.stop == self.image_count:  # the last images: the images before them are written or all zero
                self._window_known(np.concatenate([self._maxima[: part.start], maxs]))
            self._write_window(chunk, mins, maxs)
            release_pages(chunk)
        self._write_window(volume[:0] if volume.ndim == 3 else volume[0, :0], np.zeros(0), np.zeros(0))

    def _window_known(self, maxima):
        """write_series' default window from every image's maximum, before the last images are written:
        they carry it at once, and close() writes it into the files before them only."""
        if self._window_later and self._placeholders == self.image_count:
            self._splice.set_window(window_parts(pet_window(maxima)))
            self._placeholders = self.written

    def _write_window(self, chunk, mins, maxs):
        """Write the chunk's images up to its last one with values; hold the all-zero ones after it.

        An all-zero PET image takes the slope of its nearest image with values
        (pixels._fit_16_bits), which may come later: held images are written
        with the next window that has values (or at the end, an empty chunk),
        planned together with the last image with values before them, so every
        slope equals the one a plan of the whole volume gives.
        """
        ending = len(chunk) == 0
        if ending and not self._held:
            return
        with_values = np.flatnonzero((mins != 0) | (maxs != 0)) if self.modality == "PT" else np.arange(len(chunk))
        if not ending and with_values.size == 0:
            self._held.append(len(chunk))
            return
        end = len(chunk) if ending else int(with_values[-1]) + 1
        held = sum(self._held)
        before = [] if self._last_values is None else [self._last_values]
        window_mins = np.concatenate([[v[0] for v in before], np.zeros(held), mins[:end]])
        window_maxs = np.concatenate([[v[1] for v in before], np.zeros(held), maxs[:end]])
        first = self.written - len(before)
        scaling = pixels.plan_series_scaling(window_mins, window_maxs, chunk.dtype, self.modality, None, first, self._signed)
        if scaling.signed.any() and not self._signed and self.written:
            raise _SignedFromTheStart  # the images written so far are unsigned
        scaling = pixels.SliceScaling(*(values[len(before) :] for values in scaling))
        step = max(1, WINDOW_VOXELS // (self.rows * self.columns))
        for k0 in range(0, held, step):  # all zeros: written in bounded pieces
            count = min(step, held - k0)
            zeros = np.zeros((count, self.rows, self.columns), chunk.dtype)
            self._write_images(zeros, np.zeros(count), np.zeros(count), _part(scaling, k0, k0 + count))
        if end:
            self._write_images(chunk[:end], mins[:end], maxs[:end], _part(scaling, held, held + end))
            self._last_values = (mins[end - 1], maxs[end - 1])
        self._held = [] if ending or end == len(chunk) else [len(chunk) - end]

    def _write_images(self, slices, mins, maxs, scaling):
        """Pack the next images and write their files."""
        count = len(slices)
        if np.ndim(slices) != 3 or np.shape(slices)[1:] != (self.rows, self.columns):
            raise VolumeError(f"expected slices of shape (n, {self.rows}, {self.columns}), got {np.shape(slices)}")
        if self.written + count > self.image_count:
            raise VolumeError(f"the series has {self.image_count} images; {self.written + count} were given")
        if self._projections is not None:
            self._projections.add_images(slices, self.written, self.slice_count)
        if self._stored is None or len(self._stored) < count:
            self._stored = np.empty((count, self.rows, self.columns), np.uint16)
        stored = pixels.pack_slices(
            slices, *scaling, self._stored[:count], self.backend, (mins, maxs), self._scratch, self._parallel
        )
        smallest, largest = pixels.stored_extrema(mins, maxs, *scaling, slices.dtype)
        self._signed = self._signed or bool(scaling.signed.any())
        self._maxima[self.written : self.written + count] = maxs
        packed = Packed(stored, *(values.tolist() for values in (*scaling, smallest, largest)))
        first = self.written
        if not self._validated:
            validate.check(self._dataset_for(first, packed, 0), self.description, self.template.encoded)
            self._validated = True
        jobs = []
        if self.folder is None:
            with abort_on_interrupt():  # also one that comes as SeriesFolder returns
                self.folder = SeriesFolder(self.out_dir, **self._folder_options)
        write = self.folder.write
        if self._placeholders > first and self.folder.durable:  # close() patches these files, and fsyncs them then
            write = functools.partial(write, sync=False)
        for i in range(count):
            n = first + i
            pieces = [self._splice.header(n, packed, i), self._pixel_header, stored[i]]
            file_write = self._write_kept if n < self._placeholders else write
            if self._pool is None:
                self._finish(n, file_write, self.names[n], pieces)
            else:
                jobs.append((n, self._pool.submit(file_write, self.names[n], pieces)))
            self.written = n + 1
        for n, job in jobs:  # the packed buffer is reused by the next chunk: wait for every write
            self._finish(n, job.result)
        if self.plan.options.progress is not None:
            self.plan.options.progress(self.written, self.image_count)

    def _write_kept(self, name, pieces):
        """Write a file whose window close() writes, keeping its descriptor open if the process can spare it."""
        if not _KEPT_DESCRIPTORS.acquire(blocking=False):
            return self.folder.write(name, pieces, sync=False)
        try:
            self._kept[name] = self.folder.write_kept(name, pieces)
        except BaseException:
            _KEPT_DESCRIPTORS.release()
            raise

    def _close_kept(self, name):
        os.close(self._kept.pop(name))
        _KEPT_DESCRIPTORS.release()

    def _finish(self, n, write, *args):
        """Run one file's write (or wait for it); a failure names the image and its file."""
        try:
            write(*args)
        except OSError as exc:
            exc.add_note(f"writing image {n + 1} of {self.image_count}: {self.paths[n]}")
            raise

    def _slice_values(self, n, packed, i):
        """Every per-slice value of image n, as the generic encoder takes them (validation, tests)."""
        frame, z = divmod(n, self.slice_count)
        return {
            "SOPInstanceUID": self._uids[n],
            "InstanceNumber": n + 1,
            "ImageIndex": n + 1,  # PET: (time slice - 1) x NumberOfSlices + slice
            "ImagePositionPatient": self.plan.positions[z].tolist(),
            "SliceLocation": float(self._locations[z]),
            "PixelRepresentation": int(packed.signed[i]),
            "SmallestImagePixelValue": int(packed.smallest[i]),
            "LargestImagePixelValue": int(packed.largest[i]),
            "RescaleSlope": float(packed.slopes[i]),
            "RescaleIntercept": float(packed.intercepts[i]),
            **self._frame_values[frame],
            **dict.fromkeys(WINDOW_KEYWORDS, _WINDOW_PLACEHOLDER),  # kept only when _window_later
        }

    def _dataset_for(self, n, packed, i):
        """The whole dataset of one slice, for validation."""
        per_slice = {k: v for k, v in self._slice_values(n, packed, i).items() if k in self.slice_keywords}
        dataset = {**self.shared, **per_slice, "PixelData": packed.stored[i]}
        return {k: v for k, v in dataset.items() if v is not ABSENT}

    # -- ending ----------------------------------------------------------------

    def close(self) -> list[Path]:
        """Commit the series to out_dir; it is an error if slices are missing."""
        self._shutdown()
        if self.folder is not None and self.folder.committed:
            return self.paths
        if self.written != self.image_count:
            self._abort()
            raise VolumeError(f"the series ended after {self.written} of {self.image_count} images; its files were removed")
        if self._placeholders:
            try:
                window = window_elements(pet_window(self._maxima))
                for n, name in enumerate(self.names[: self._placeholders]):
                    fd = self._kept.get(name)
                    self.folder.patch(name, self._splice.window_offsets[n], window, fd)
                    if fd is not None:
                        self._close_kept(name)
            except BaseException:  # Ctrl-C, a full disk: the series is absent, as for any failure
                self._abort()
                raise
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
            self._abort()
        return False

    def _abort(self):
        for name in list(self._kept):
            self._close_kept(name)
        if self.folder is not None:  # none before the first images
            self.folder.abort()
            self.folder = None


def _writes_nm(modality):
    return isinstance(modality, str) and iods.MODALITY_SPELLINGS.get(modality.strip().upper()) == "NM"


class _SignedFromTheStart(Exception):
    """write_series found an image that needs signed pixels after unsigned ones were written."""


def window_elements(window):
    """The elements WindowCenter and WindowWidth of ``window`` (center, width), each a DS of 16 characters."""
    return b"".join(window_parts(window))


def window_parts(window):
    """window_elements, one element each."""
    return [
        element_header(_tag(keyword), "DS", 16) + format_ds(value).encode("ascii").ljust(16)
        for keyword, value in zip(WINDOW_KEYWORDS, window)
    ]


def _thread_pool(workers):
    # Imported here: only workers > 1 needs it, and its import costs a short run.
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=workers)


def _part(scaling, start, stop):
    return pixels.SliceScaling(*(values[start:stop] for values in scaling))


class Packed(NamedTuple):
    """One chunk's pixels as stored, and the per-slice values that go with them, as plain numbers."""

    stored: np.ndarray  # uint16 bit patterns [n, rows, columns]
    slopes: list[float]
    intercepts: list[float]
    signed: list[bool]
    smallest: list[int]
    largest: list[int]


class _SliceElements:
    """A file's header: the meta group and the shared dataset bytes, with the per-slice elements spliced in.

    Each per-slice element has a dedicated encoder (dicom/encode.py) or is
    encoded once where it repeats: per slice position (ImagePositionPatient,
    SliceLocation) and per time frame (the frame's times and decay factor).
    The generic encoder (HeaderTemplate.render of _slice_values) gives the
    same bytes: tests/test_series.py compares them.
    """

    def __init__(self, writer, codec):
        self.slice_count = writer.slice_count
        self.uids = writer._uids
        self.sop_class = writer.shared["SOPClassUID"]
        positions = [ds_element(_IMAGE_POSITION, p) for p in writer.plan.positions.tolist()]
        locations = [ds_element(_SLICE_LOCATION, v) for v in writer._locations.tolist()]
        frames = [
            {k: b"" if v is ABSENT else encode_element(k, v, codec) for k, v in values.items()}
            for values in writer._frame_values
        ]
        # Each per-slice element: a function of (image number, slice, frame, the chunk's Packed, index in it).
        encoders = {
            "SOPInstanceUID": lambda n, z, f, p, i: ui_element(_SOP_INSTANCE_UID, self.uids[n]),
            "InstanceNumber": lambda n, z, f, p, i: is_element(_INSTANCE_NUMBER, n + 1),
            "ImageIndex": lambda n, z, f, p, i: us_element(_IMAGE_INDEX, n + 1),  # (time slice - 1) x slices + slice
            "ImagePositionPatient": lambda n, z, f, p, i: positions[z],
            "SliceLocation": lambda n, z, f, p, i: locations[z],
            "PixelRepresentation": lambda n, z, f, p, i: us_element(_PIXEL_REPRESENTATION, p.signed[i]),
            "SmallestImagePixelValue": lambda n, z, f, p, i: (ss_element if p.signed[i] else us_element)(
                _SMALLEST, p.smallest[i]
            ),
            "LargestImagePixelValue": lambda n, z, f, p, i: (ss_element if p.signed[i] else us_element)(
                _LARGEST, p.largest[i]
            ),
            "RescaleSlope": lambda n, z, f, p, i: ds_element(_RESCALE_SLOPE, p.slopes[i]),
            "RescaleIntercept": lambda n, z, f, p, i: ds_element(_RESCALE_INTERCEPT, p.intercepts[i]),
        }
        # The same in every file: spliced in once, as bytes.
        constant = {keyword: ds_element(_tag(keyword), _WINDOW_PLACEHOLDER) for keyword in WINDOW_KEYWORDS}
        for keyword in frames[0] if frames else ():
            if len(frames) == 1:
                constant[keyword] = frames[0][keyword]
            else:
                encoders[keyword] = lambda n, z, f, p, i, keyword=keyword: frames[f][keyword]
        self.parts = [b""]  # the meta group's place, the shared bytes, and None where a per-slice element goes
        self.slots = []  # (index into parts, encoder)
        self.window_part = None  # the index into parts of the window placeholder (WindowWidth's follows at once)
        for piece in writer.template.plan:
            if isinstance(piece, bytes):
                self.parts.append(piece)
                continue
            if piece.keyword == "WindowCenter":
                self.window_part = len(self.parts)
            if piece.keyword in constant:
                self.parts.append(constant[piece.keyword])
            elif piece.keyword in encoders:
                self.slots.append((len(self.parts), encoders[piece.keyword]))
                self.parts.append(None)
            else:
                raise DcmforgeError(f"{piece.keyword}: a per-slice element the series writer has no encoder for")
        self.window_offsets = [0] * writer.image_count  # each file's window placeholder's offset, for close()

    def set_window(self, elements):
        """Every later header with these window elements (window_parts) instead of the placeholder."""
        self.parts[self.window_part : self.window_part + 2] = elements

    def header(self, n, packed, i):
        """The bytes before PixelData of image n (packed.*[i] its pixel values)."""
        frame, z = divmod(n, self.slice_count)
        parts = self.parts.copy()
        for index, encoder in self.slots:
            parts[index] = encoder(n, z, frame, packed, i)
        parts[0] = file_meta(self.sop_class, self.uids[n], generated=True)
        if self.window_part is not None:
            self.window_offsets[n] = sum(map(len, parts[: self.window_part]))
        return b"".join(parts)


def _tag(keyword):
    return lookup(keyword).tag


_SOP_INSTANCE_UID = _tag("SOPInstanceUID")
_INSTANCE_NUMBER = _tag("InstanceNumber")
_IMAGE_INDEX = _tag("ImageIndex")
_IMAGE_POSITION = _tag("ImagePositionPatient")
_SLICE_LOCATION = _tag("SliceLocation")
_PIXEL_REPRESENTATION = _tag("PixelRepresentation")
_SMALLEST = _tag("SmallestImagePixelValue")
_LARGEST = _tag("LargestImagePixelValue")
_RESCALE_SLOPE = _tag("RescaleSlope")
_RESCALE_INTERCEPT = _tag("RescaleIntercept")
