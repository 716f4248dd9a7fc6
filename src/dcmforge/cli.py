"""The ``dcmforge`` command: convert, send, echo, demo, preview, template, check.

Exit status: 0 when every input converted, 2 when an input was bad (a
header, a metadata file, a value: our own errors), 1 for anything else (a
disk full, a bug). One bad input does not stop the others. Interrupted
(SIGINT, Ctrl-C): one line "interrupted", exit status 130, and no partial
series: the running conversions remove their temporary folders. Terminated
(SIGTERM, a scheduler's stop): the same, "terminated" and exit status 143;
SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM likewise, "terminated by SIGHUP"
and 128 + its number. A path is never printed raw: control characters in it
are escaped (paths.shown).
"""

import argparse
import contextlib
import gc
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .convert import (
    BAD_INPUT,
    EXIT_STATUS,
    FAILED,
    INPUT_ATTRIBUTE,
    STOP_SIGNALS,
    Terminated,
    interrupt_once,
    one_study,
    warning_lines,
)
from .errors import DcmforgeError, NoWorkerError
from .paths import shown
from .sending.cli import add_connection_options, add_echo_command, add_send_command, positive_int

log = logging.getLogger("dcmforge")

EXIT_BAD_INPUT = EXIT_STATUS[BAD_INPUT]
EXIT_INTERRUPTED = 128 + signal.SIGINT  # what a shell reports for a command that SIGINT ended
# The line a stop signal ends the command with (its exit status 128 + the signal's number).
STOP_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def cmd_convert(args):
    from .batch import convert_many

    options = {
        "meta": args.meta,
        "modality": args.modality,
        "dialect": args.dialect,
        "patient_position": args.patient_position,
        "first_voxel": args.first_voxel,
        "spacing": args.spacing,
        "flip": tuple(args.flip or ""),
        "seed": args.seed,
        "overwrite": args.overwrite,
        "multiframe": args.multiframe,
        "split_frames": args.split_frames,
        "preview": args.preview,
        "durable": args.durable,
        "allow_data_outside": args.allow_data_outside,
        "scaling": "slice" if args.per_slice_scaling else None,
    }
    if args.per_slice_scaling and not args.multiframe:
        print("--per-slice-scaling is for --multiframe (single-frame files each have their own)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.split_frames and args.multiframe:
        print("--split-frames writes a series of single-frame files per time frame, --multiframe one file: choose one",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    if args.one_study:
        try:
            options["study"] = one_study(args.headers[0], options)
        except DcmforgeError as exc:
            print(shown(f"{args.headers[0]}: {exc}"), file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.dask and args.jobs > 1:
        print("--dask and --jobs: choose one (the Dask workers are the parallelism)", file=sys.stderr)
        return EXIT_BAD_INPUT
    send_series = None
    if args.send:  # credentials are read before anything is converted
        from .sending.cli import sender_for_convert

        try:
            send_series = sender_for_convert(args)
        except DcmforgeError as exc:
            print(f"dcmforge convert: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    bar = _Progress(len(args.headers))
    try:
        with _executor(args) as executor:
            # each series goes to the archive as soon as it is committed, its report line saying how it went
            results = convert_many(
                args.headers,
                args.out,
                executor=executor,
                resume=args.resume,
                report=args.report,
                after=send_series,
                worker_wait=args.dask_wait,
                progress=bar.images if bar.shown else None,  # the images of an input converting in this process
                **options,
            )
            return _report(results, bar, args)
    except NoWorkerError as exc:  # not the input's fault
        print(f"--dask {args.dask}: {exc} (--dask-wait SECONDS to wait longer)", file=sys.stderr)
        return EXIT_STATUS[FAILED]
    except DcmforgeError as exc:  # a --dask address, --out a file, or a path the workers cannot see
        print(shown(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a scheduler that does not answer
        print(f"--dask {args.dask}: {exc}" if args.dask else exc, file=sys.stderr)
        return EXIT_STATUS[FAILED]


def _executor(args):
    """Where the inputs convert: a Dask cluster, a pool of spawned processes, or this process (None).

    Pool workers are spawned, not forked: a fork after numba's OpenMP threads
    ran in this process kills the child.
    """
    if args.dask:
        from .batch import dask_client

        return dask_client(args.dask)
    if args.jobs > 1 and len(args.headers) > 1:
        # multiprocessing is imported for --jobs only: a short run would pay for it
        from .pool import InterruptiblePool

        return InterruptiblePool(args.jobs)
    return contextlib.nullcontext()


def _report(results, bar, args):
    """Print each input's line, on stdout (a failure on stderr), and a converted input's warnings on stderr,
    each naming the input; errors only when quiet, and each series' UID, bytes and time when verbose. Under a
    progress bar on a terminal."""
    worst = 0
    for result in results:
        bar.clear()  # so that a line starts a line of its own
        status = result.exit_status
        if status or not args.quiet:
            print(result.message, file=sys.stdout if status == 0 else sys.stderr, flush=True)
        if args.verbose and not args.quiet and status == 0:
            print(f"  {result.series_uid}: {result.files} files, {result.nbytes} bytes, {result.seconds:.2f} s", flush=True)
        if status == 0 and not args.quiet:  # a failed input's line says what matters
            for line in warning_lines(result):
                print(line, file=sys.stderr, flush=True)
        bar.input_done()
        worst = max(worst, status)
    bar.end()
    return worst


class _Progress:
    """The progress bar on a terminal (stderr): inputs done and, while an input converts in this process,
    its images written, so that one large input moves the bar too."""

    WIDTH = 30

    def __init__(self, total):
        self.total = total
        self.done = 0
        self.drawn = ""
        self.shown = sys.stderr.isatty()

    def images(self, path, written, count):
        self._draw((self.done + written / count) / self.total, f" {Path(path).name}: {written}/{count} images")

    def input_done(self):
        self.done += 1
        self._draw(self.done / self.total)

    def clear(self):
        if self.drawn:
            sys.stderr.write("\r" + " " * len(self.drawn) + "\r")
            self.drawn = ""

    def end(self):
        if self.shown:
            sys.stderr.write("\n")

    def _draw(self, fraction, words=""):
        if not self.shown:
            return
        filled = int(self.WIDTH * fraction)
        text = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total}{words}"
        self.clear()
        sys.stderr.write(text)
        sys.stderr.flush()
        self.drawn = text


def cmd_demo(args):
    from .demo import run_demo

    return run_demo(Path(args.dir))


def cmd_preview(args):
    from .preview.png import write_png
    from .preview.picture import PALETTE
    from .preview.sheet import SHEET_NAME, contact_sheet

    root = Path(args.dir)
    if not root.is_dir():
        print(shown(f"{root}: not a folder"), file=sys.stderr)
        return EXIT_BAD_INPUT
    output = Path(args.output) if args.output else root / SHEET_NAME
    if output.is_dir():  # a series folder of that name, say
        print(shown(f"{output}: a folder is there; name the contact sheet with --output"), file=sys.stderr)
        return EXIT_BAD_INPUT
    picture, problems = contact_sheet(root)
    for folder, problem in problems:
        print(shown(problem if problem.startswith(str(folder)) else f"{folder}: {problem}"), file=sys.stderr)
    try:
        path = write_png(output, picture, PALETTE)
    except OSError as exc:
        print(shown(f"{output}: the contact sheet cannot be written: {exc.strerror or exc}"), file=sys.stderr)
        return EXIT_STATUS[FAILED]
    if not args.quiet:
        print(shown(f"{path}: contact sheet of the series under {root}"))
    return EXIT_BAD_INPUT if problems else 0


def cmd_template(args):
    from .metadata.template import template_text

    sys.stdout.write(template_text(args.modality.upper().replace("PET", "PT")))
    return 0


def cmd_check(args):
    """A metadata file alone (every problem of it), or an input with its --meta; then what convert would
    refuse (convert.refusal: the same code). 0 when convert would take it."""
    from .convert import refusal
    from .metadata import modality_of, read_metadata
    from .metadata.check import check_metadata

    metadata_alone = Path(args.file).suffix.lower() in _METADATA_SUFFIXES
    if metadata_alone and args.meta:
        print(f"{args.file}: a metadata file; --meta goes with an input image", file=sys.stderr)
        return EXIT_BAD_INPUT
    meta = args.file if metadata_alone else args.meta
    problems = []
    if meta:
        try:
            user = read_metadata(meta)
            problems = check_metadata(user, args.modality or modality_of(user, meta)[0])
        except DcmforgeError as exc:
            text = str(exc)  # read_metadata's errors name the file already
            print(text if text.startswith(f"{meta}: ") else f"{meta}: {text}", file=sys.stderr)
            return EXIT_BAD_INPUT
    for problem in problems:
        print(f"{meta}: {problem}")
    if any(getattr(p, "level", "error") == "error" for p in problems):
        return EXIT_BAD_INPUT
    options = {"meta": meta, "modality": args.modality, "multiframe": args.multiframe}
    refused, warnings = refusal(None if metadata_alone else args.file, options)
    if not args.quiet:
        for text in warnings:
            print(f"{args.file}: warning: {text}", file=sys.stderr)
    if refused:
        print(refused, file=sys.stderr)
        return EXIT_BAD_INPUT
    if not problems and not args.quiet:
        print(f"{args.file}: convert takes it")
    return 0


_METADATA_SUFFIXES = (".toml", ".json")


def build_parser(command=None):
    """The command line's parser; given ``command`` (see _command_in), that command's parser only."""
    parser = argparse.ArgumentParser(
        prog="dcmforge", description="Write PET and CT volumes as DICOM.", formatter_class=_CheckingFormatter
    )
    parser.add_argument("--version", action="version", version=f"dcmforge {_version()}")
    _add_verbosity(parser, quiet=False, verbose=0)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)
    for name, add_command in _COMMANDS.items():
        if command in (None, name):
            add_command(commands)
    for built in (parser, *commands.choices.values()):
        built.formatter_class = _DefaultsShown  # help and usage errors at the terminal's width
    return parser


def _command_in(argv):
    """The command ``argv`` names, or None. A run builds only its command's parser: argparse takes about
    0.1 ms an option, and a one-file convert need not build the other commands' forty."""
    word = next((word for word in argv if not word.startswith("-")), None)  # the main options take no values
    return word if word in _COMMANDS else None


def _add_convert(commands):
    convert = commands.add_parser("convert", help="convert images (Interfile, NIfTI, MetaImage) to DICOM series")
    convert.add_argument(
        "headers", nargs="+", metavar="INPUT", help="images: Interfile headers (.hv, .hdr, .h33, ...), NIfTI, MetaImage"
    )
    convert.add_argument("-o", "--out", required=True, help="folder for the series (one sub-folder per input)")
    convert.add_argument("--meta", help="metadata file (TOML or JSON, also the old J-PET JSON)")
    convert.add_argument(
        "--modality",
        choices=("PT", "NM", "CT"),
        help="default: what the header or metadata says, else the isotope's (PT for a positron emitter, NM for a "
        "single-photon one), else PT with a warning",
    )
    convert.add_argument("--jobs", type=positive_int, default=1, help="inputs converted in parallel (processes)")
    convert.add_argument(
        "--dask", metavar="ADDRESS", help="convert on a Dask cluster: tcp://host:port of its scheduler, or local[:N]"
    )
    convert.add_argument(
        "--dask-wait", metavar="SECONDS", type=float, default=60.0, help="for a worker to join the scheduler (default 60)"
    )
    convert.add_argument("--report", metavar="FILE", help="write one JSON line per input as results arrive")
    convert.add_argument(
        "--resume", action="store_true", help="skip inputs whose series --out already holds whole (its manifest)"
    )
    convert.add_argument(
        "--dialect",
        choices=("stir", "castor", "gate", "siemens", "interfile33"),
        help="Interfile dialect (default: detected from the header)",
    )
    convert.add_argument(
        "--patient-position", choices=("HFS", "HFP", "FFS", "FFP"), help="default: from the header, else HFS"
    )
    convert.add_argument("--first-voxel", type=float, nargs=3, metavar=("X", "Y", "Z"), help="LPS mm of voxel [0,0,0]")
    convert.add_argument(
        "--spacing", type=float, nargs=3, metavar=("DX", "DY", "DZ"), help="mm, for a NIfTI file without geometry"
    )
    convert.add_argument(
        "--allow-data-outside", action="store_true", help="read a data file outside its header's folder (Interfile, MetaImage)"
    )
    convert.add_argument("--flip", help="index axes to reverse, any of x, y, z (e.g. --flip yz)")
    convert.add_argument("--seed", help="make UIDs reproducible from this seed")
    convert.add_argument(
        "--overwrite", action="store_true", help="replace the series of an earlier run (a folder of DICOM files only)"
    )
    convert.add_argument(
        "--durable", action="store_true", help="fsync every file and folder of a series (for a power loss; slower)"
    )
    convert.add_argument(
        "--multiframe", action="store_true", help="write one Enhanced PET file per input instead of one file per slice"
    )
    convert.add_argument(
        "--split-frames",
        action="store_true",
        help="a dynamic PET as one series per time frame, NAME/frame_NN (GDCM/ITK read a series as one 3-D stack)",
    )
    convert.add_argument(
        "--per-slice-scaling",
        action="store_true",
        help="with --multiframe: a rescale per slice (more precise; only some readers apply it) instead of one per file",
    )
    convert.add_argument(
        "--one-study",
        action="store_true",
        help="every input's series in one study (a PET and its CT): the first input's study time, one frame of reference",
    )
    convert.add_argument(
        "--preview", action="store_true", help="draw NAME.preview.png beside each series folder NAME (see README)"
    )
    convert.add_argument(
        "--send", metavar="URL", help="send each series to this archive once written: a DICOMweb base or dicom://AE@HOST:PORT"
    )
    add_connection_options(convert)
    convert.set_defaults(run=cmd_convert)


def _add_demo(commands):
    demo = commands.add_parser("demo", help="write a small Interfile phantom and convert it")
    demo.add_argument("dir", help="folder to write into")
    demo.set_defaults(run=cmd_demo)


def _add_preview(commands):
    preview = commands.add_parser("preview", help="draw a contact sheet of every series under a folder")
    preview.add_argument("dir", help="folder of series folders (dcmforge convert's --out)")
    preview.add_argument("-o", "--output", help="the PNG to write (default: DIR/contact-sheet.png)")
    preview.set_defaults(run=cmd_preview)


def _add_template(commands):
    template = commands.add_parser("template", help="print a commented starter metadata file")
    template.add_argument("modality", choices=("pet", "nm", "ct", "PT", "NM", "CT"))
    template.set_defaults(run=cmd_template)


def _add_check(commands):
    check = commands.add_parser(
        "check", help="say whether convert takes a metadata file, or an input with its --meta, and why not"
    )
    check.add_argument("file", metavar="FILE", help="a metadata file (.toml, .json), or an input image")
    check.add_argument("--meta", help="with an input image: its metadata file, as for convert")
    check.add_argument(
        "--modality", choices=("PT", "NM", "CT"), help="as for convert (default: the file's, else by its isotope, else PT)"
    )
    check.add_argument("--multiframe", action="store_true", help="check for one Enhanced PET file, as convert --multiframe")
    check.set_defaults(run=cmd_check)


# Each command's parser, in the order --help lists them.
_COMMANDS = {
    "convert": _add_convert,
    "send": add_send_command,
    "echo": add_echo_command,
    "demo": _add_demo,
    "preview": _add_preview,
    "template": _add_template,
    "check": _add_check,
}


def _shown_record(record):
    record.msg, record.args = shown(record.getMessage()), None
    return True


class _DefaultsShown(argparse.HelpFormatter):
    """--help names each option's default, where it has one to name."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if action.option_strings and "%(default)" not in text and "default:" not in text:
            if default is not None and default is not False and default != () and default is not argparse.SUPPRESS:
                text = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return text


class _CheckingFormatter(_DefaultsShown):
    """The formatter a parser has while it is built. argparse makes one at every add_argument, only to check
    the option's metavar; a formatter without a width asks shutil for the terminal's, and shutil's imports
    cost a one-file run 2 ms. build_parser gives the parsers _DefaultsShown once they are built."""

    def __init__(self, prog):
        super().__init__(prog, width=80)


def _add_verbosity(parser, quiet, verbose):
    parser.add_argument("-q", "--quiet", action="store_true", default=quiet, help="print errors only")
    parser.add_argument(
        "-v", "--verbose", action="count", default=verbose, help="say more: each series' UID, files, bytes and seconds"
    )


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: defaults shown in --help, and -q/-v taken after the command as before it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("formatter_class", _CheckingFormatter)
        super().__init__(**kwargs)
        # SUPPRESS: not given after the command, the value given before it (or the main parser's default) stays
        _add_verbosity(self, quiet=argparse.SUPPRESS, verbose=argparse.SUPPRESS)


def _version():
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (None: the process's) and return its exit status; for a program, which
    keeps running after it (the installed command is ``command``)."""
    return _run(_parsed(argv))


def _parsed(argv):
    """The arguments of ``argv`` (None: the process's), parsed; argparse exits on a usage error."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return build_parser(_command_in(argv)).parse_args(argv)


def _run(args):
    """The command ``args`` name, its messages on stderr, stop signals answered with a line and a status."""
    logger = logging.getLogger("dcmforge")
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    handler = _stderr_handler(level)
    logger.addHandler(handler)
    earlier_level = logger.level
    if args.verbose:
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = {number: signal.signal(number, interrupt_once) for number in STOP_SIGNALS} if in_main_thread else {}
    try:
        return args.run(args)
    except KeyboardInterrupt as stop:
        number = signal.Signals(stop.signum if isinstance(stop, Terminated) else signal.SIGINT)
        word, status = STOP_WORDS.get(number, f"terminated by {number.name}"), 128 + number
        # On a terminal the line holds "^C" (after the progress bar, if drawn): start a line of our own.
        print(f"\n{word}" if sys.stderr.isatty() else word, file=sys.stderr)
        return status
    finally:
        for number, stop in previous.items():
            signal.signal(number, stop)
        logger.removeHandler(handler)
        logger.setLevel(earlier_level)


def _stderr_handler(level):
    """What the "dcmforge" logger says, on stderr; but the warnings of a conversion, which come back in its
    result and are printed naming their input."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("dcmforge: %(message)s"))
    handler.addFilter(lambda record: not hasattr(record, INPUT_ATTRIBUTE))
    handler.addFilter(_shown_record)  # a path in a warning never reaches the terminal raw
    return handler


def command() -> int:
    """The installed ``dcmforge`` command: main's work, whose exit status it returns, with Python's cyclic
    garbage collector set for a process that ends with it (README Performance):

    * a convert of one input runs with the collector off: what it makes lives about as long as the
      process (the thousands of objects of the modules it loads, a series' few), so collecting finds
      next to nothing. More inputs run with it, as a program that calls main does: a long batch's
      garbage is collected.
    * before the exit every object is frozen: Python's shutdown would otherwise traverse all those left
      (numpy's and dcmforge's modules) in its last collections, 10-25 ms of a one-file convert on the
      benchmark's machine. Only objects the process is about to drop are left uncollected.
    """
    args = _parsed(None)
    if args.command == "convert" and len(args.headers) == 1:
        gc.disable()
    status = _run(args)
    gc.freeze()
    return status


if __name__ == "__main__":
    sys.exit(command())
