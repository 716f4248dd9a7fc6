"""The library's unit of conversion: one input file -> one committed series.

``convert_one`` is a plain, picklable function of plain arguments that never
raises for a bad input: it returns a ``ConversionResult``. The command line,
the demo and any executor call it (many inputs at once: ``batch.convert_many``).
"""

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from .errors import DcmforgeError, InterfileError, MetadataError
from .paths import path_argument, shown

CONVERTED = "converted"
SKIPPED = "skipped"  # already converted whole by an earlier run (batch.convert_many with resume)
BAD_INPUT = "bad input"
FAILED = "failed"
UNRECORDED = "unrecorded"  # committed whole, but its record could not join the batch manifest

# The command's exit status for each outcome.
EXIT_STATUS = {CONVERTED: 0, SKIPPED: 0, BAD_INPUT: 2, FAILED: 1, UNRECORDED: 1}

# The options convert_one understands, with their defaults.
OPTIONS = {
    "meta": None,
    "modality": None,
    "dialect": None,
    "patient_position": None,
    "first_voxel": None,
    "spacing": None,
    "flip": (),
    "seed": None,
    "overwrite": False,
    "multiframe": False,
    "split_frames": False,
    "scaling": None,
    "study": None,
    "preview": False,
    "durable": False,
    "allow_data_outside": False,
}

# Metadata keys that say when the acquisition happened.
_TIME_KEYS = ("StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "acquisition_datetime")
_FRAME_KEYS = ("frame_start", "frame_duration")
# Metadata keys that say one fact each way (friendly, DICOM): the file's replace the header's.
_STATEMENT_KEYS = (("units", "Units"), ("corrections", "CorrectedImage", "DecayCorrection"))

_SERIES_INSTANCE_UID = 0x0020000E

log = logging.getLogger("dcmforge")


class ConversionResult(NamedTuple):
    """What became of one input: its status, where its series is, and one line to tell a person.

    Plain values only, so a result pickles across processes and hosts and
    becomes one JSON line of a batch report.
    """

    input: str
    out_dir: str
    status: str  # CONVERTED, SKIPPED, BAD_INPUT, FAILED or UNRECORDED
    message: str
    files: int = 0
    nbytes: int = 0  # of the series' files
    series_uid: str = ""
    warnings: tuple = ()  # every assumption the reader and the writer reported, one text each
    seconds: float = 0.0
    host: str = ""  # where it ran
    pid: int = 0

    @property
    def exit_status(self):
        return EXIT_STATUS[self.status]


# The signals that stop a conversion, its temporary folder removed: Ctrl-C, a scheduler's stop, a closed
# terminal, and the others whose default is to end the process (which would leave its private folder).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                signal.SIGALRM)  # fmt: skip


class Terminated(KeyboardInterrupt):
    """A stop signal other than SIGINT: stops the command as an interrupt does, told apart in its message
    and exit status (``signum``)."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


def interrupt_once(signum, frame):
    """A stop signal: raise once, then ignore them all, so that the cleanup it starts is not cut short.

    The command's handler, and its pool workers' while they convert.
    """
    ignore_stop_signals()
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


def ignore_stop_signals():
    for number in STOP_SIGNALS:
        signal.signal(number, _ignore)


def _ignore(signum, frame):
    """Ignore a signal. A Python handler, not SIG_IGN: Python raises "Signal N ignored due to race
    condition" for a signal that arrived before its handler became SIG_IGN (a second signal, or the
    parent's SIGINT on top of a scheduler's SIGTERM), in the middle of the cleanup."""


def convert_one(
    header: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: Mapping[str, Any],
    before_commit: Callable[[Path], object] | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> ConversionResult:
    """Convert one input image (Interfile header, NIfTI, MetaImage) into a series in out_dir.

    ``options`` is a plain dict of the keys of OPTIONS. Our own errors are a
    bad input; anything else a failure; neither is raised. The result says
    where it ran and how long it took. ``before_commit``: the writer's hook
    (``WriteOptions``), called with the written folder just before its rename;
    ``progress``: the writer's (images written, images of the series).
    The result's message is its line for a person; its warnings are apart
    (``warning_lines``).
    """
    started = time.perf_counter()
    where = {"host": os.uname().nodename, "pid": os.getpid()}
    with _logged_warnings(header) as logged:
        result = _convert(header, out_dir, options, before_commit, progress)
    warnings = (*result.pop("warnings", ()), *logged)
    return ConversionResult(**result, warnings=warnings, seconds=time.perf_counter() - started, **where)


def _convert(header, out_dir, options, before_commit, progress):
    """convert_one's work: the result's fields but for the time and place."""
    from .write.series import write_series
    from .write.study import STUDY_KEYWORDS

    try:
        _check_arguments(header, out_dir, options)
        study = options.get("study")
        image, meta, modality = _read(header, options)
        if study is not None:  # one study for every input: the inputs' own study values yield to it
            meta = {key: value for key, value in meta.items() if key not in STUDY_KEYWORDS}
        seed = options.get("seed")
        paths = write_series(
            image.volume,
            out_dir,
            affine=image.affine,
            affine_convention="LPS",
            axes="zyx",
            modality=modality,
            metadata=meta,
            # Inputs of one command are different series: the folder name keeps their UIDs apart.
            seed=None if seed is None else f"{seed}/{Path(out_dir).name}",
            overwrite=options.get("overwrite", False),
            multiframe=options.get("multiframe", False),
            split_frames=options.get("split_frames", False),
            scaling=options.get("scaling"),
            study=study,
            preview=options.get("preview", False),
            durable=options.get("durable", False),
            before_commit=before_commit,
            progress=progress,
        )
        uid = series_uid(paths[0])
        nbytes = sum(os.stat(path).st_size for path in paths)
    except DcmforgeError as exc:
        return _fields(header, out_dir, BAD_INPUT, _naming(header, exc))
    except Exception as exc:  # keep converting the other inputs; report this one
        return _fields(header, out_dir, FAILED, _naming(header, described(exc)))
    notes = ""
    if options.get("preview"):
        from .preview import preview_path

        notes = f"\n  preview: {shown(preview_path(out_dir))}"
    shape = "x".join(str(n) for n in reversed(image.volume.shape))
    spacing = "x".join(f"{s:g}" for s in image.spacing)
    written = (
        "1 NM file" if paths[0].name.startswith("NM_")
        else "1 Enhanced PET file" if options.get("multiframe") else f"{len(paths)} {modality} files"
    )  # fmt: skip
    if options.get("split_frames") and image.volume.ndim == 4:
        written += f" in {image.volume.shape[0]} series, one per time frame"
    read = _data_file_named(image)
    message = f"{shown(f'{header}{read} -> {out_dir}')}: {written}, {shape} voxels of {spacing} mm; {image.convention}{notes}"
    return _fields(header, out_dir, CONVERTED, message, files=len(paths), nbytes=nbytes, series_uid=uid,
                   warnings=tuple(image.warnings))  # fmt: skip


def _check_arguments(header, out_dir, options):
    """A DcmforgeError naming the argument of the wrong type (a bad input, not a crash)."""
    path_argument(header, "header", InterfileError)
    path_argument(out_dir, "out_dir", DcmforgeError)
    if not isinstance(options, Mapping):
        raise DcmforgeError(f"options must be a mapping (a dict of option -> value), not {type(options).__name__}")


def series_uid(path):
    """The SeriesInstanceUID of a file dcmforge wrote ("" if it has none)."""
    from .dicom.part10 import read_text_element

    return read_text_element(path, _SERIES_INSTANCE_UID) or ""


def _data_file_named(image):
    """" (data file PATH)" when the voxels came from a file outside the header's folder, else ""."""
    header_folder = Path(image.header_path).resolve().parent
    if Path(image.data_path).resolve().parent == header_folder:
        return ""
    return f" (data file {image.data_path})"


def _fields(header, out_dir, status, message, **more):
    return {"input": str(header), "out_dir": str(out_dir), "status": status, "message": message, **more}


def warning_lines(result):
    """Each of a result's warnings as one line naming its input, for stderr."""
    return [shown(f"{result.input}: warning: {text}") for text in result.warnings]


# The attribute that _logged_warnings gives the records it keeps: the input they are about.
INPUT_ATTRIBUTE = "dcmforge_input"


@contextmanager
def _logged_warnings(header):
    """The texts of the warnings this thread logs to "dcmforge" in the block (a list that fills).

    They still go wherever logging sends them, each record marked with the
    input (``INPUT_ATTRIBUTE``); only this thread's are kept, so conversions
    on the threads of one Dask worker keep their own.
    """
    thread = threading.get_ident()
    texts = []

    def mark(record):
        if record.thread == thread:
            setattr(record, INPUT_ATTRIBUTE, str(header))
        return True

    handler = logging.Handler(logging.WARNING)
    handler.addFilter(lambda record: record.thread == thread)
    handler.emit = lambda record: texts.append(record.getMessage())
    logger = logging.getLogger("dcmforge")
    logger.addFilter(mark)
    logger.addHandler(handler)
    try:
        yield texts
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(mark)


def _read(header, options):
    """(the input image, its metadata with the metadata file's over it, the modality).

    ``header`` None: no image (None), the metadata file's alone (``refusal``).
    """
    from . import metadata as metadata_files
    from .image import INTERFILE
    from .readers.choose import read_image

    meta_path = options.get("meta")
    image = None
    if header is not None:
        image = read_image(
            header,
            dialect=options.get("dialect"),
            patient_position=options.get("patient_position"),
            first_voxel=options.get("first_voxel"),
            spacing=options.get("spacing"),
            flip=options.get("flip") or (),  # read_interfile names a flip that is no set of axes
            allow_data_outside=options.get("allow_data_outside") or None,  # None: not given, so NIfTI takes it
        )
    meta = {} if image is None else dict(image.metadata)
    user = metadata_files.read_metadata(meta_path) if meta_path else {}
    modality, assumed = options.get("modality"), None
    if not modality:  # the user's metadata file over the header: its modality, else its isotope, decides
        modality, assumed = metadata_files.modality_of({**meta, **user}, header if header is not None else meta_path)
    if assumed:
        log.warning("%s", assumed)
    if meta_path:
        _check_alone(user, modality, meta_path)
        if any(key in user for key in _TIME_KEYS):
            # The file's times replace the header's as a whole: a study date the reader
            # took from the data file's modification time must not outlive them, nor its warning.
            for key in ("StudyDate", "StudyTime", "TimezoneOffsetFromUTC"):
                meta.pop(key, None)
            if image is not None and image.format == INTERFILE:  # the one reader that guesses a study date
                from .readers.interfile.metadata import STUDY_TIME_GUESSED

                image.warnings[:] = [text for text in image.warnings if STUDY_TIME_GUESSED not in text]
        for keys in (_FRAME_KEYS, *_STATEMENT_KEYS):
            # Frame times the reader derived (NIfTI's pixdim[4]), the units and the corrections
            # the header states, give way to the file's as a whole.
            if any(key in user for key in keys):
                for key in keys:
                    meta.pop(key, None)
        meta.update(user)
    meta.pop("modality", None)
    return image, meta, modality


def refusal(header, options):
    """What convert_one would refuse for this input, its metadata file and options: (its one-line message
    or None, the warnings said on the way).

    The same reading and metadata merge as convert_one, then the same writer on a stand-in of the
    volume (zeros, one slice of each time frame) in a folder that is thrown away: whatever the image
    description, the timing, the decay correction or the encoder refuses is refused here too, and no
    voxel of the input is read. ``header`` None: the metadata file (``options["meta"]``) alone, as for
    an input whose header says nothing. ``dcmforge check`` prints it.
    """
    import tempfile

    import numpy as np

    from .write.series import write_series

    named = header if header is not None else options.get("meta")
    with _logged_warnings(named) as logged:
        try:
            image, meta, modality = _read(header, options)
            if image is None:
                frames = max(len(_listed(meta.get(key))) for key in _FRAME_KEYS)
                shape, affine = ((frames, 1, 1, 1) if frames > 1 else (1, 1, 1)), np.eye(4)
            else:
                shape, affine = (*image.volume.shape[:-3], 1, *image.volume.shape[-2:]), image.affine
                logged[:0] = image.warnings
            with tempfile.TemporaryDirectory(prefix="dcmforge-check-") as folder:
                write_series(
                    np.zeros(shape, np.float32),
                    Path(folder) / "series",
                    affine=affine,
                    affine_convention="LPS",
                    axes="zyx",  # the stand-in is [t,] z, y, x, as every reader's volume
                    modality=modality,
                    metadata=meta,
                    multiframe=options.get("multiframe", False),
                    scaling=options.get("scaling"),
                    study=options.get("study"),
                )
        except DcmforgeError as exc:
            return _naming(named, exc), logged
    return None, logged


def _listed(value):
    return value if isinstance(value, (list, tuple)) else [] if value is None else [value]


def one_study(header, options):
    """The study that every input of ``convert --one-study`` joins: the first input's (``header``).

    Its time and any study values the first input's metadata gives; new UIDs
    (from the seed, when there is one) for the rest. DcmforgeError for a bad input.
    """
    from .metadata import resolve_metadata
    from .timing import parse_dicom_datetime
    from .write.study import STUDY_KEYWORDS, new_study

    _, meta, modality = _read(header, options)
    resolved, _ = resolve_metadata(meta, modality)  # its notes are told when the input is converted
    date, time = resolved.get("StudyDate"), resolved.get("StudyTime")
    seed = options.get("seed")
    study = new_study(
        seed=None if seed is None else f"{seed}/study", when=parse_dicom_datetime(date, time) if date and time else None
    )
    study.update((key, resolved[key]) for key in STUDY_KEYWORDS if resolved.get(key) not in (None, ""))
    return study


def _check_alone(user, modality, meta_path):
    """Resolve the user's metadata file on its own first, so that its errors name that file."""
    from .metadata import resolve_metadata

    try:
        resolve_metadata(user, modality)
    except MetadataError as exc:
        raise MetadataError(f"{meta_path}: {exc}") from None


def _naming(header, error):
    """One line naming the input, unless the error already does; safe to print (paths.shown)."""
    text = str(error)
    return shown(text if text.startswith(str(header)) else f"{header}: {text}")


def described(exc):
    """An unexpected exception in one line: its type, its text, and its notes (the slice being written)."""
    return ", ".join((f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", ())))
