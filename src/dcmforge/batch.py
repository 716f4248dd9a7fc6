"""Many inputs, one batch: ``convert_many`` on any executor, resumable, with a report.

One input is one ``ConversionTask`` (plain, picklable), run by ``run_task``:
``convert.convert_one``, whose series is recorded in the manifest inside the
output folder once it is written and before the rename that commits it. ``convert_many`` runs the tasks in
this process, on any ``concurrent.futures.Executor`` or on a
``distributed.Client`` (recognised by its methods: distributed is imported
only when one is given), yields each result as it completes, and never lets
one input's failure stop the others: an input whose process dies becomes a
FAILED result that says how the process ended.

The manifest (``MANIFEST_NAME`` in the output folder) is JSON lines, one per
series, each appended with one ``O_APPEND`` write; a reader skips a torn
line. A record names the input by its absolute path, size and modification
time plus the options that shape the output, and the series by what only
that written folder has: its files and bytes, its SeriesInstanceUID and the
folder's inode (which the rename keeps). Written before the rename, a record
may name a series that never got its name (the process was killed, or
another writer's series was there first): it vouches for the folder only
while the folder has all of these. ``resume=True`` skips an input with a
matching record that vouches for its folder; a task that Dask runs again
after its worker died past the rename adopts the folder the same way, with
this batch's record.
"""

import collections
import contextlib
import functools
import json
import logging
import os
import signal
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import __version__
from .convert import (BAD_INPUT, CONVERTED, FAILED, OPTIONS, SKIPPED, UNRECORDED, ConversionResult, convert_one,
                      series_uid)  # fmt: skip
from .dicom.part10 import read_text_element
from .dicom.uids import IMPLEMENTATION_CLASS_UID
from .errors import DcmforgeError, NoWorkerError
from .paths import NotAFileError, cut_to_bytes, not_a_file, path_argument, read_regular_file, shown

if TYPE_CHECKING:  # for an annotation only: a batch without a pool never imports concurrent.futures
    from concurrent.futures import Executor

log = logging.getLogger("dcmforge")

MANIFEST_NAME = ".dcmforge-manifest.jsonl"
# How an earlier file of each kind begins: only such a file (or an empty one) is appended to or written over.
_MANIFEST_START = b'{"'
_REPORT_START = b'{"dcmforge": '

# Options that say whether an earlier series may be replaced, how surely it reaches the disk, or whether a
# picture is drawn beside it: not what is written into the series.
_NOT_IN_IDENTITY = ("overwrite", "durable", "preview", "allow_data_outside")


class ConversionTask(NamedTuple):
    """One input of a batch: what run_task needs, in plain values."""

    input: str
    out_dir: str
    options: dict  # the keys of convert.OPTIONS
    manifest: str  # where a committed series is recorded
    batch: str  # this batch's id: a task run again after its worker died finds its own record
    existed: bool  # out_dir was there before the batch started
    unrecorded: bool = False  # out_dir holds a series no record names (--resume converts it again, over it)


def output_dirs(inputs, out_root):
    """One folder per input under out_root, named by ``series_folder_names``."""
    return [Path(out_root) / name for name in series_folder_names(inputs)]


def series_folder_names(inputs):
    """Each input's series folder name: a rule of the inputs given together, never of their order.

    An input's folder is named after its file (``folder_name``: ``sub1/osem.hv``
    -> ``osem``). Inputs whose names are the same are named by their path below
    the common parent of their folders instead, made safe the same way
    (``d1/x.hv``, ``d2/x.hv`` -> ``d1_x``, ``d2_x``). A name still shared gets
    "-" and 8 hex digits of the SHA-256 of its input's absolute path. An input
    given twice is converted twice: its second folder gets "-2", and so on.
    """
    paths = [os.path.abspath(path) for path in inputs]
    by_name = {}
    for path in dict.fromkeys(paths):
        by_name.setdefault(folder_name(path), []).append(path)
    names = {}
    for name, group in by_name.items():
        if len(group) == 1:
            names[group[0]] = name
            continue
        common = os.path.commonpath([os.path.dirname(path) for path in group])
        for path in group:
            below = os.path.relpath(os.path.dirname(path), common)
            names[path] = safe_name(f"{below}/{_stem(path)}" if below != "." else _stem(path))
    times = collections.Counter()
    folders = []
    for path in paths:
        times[path] += 1
        folders.append(names[path] if times[path] == 1 else f"{names[path]}-{times[path]}")
    taken = collections.Counter(folders)
    return [_with_path_hash(folder, path) if taken[folder] > 1 else folder for folder, path in zip(folders, paths)]


def _with_path_hash(folder, path):
    """folder-XXXXXXXX, eight hex digits of the input path's SHA-256: for a name two inputs would share."""
    import hashlib  # rare: a one-input run does not load it

    return f"{folder}-{hashlib.sha256(os.fsencode(path)).hexdigest()[:8]}"


def folder_name(path):
    """The series folder's name from the input file's: always one plain name inside the output folder."""
    return safe_name(_stem(path))


def _stem(path):
    return Path(path).stem.removesuffix(".nii")  # scan.nii.gz -> scan


def safe_name(text):
    """``text`` as one plain folder name: separators and control characters become "_" and leading dots
    and spaces go (a header named "...hv" would otherwise name "..", the parent of --out, and a leading dot
    would hide the series among temporary folders); an empty name becomes "series". Cut to 200 bytes,
    within any file system's limit, never inside a character. A name that ends as a preview picture's
    does (p1.preview.png.hv) ends in "_png", so it never takes p1's picture's place."""
    name = "".join("_" if c in "/\\" or unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    name = cut_to_bytes(name.lstrip(". "), _NAME_BYTES) or "series"
    if name.endswith(".png"):  # only then is the preview module needed (a one-input run does not load it)
        from .preview import SUFFIX

        return name[: -len(".png")] + "_png" if name.endswith(SUFFIX) else name
    return name


_NAME_BYTES = 200


def convert_many(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    executor: "Executor | None" = None,
    resume: bool = False,
    report: str | os.PathLike | None = None,
    after: Callable[[ConversionResult], ConversionResult] | None = None,
    worker_wait: float = 60.0,
    progress: Callable[[str, int, int], object] | None = None,
    **options: Any,
) -> Iterator[ConversionResult]:
    """Convert every input into its own folder under out_dir; yield a ConversionResult per input as each completes.

    ``executor``: None (one after the other in this process), any
    ``concurrent.futures.Executor``, or a ``distributed.Client`` (its workers
    must see the inputs and out_dir at the same paths: checked first, a
    DcmforgeError names what a worker cannot see; a NoWorkerError when no
    worker joins the scheduler in ``worker_wait`` seconds). ``resume``: skip the
    inputs that the manifest says are converted whole with these options,
    and convert again over a series folder that no record names (its record
    could not be written). ``report``: a file that gets one JSON line per
    result (with the dcmforge version and the options); neither it nor the
    manifest may be a file a series is read from, nor another program's file.
    ``after``: a function of each result whose return is reported and yielded
    instead (the command's --send). ``progress``: called with (input, images
    written, images of its series) as a series of single-frame files is
    written, when the inputs convert in this process (no executor).
    ``options``: the keys of ``convert.OPTIONS``.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"convert_many() got unknown options {unknown}; it knows {sorted(OPTIONS)}")
    if isinstance(inputs, (str, bytes, os.PathLike)) or not isinstance(inputs, Iterable):
        # a lone path would be taken letter by letter
        raise DcmforgeError(f"inputs must be a list of paths (one input is [path]), not {type(inputs).__name__}")
    out_dir = path_argument(out_dir, "out_dir", DcmforgeError)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DcmforgeError(f"{shown(out_dir)}: --out is a file, not a folder")
    options = {**OPTIONS, **options}
    dask = executor is not None and _is_dask_client(executor)
    inputs = [os.path.abspath(path) if dask else str(path) for path in inputs]  # remote workers have another cwd
    out_root = Path(os.path.abspath(out_dir) if dask else out_dir)
    batch = os.urandom(16).hex()  # this run's mark in the manifest (no uuid module for a short run)
    manifest = str(out_root / MANIFEST_NAME)
    sources = [*inputs, *filter(None, [options["meta"]])]
    check_ours(manifest, "the batch manifest", _MANIFEST_START, sources)
    if report:
        check_ours(report, "the report", _REPORT_START, sources)
    folders = output_dirs(inputs, out_root)
    tasks = [ConversionTask(path, str(d), options, manifest, batch, d.exists()) for path, d in zip(inputs, folders)]
    if dask:
        out_root.mkdir(parents=True, exist_ok=True)  # so that the workers can be asked whether they see it
        wait_for_a_worker(executor, worker_wait)
        check_workers_see(executor, out_root, inputs)
    finished = []
    if resume:
        records = read_manifest(manifest)
        recorded = {record.get("out_dir") for each in records.values() for record in each}
        finished = [skipped(task, records.get(identity_key(task.input), [])) for task in tasks]
        tasks = [_reconciled(task, recorded) for task, result in zip(tasks, finished) if result is None]
        finished = [result for result in finished if result is not None]
        if options["preview"]:  # drawn as each is reported, not all before the first line
            finished = map(with_preview, finished)
    if executor is None:
        running = (run_task(task, progress) for task in tasks)
    elif dask:
        running = _run_on_dask(executor, tasks)
    else:
        running = _run_on_executor(executor, tasks)
    with open(report, "w", encoding="utf-8") if report else contextlib.nullcontext() as stream:
        for results in (finished, running):
            for result in results:
                if after is not None:
                    result = after(result)
                if stream is not None:
                    stream.write(report_line(result, options) + "\n")
                    stream.flush()
                yield result


def check_ours(path, what, start, sources):
    """A DcmforgeError unless path, a file the batch writes (the manifest, the report), is absent or an
    earlier one of its kind (an empty file, or one that begins with ``start``).

    Never a file a series is read from (an input, the metadata file), an
    input's data file or anyone's file (they do not begin so), a link (the
    write would change another name too), or no regular file (a FIFO hangs).
    """
    try:
        status = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # not there (--out a file: each input says so)
        return
    except OSError as exc:
        raise DcmforgeError(f"{path}: {what} cannot be looked at: {exc.strerror or exc}") from None
    kind = "a symbolic link" if stat.S_ISLNK(status.st_mode) else not_a_file(path)
    if kind:
        raise DcmforgeError(f"{path}: {what} is {kind}, not a regular file")
    for source in sources:
        with contextlib.suppress(OSError):
            if os.path.samestat(status, os.stat(source)):
                raise DcmforgeError(f"{path}: {what} would write over {source}, which a series is read from")
    if status.st_nlink > 1:
        raise DcmforgeError(f"{path}: {what} has {status.st_nlink} names (hard links): writing would change them all")
    try:
        begins = read_regular_file(path, len(start))
    except OSError as exc:
        raise DcmforgeError(f"{path}: {what} cannot be read: {exc.strerror or exc}") from None
    if begins != start[: len(begins)]:
        raise DcmforgeError(f"{path}: {what} would write over a file that is not one (an input's data file?)")


def _reconciled(task, recorded):
    """The task, to convert again over its folder when that holds a series that no record names: a run
    whose manifest append failed (a full disk) committed it. Anything else there stays refused."""
    if os.path.abspath(task.out_dir) in recorded or not _written_by_dcmforge(task.out_dir):
        return task
    return task._replace(options={**task.options, "overwrite": True}, unrecorded=True)


def _written_by_dcmforge(folder):
    """Whether folder holds Part 10 files that name dcmforge as their writer, and nothing else."""
    try:
        with os.scandir(folder) as scan:
            entries = list(scan)
        return bool(entries) and all(
            entry.is_file(follow_symlinks=False)
            and read_text_element(entry.path, _IMPLEMENTATION_CLASS_UID) == IMPLEMENTATION_CLASS_UID
            for entry in entries
        )
    except OSError:
        return False


_IMPLEMENTATION_CLASS_UID = 0x00020012


def report_line(result, options):
    """One line of a batch report: the result, the dcmforge version and the options, as JSON."""
    return json.dumps({**result._asdict(), "dcmforge": __version__, "options": options}, sort_keys=True, default=str)


# -- one task ------------------------------------------------------------------------------------


def run_task(task, progress=None):
    """convert_one for one task, its series recorded in the manifest just before the rename that commits it.

    ``progress``: convert_many's, called with the task's input in front.
    """
    unrecorded = []

    def record(folder):  # the written folder under its temporary name
        facts = folder_facts(folder)
        try:
            if facts is None:
                raise OSError(f"{folder} cannot be read back")
            append_record(task.manifest, {**identity(task), "out_dir": os.path.abspath(task.out_dir), **facts,
                                          "batch": task.batch})  # fmt: skip
        except OSError as exc:  # the series is still committed whole; a later resume converts it again
            unrecorded.append(f"not recorded in {task.manifest}: {exc.strerror or exc}")

    written = None if progress is None else functools.partial(progress, task.input)
    result = convert_one(task.input, task.out_dir, task.options, before_commit=record, progress=written)
    if result.status == BAD_INPUT and not task.existed and os.path.isdir(task.out_dir):
        return _committed_before(task, result)
    if result.status == CONVERTED and task.unrecorded:
        result = result._replace(message=f"{result.message}\n  it replaced a series there that the manifest "
                                         "did not record")  # fmt: skip
    if result.status == CONVERTED and unrecorded:
        notes = "".join(f"\n  warning: {shown(text)}" for text in unrecorded)
        return result._replace(status=UNRECORDED, message=result.message + notes,
                               warnings=(*result.warnings, *unrecorded))  # fmt: skip
    return result


def _committed_before(task, result):
    """The series of a task that Dask runs again after its worker died past the rename: the folder
    appeared during this batch and a record of this batch vouches for it. Anything else there
    (another command's series: two commands raced for one folder) stays the result it was."""
    records = read_manifest(task.manifest).get(identity_key(task.input), [])
    earlier = skipped(task, [record for record in records if record.get("batch") == task.batch])
    if earlier is None:
        return result
    message = f"{shown(f'{task.input} -> {task.out_dir}')}: {earlier.files} files, committed by an earlier try whose worker died"
    return earlier._replace(status=CONVERTED, message=message, host=os.uname().nodename, pid=os.getpid())


def identity_key(path):
    return os.path.abspath(path)


def identity(task):
    """What tells a later run that this input, with these options, is the one already converted."""
    facts = {"input": identity_key(task.input), **_file_facts(task.input, "")}
    options = {key: value for key, value in task.options.items() if key not in _NOT_IN_IDENTITY}
    if options.get("meta"):
        facts.update(_file_facts(options["meta"], "meta_"))
    # as a JSON round trip gives it back (tuples become lists), so a record read later compares equal
    return json.loads(json.dumps({**facts, "options": options}, default=str))


def _file_facts(path, prefix):
    try:
        status = os.stat(path)
    except OSError:
        return {}
    return {f"{prefix}size": status.st_size, f"{prefix}mtime_ns": status.st_mtime_ns}


def skipped(task, records):
    """A SKIPPED result when one of the input's records matches the task and vouches for its folder."""
    facts = folder_facts(task.out_dir)
    if facts is None:
        return None
    here, wanted = os.path.abspath(task.out_dir), identity(task)
    for record in records:
        if record.get("out_dir") == here and _without_run(record) == wanted and _vouches(record, facts):
            message = f"{shown(f'{task.input} -> {task.out_dir}')}: already converted ({facts['files']} files)"
            return ConversionResult(task.input, task.out_dir, SKIPPED, message, facts["files"], facts["nbytes"],
                                    facts["series_uid"])  # fmt: skip
    return None


def with_preview(result):
    """A skipped series' result once its picture is there: drawn from its files when it has none.

    A series that cannot be read back keeps its result, with a warning: its files are still whole.
    """
    from .preview import draw_from_files, preview_path

    picture = preview_path(result.out_dir)
    if picture.exists():
        return result
    try:
        draw_from_files(result.out_dir)
    except (ValueError, OSError) as exc:  # PreviewError, numbers no picture can be made of, a full disk
        warning = f"no preview drawn from its files: {exc}"
        return result._replace(warnings=(*result.warnings, warning))
    return result._replace(message=f"{result.message}\n  preview: {picture} (drawn from its files)")


def _vouches(record, facts):
    return all(record.get(key) == value for key, value in facts.items())


_SERIES_FACTS = ("files", "nbytes", "series_uid", "folder_inode")


def _without_run(record):
    """The record's identity: a record written while an option was still part of it matches without it."""
    facts = {k: v for k, v in record.items() if k not in ("out_dir", "batch", *_SERIES_FACTS)}
    if isinstance(facts.get("options"), dict):
        facts["options"] = {k: v for k, v in facts["options"].items() if k not in _NOT_IN_IDENTITY}
    return facts


def folder_facts(folder):
    """What tells this series folder from any other: {files, nbytes, series_uid, folder_inode}, or None.

    The SeriesInstanceUID is read from the first file; the inode tells apart
    two writers' series of one seed, which share their UIDs.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        with os.scandir(fd) as entries:
            sizes = {e.name: e.stat(follow_symlinks=False).st_size for e in entries
                     if e.is_file(follow_symlinks=False) and not e.name.startswith(".")}  # fmt: skip
        inode = os.fstat(fd).st_ino
        uid = series_uid(os.path.join(folder, min(sizes))) if sizes else ""
    except OSError:
        return None
    finally:
        os.close(fd)
    return dict(zip(_SERIES_FACTS, (len(sizes), sum(sizes.values()), uid, inode)))


# -- the manifest --------------------------------------------------------------------------------


def append_record(manifest, record):
    """Append one JSON line with a single O_APPEND write: concurrent writers on one machine never interleave."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    # O_NOFOLLOW: a link planted at this predictable name must not carry records outside the folder;
    # O_NONBLOCK: a FIFO there opens at once, to be refused
    fd = os.open(manifest, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink > 1:
            raise OSError(f"it is {not_a_file(manifest) or 'a hard link'}, not a file of its own")
        size = status.st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn line before: it must not swallow this one
            line = b"\n" + line
        written = os.write(fd, line)
    finally:
        os.close(fd)
    if written != len(line):  # a torn line (disk full): readers skip it
        raise OSError(f"only {written} of {len(line)} bytes of the record were written")


def read_manifest(manifest):
    """{input's absolute path: its records, oldest first}; a DcmforgeError when the manifest is no regular file.

    A line that does not parse (a torn line) is skipped; one that parses but
    is no record of an input is skipped with a warning.
    """
    try:
        text = read_regular_file(manifest).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    except NotAFileError as exc:  # a FIFO would hang the reader
        raise DcmforgeError(f"{manifest}: the batch manifest: {exc}") from None
    records = {}
    for number, line in enumerate(text.split("\n"), 1):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("input"), str):
            records.setdefault(record["input"], []).append(record)
        else:
            log.warning(f"{shown(manifest)}: line {number} is not a record of an input (skipped)")
    return records


# -- executors -----------------------------------------------------------------------------------


def _run_on_executor(executor, tasks):
    """Results as they complete. When a process of the pool dies, every input it took down with it is
    run again alone, in a process of its own, so only the input that kills its process fails."""
    from concurrent.futures import BrokenExecutor, as_completed  # a pool's: a one-input run does not load it

    futures = {executor.submit(run_task, task): task for task in tasks}
    broken = []
    try:
        for future in as_completed(futures):
            task = futures.pop(future)
            try:
                yield future.result()
            except BrokenExecutor:
                broken.append(task)
            except Exception as exc:  # noqa: BLE001 - the input fails, the batch goes on
                yield _failed(task, f"{type(exc).__name__}: {exc}")
        for task in broken:
            yield run_alone(task)
    finally:
        for future in futures:  # the caller stopped early
            future.cancel()


def run_alone(task):
    """run_task in a spawned process of its own; a FAILED result saying how it ended when it dies."""
    import multiprocessing  # here: a short run of the command never needs it, and its imports cost

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_run_and_send, args=(task, sender), daemon=True)
    process.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:
        result = None
    process.join()
    if result is None:
        return _failed(task, f"the process converting it {_how_it_ended(process.exitcode)} (killed, or out of memory)")
    return result


def _run_and_send(task, sender):
    sender.send(run_task(task))


def _how_it_ended(exitcode):
    if exitcode is not None and exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}"


def _failed(task, words):
    return ConversionResult(task.input, task.out_dir, FAILED, shown(f"{task.input}: {words}"))


def _is_dask_client(executor):
    """A distributed.Client, told by its methods (importing distributed to ask would cost every other caller)."""
    return all(hasattr(executor, name) for name in ("scheduler_info", "run", "get_worker_logs"))


def wait_for_a_worker(client, patience):
    """Return once the scheduler has a worker; a NoWorkerError after patience seconds without one
    (tasks given to a scheduler without workers wait for ever)."""
    try:
        client.wait_for_workers(1, timeout=patience)
    except TimeoutError:
        raise NoWorkerError(f"no Dask worker joined the scheduler in {patience:g} s") from None


def check_workers_see(client, out_root, inputs):
    """Raise a DcmforgeError naming the first worker that does not see what this process sees.

    Each input by its size and modification time; out_root by a token file
    this process writes into it and each worker reads back (a worker with
    another file system mounted at that path sees the folder, but not the file).
    """
    here = {path: _seen(path) for path in [str(out_root), *inputs]}
    token = Path(out_root) / f".dcmforge-token-{os.urandom(16).hex()}"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, token.name.encode())
        os.close(fd)
        seen = client.run(_what_is_seen, list(here), str(token))
    except ImportError as exc:
        raise DcmforgeError(f"the Dask workers cannot import dcmforge ({exc}): install it where they run") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(token)
    share = "inputs and --out must be on a file system the workers share, at the same path"
    for worker, (facts, read_back) in sorted(seen.items()):
        missing = [path for path, fact in zip(here, facts) if fact is None and here[path] is not None]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DcmforgeError(f"{missing[0]}{more}: the Dask worker {worker} cannot see it; {share}")
        for path, fact in zip(here, facts):
            if fact != here[path]:
                raise DcmforgeError(f"{path}: the Dask worker {worker} sees another file there ({_told(fact)}, "
                                    f"here {_told(here[path])}); {share}")  # fmt: skip
        if read_back != token.name:
            raise DcmforgeError(f"{out_root}: the Dask worker {worker} sees another folder there (not the file "
                                f"{token.name} this command wrote in it); {share}")  # fmt: skip


def _seen(path):
    """What tells a file from another at one path, on two machines: (size, modification time), or None."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return "a folder" if stat.S_ISDIR(status.st_mode) else [status.st_size, status.st_mtime_ns]


def _told(fact):
    return fact if isinstance(fact, str) else f"{fact[0]} bytes, modified {fact[1]} ns"


def _what_is_seen(paths, token, patience=2.0):
    """On a worker: ([_seen(path) for each path], the token file's text or None)."""
    deadline = time.monotonic() + patience
    while True:
        with contextlib.suppress(OSError):
            os.listdir(os.path.dirname(token))  # on NFS, opening the folder revalidates its entries
            return [_seen(path) for path in paths], read_regular_file(token, 200).decode("utf-8", "replace")
        if time.monotonic() > deadline:
            return [_seen(path) for path in paths], None
        time.sleep(0.1)


def local_workers(address):
    """N for a --dask address "local:N" (the machine's cores for "local"), None for a scheduler's address."""
    name, _, count = address.partition(":")
    if name != "local":
        return None
    if not count:
        return os.cpu_count() or 1
    if not count.isdigit() or int(count) < 1:
        raise DcmforgeError(f"--dask {address}: the number of local workers must be a whole number of at least 1")
    return int(count)


@contextlib.contextmanager
def dask_client(address):
    """A distributed.Client of the scheduler at address (tcp://host:port), or, for "local[:N]", of a
    LocalCluster of N single-threaded worker processes on 127.0.0.1 that ends with the block."""
    from distributed import Client, LocalCluster

    # Not even its errors: what they mean for an input (a lost scheduler, a dead worker) is that input's line,
    # and a client that lost its scheduler logs tracebacks as it closes, after the last line.
    for name in ("distributed", "distributed.client"):  # distributed's configuration gives its client a level
        logging.getLogger(name).setLevel(logging.CRITICAL)
    workers = local_workers(address)
    if workers is None:
        with Client(address) as client:
            yield client
        return
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=None, silence_logs=logging.ERROR) as cluster,  # fmt: skip
        Client(cluster) as client,
    ):
        yield client


def _run_on_dask(client, tasks):
    """Results as the futures complete; a task whose workers all died (KilledWorker) is a FAILED result."""
    from distributed import as_completed as completed

    futures = {}
    for task in tasks:
        key = f"dcmforge-{Path(task.input).name}-{task.batch[:8]}-{len(futures)}"
        futures[client.submit(run_task, task, key=key, pure=False)] = task
    try:
        for future in completed(list(futures)):
            task = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker or a lost connection: the input fails
                if client.status != "running":  # the scheduler is gone, and with it every answer to come
                    yield from after_the_scheduler_was_lost([task, *futures.values()], exc)
                    futures.clear()
                    return
                # the answer may be lost with a scheduler the client does not know is gone yet: a worker's
                # record of this batch still vouches for what it committed
                result = committed_by_a_worker(task, _records_or_none(task.manifest)) or _failed(
                    task, _last_words(client, exc))  # fmt: skip
            future.release()
            yield result
    finally:
        if futures:  # the caller stopped early
            client.cancel(list(futures))


def after_the_scheduler_was_lost(tasks, exc, quiet=2.0, patience=30.0):
    """A result for each task whose answer was lost with the scheduler: converted when a record of this batch
    vouches for its folder (a worker committed it), else failed.

    Workers go on with the tasks they hold when the scheduler dies: the
    answer waits until none of these series has been written for ``quiet``
    seconds (no private folder of theirs, the manifest and folder unchanged),
    ``patience`` seconds at most.
    """
    out_root = Path(tasks[0].out_dir).parent
    names = {Path(task.out_dir).name[:80] for task in tasks}  # as write/commit.py cuts them
    deadline = time.monotonic() + patience
    last, still = None, time.monotonic()
    while time.monotonic() < deadline:
        now = _writing(out_root, names, tasks[0].manifest)
        if now != last or now[0]:
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet:
            break
        time.sleep(0.2)
    records = _records_or_none(tasks[0].manifest)
    for task in tasks:
        yield committed_by_a_worker(task, records) or _failed(
            task, f"not converted: the Dask scheduler was lost ({type(exc).__name__}); --resume converts what is "
                  "missing")  # fmt: skip


def _records_or_none(manifest):
    try:
        return read_manifest(manifest)
    except DcmforgeError:
        return {}


def committed_by_a_worker(task, records):
    """CONVERTED when a record of this batch vouches for the task's folder (a worker committed it, and its
    answer was lost with the scheduler), else None."""
    ours = [record for record in records.get(identity_key(task.input), []) if record.get("batch") == task.batch]
    earlier = skipped(task, ours)
    if earlier is None:
        return None
    words = f"{earlier.files} files, committed by a worker; its answer was lost with the Dask scheduler"
    return earlier._replace(status=CONVERTED, message=f"{shown(f'{task.input} -> {task.out_dir}')}: {words}")


def _writing(out_root, names, manifest):
    """(whether a series of names is being written, out_root's entries, the manifest's size): what changes
    while a worker writes. Private folders are named .NAME.dcmforge-HOST-PID-TOKEN.partial (write/commit.py)."""
    try:
        entries = sorted(os.listdir(out_root))
        size = os.stat(manifest).st_size
    except OSError:
        entries, size = [], 0
    partial = any(e.endswith(".partial") and e.split(".dcmforge-")[0][1:] in names for e in entries)
    return partial, entries, size


def _last_words(client, exc):
    """What Dask says about a task whose workers died, and how the last one ended as its nanny logged it."""
    worker = getattr(exc, "last_worker", None)
    if worker is None:
        return f"{type(exc).__name__}: {exc}"
    words = (f"its worker died {exc.allowed_failures + 1} times (distributed.scheduler.allowed-failures is "
             f"{exc.allowed_failures}); the last one was {worker.address}")  # fmt: skip
    end = _nanny_says(client, getattr(worker, "nanny", None))
    return f"{words}; its nanny: {end}" if end else words


def _nanny_says(client, nanny, patience=5.0):
    """The nanny's newest line about how its worker process ended ("... was killed by signal 9"), or None.

    The scheduler reaches a nanny through its current worker: the one it
    starts in place of the dead one, which takes a moment to register.
    """
    deadline = time.monotonic() + patience
    while nanny and time.monotonic() < deadline:
        try:
            workers = [a for a, info in client.scheduler_info()["workers"].items() if info.get("nanny") == nanny]
            logs = client.get_worker_logs(n=50, nanny=True, workers=workers) if workers else {}
        except Exception:  # noqa: BLE001 - the nanny went too: say what is known
            return None
        for line in (text for lines in logs.values() for _, text in lines):  # newest first
            if "Worker process" in line and ("killed" in line or "exited" in line):
                return line.rsplit(" - ", 1)[-1]
        time.sleep(0.2)
    return None
