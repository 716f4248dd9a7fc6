"""The ``dcmforge`` command: convert, demo, template, check.

Exit status: 0 when every input converted, 2 when an input was bad (a
header, a metadata file, a value: our own errors), 1 for anything else (a
disk full, a bug). One bad input does not stop the others.
"""

import argparse
import logging
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .errors import DcmforgeError

log = logging.getLogger("dcmforge")

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def convert_one(header, out_dir, options):
    """Convert one Interfile header into a series in out_dir; the unit of work of ``convert``.

    A plain, picklable function of plain arguments, so any executor can run
    it. Returns (status, message): status 0 for success, else an exit code.
    """
    from . import interfile, metadata as metadata_files
    from .series import write_series

    try:
        image = interfile.read_interfile(
            header,
            dialect=options.get("dialect"),
            patient_position=options.get("patient_position"),
            first_voxel=options.get("first_voxel"),
            flip=options.get("flip") or (),
        )
        meta = dict(image.metadata)
        if options.get("meta"):
            meta.update(metadata_files.read_metadata(options["meta"]))
        modality = options.get("modality") or _modality(meta.get("modality"))
        meta.pop("modality", None)
        paths = write_series(
            image.volume,
            out_dir,
            affine=image.affine,
            affine_convention="LPS",
            modality=modality,
            metadata=meta,
            seed=options.get("seed"),
            overwrite=options.get("overwrite", False),
        )
    except DcmforgeError as exc:
        return EXIT_BAD_INPUT, f"{header}: {exc}"
    except Exception as exc:  # keep converting the other inputs; report this one
        return EXIT_FAILURE, f"{header}: {type(exc).__name__}: {exc}"
    notes = "".join(f"\n  warning: {w}" for w in image.warnings)
    shape = "x".join(str(n) for n in reversed(image.volume.shape))
    spacing = "x".join(f"{s:g}" for s in image.spacing)
    return 0, (
        f"{header} -> {out_dir}: {len(paths)} {modality} files, {shape} voxels of {spacing} mm; "
        f"{image.convention}{notes}"
    )


def _modality(hint):
    return hint if hint in ("PT", "CT") else "PT"


def _output_dirs(headers, out_root):
    """One folder per input, named after the header; repeated names get a number."""
    seen = {}
    dirs = []
    for header in headers:
        stem = Path(header).stem
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        dirs.append(out_root / (stem if count == 0 else f"{stem}-{count + 1}"))
    return dirs


def _progress(done, total, stream=sys.stderr):
    if stream.isatty():
        width = 30
        filled = width * done // total
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        stream.write("\n" if done == total else "")
        stream.flush()


def cmd_convert(args):
    options = {
        "meta": args.meta,
        "modality": args.modality,
        "dialect": args.dialect,
        "patient_position": args.patient_position,
        "first_voxel": args.first_voxel,
        "flip": tuple(args.flip or ""),
        "seed": args.seed,
        "overwrite": args.overwrite,
    }
    out_root = Path(args.out)
    jobs = list(zip(args.headers, _output_dirs(args.headers, out_root)))
    worst = 0
    if args.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = pool.map(convert_one, *zip(*jobs), [options] * len(jobs))
            worst = _report(results, len(jobs))
    else:
        worst = _report((convert_one(h, d, options) for h, d in jobs), len(jobs))
    return worst


def _report(results, total):
    worst = 0
    for done, (status, message) in enumerate(results, 1):
        _progress(done, total)
        print(message, file=sys.stdout if status == 0 else sys.stderr, flush=True)
        worst = max(worst, status)
    return worst


def cmd_demo(args):
    from .demo import run_demo

    return run_demo(Path(args.dir))


def cmd_template(args):
    from .metadata import template_text

    sys.stdout.write(template_text(args.modality.upper().replace("PET", "PT")))
    return 0


def cmd_check(args):
    from .metadata import check_metadata, read_metadata

    try:
        problems = check_metadata(read_metadata(args.meta), args.modality)
    except DcmforgeError as exc:
        print(f"{args.meta}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for problem in problems:
        print(f"{args.meta}: {problem}")
    errors = [p for p in problems if getattr(p, "level", "error") == "error"]
    if not problems:
        print(f"{args.meta}: no problems for modality {args.modality}")
    return EXIT_BAD_INPUT if errors else 0


def build_parser():
    parser = argparse.ArgumentParser(prog="dcmforge", description="Write PET and CT volumes as DICOM.")
    parser.add_argument("--version", action="version", version=f"dcmforge {_version()}")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert Interfile images to DICOM series")
    convert.add_argument("headers", nargs="+", metavar="HEADER", help="Interfile headers (.hv, .hdr, .h33, ...)")
    convert.add_argument("--out", required=True, help="folder for the series (one sub-folder per input)")
    convert.add_argument("--meta", help="metadata file (TOML or JSON, also the old J-PET JSON)")
    convert.add_argument("--modality", choices=("PT", "CT"), help="default: from the header, else PT")
    convert.add_argument("--jobs", type=int, default=1, help="inputs converted in parallel (processes)")
    convert.add_argument("--dialect", choices=("stir", "castor", "gate", "siemens", "interfile33"))
    convert.add_argument("--patient-position", choices=("HFS", "HFP", "FFS", "FFP"))
    convert.add_argument("--first-voxel", type=float, nargs=3, metavar=("X", "Y", "Z"), help="LPS mm of voxel [0,0,0]")
    convert.add_argument("--flip", help="index axes to reverse, any of x, y, z (e.g. --flip yz)")
    convert.add_argument("--seed", help="make UIDs reproducible from this seed")
    convert.add_argument("--overwrite", action="store_true", help="replace files of an earlier run")
    convert.set_defaults(run=cmd_convert)

    demo = commands.add_parser("demo", help="write a small Interfile phantom and convert it")
    demo.add_argument("dir", help="folder to write into")
    demo.set_defaults(run=cmd_demo)

    template = commands.add_parser("template", help="print a commented starter metadata file")
    template.add_argument("modality", choices=("pet", "ct", "PT", "CT"))
    template.set_defaults(run=cmd_template)

    check = commands.add_parser("check", help="validate a metadata file alone")
    check.add_argument("meta")
    check.add_argument("--modality", choices=("PT", "CT"), default="PT")
    check.set_defaults(run=cmd_check)
    return parser


def _version():
    from . import __version__

    return __version__


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="dcmforge: %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
