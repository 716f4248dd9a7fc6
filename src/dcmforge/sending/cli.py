"""The command line of sending: ``dcmforge send``, ``dcmforge echo``, ``convert --send``, credentials and the progress bar.

Secrets come from a file or an environment variable, never from the command
line (where ``ps`` and shell histories show them), and are never printed: a
secret of more than one line is refused without showing it, and a secret file
that every user may read gives a warning.
The URL's scheme picks the client (archive.py): dicomweb (http.client, ssl)
or dimse (socket), imported only when something is sent: every other command
parses these options too. Options left out take the client's defaults; an
option of the other protocol is refused.
"""

import argparse
import logging
import os
import stat
import sys

from ..errors import DcmforgeError, NotDicomError, SendError

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
_MIB = 1 << 20
_BAR_WIDTH = 30
_SHOWN_PROBLEMS = 20  # instances listed one per line; the rest are counted

log = logging.getLogger("dcmforge")
_WARNED = set()  # secret files already warned about: the credentials are read once per series sent


class CredentialsError(DcmforgeError):
    """The credential options cannot be used: a missing file or variable, or options that do not go together."""


def add_connection_options(parser):
    """The options of a send (batching, credentials, TLS, patience), shared by ``send`` and ``convert --send``."""
    group = parser.add_argument_group("sending (DICOMweb STOW-RS for http(s):// URLs, DIMSE C-STORE for dicom(s)://)")
    group.add_argument("--batch", type=positive_int, help="instances per request at most")
    group.add_argument("--batch-mib", type=_positive_float, help="MiB per request at most, unless one file is larger")
    group.add_argument("--user", help="user name for HTTP basic auth (with --password-file or --password-env)")
    secret = group.add_mutually_exclusive_group()
    secret.add_argument("--password-file", metavar="FILE", help="file holding the password (one line)")
    secret.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    secret.add_argument("--token-file", metavar="FILE", help="file holding a bearer token")
    secret.add_argument("--token-env", metavar="VAR", help="environment variable holding a bearer token")
    group.add_argument("--cafile", help="PEM certificates to trust for https:// and dicoms:// (default: the system's)")
    group.add_argument("--timeout", type=_positive_float, help="seconds to wait for the server")
    group.add_argument("--retries", type=_count, help="tries again after connection errors and 5xx answers")
    add_dimse_options(group)
    group.add_argument("--deadline", type=_positive_float, help="dicom(s):// only: seconds one association may take in all")


def add_dimse_options(group):
    group.add_argument("--calling-ae", metavar="AE", help="dicom(s):// only: this side's AE title (default DCMFORGE)")


def add_send_command(commands):
    send = commands.add_parser("send", help="send DICOM files to an archive (DICOMweb STOW-RS or DIMSE C-STORE)")
    send.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders of them")
    send.add_argument(
        "--url",
        required=True,
        help="DICOMweb base URL (http://localhost:8042/dicom-web) or DICOM port (dicom://CALLED_AE@HOST:PORT, "
        "dicoms:// over TLS)",
    )
    add_connection_options(send)
    send.set_defaults(run=cmd_send)


def add_echo_command(commands):
    echo = commands.add_parser("echo", help="check that an archive's DICOM port answers (DIMSE C-ECHO)")
    echo.add_argument("url", metavar="URL", help="dicom://CALLED_AE@HOST:PORT (dicoms:// over TLS)")
    group = echo.add_argument_group("echo")
    add_dimse_options(group)
    group.add_argument("--timeout", type=_positive_float, help="seconds to wait for the archive")
    group.add_argument("--cafile", help="PEM certificates to trust for dicoms:// (default: the system's)")
    echo.set_defaults(run=cmd_echo)


def credentials(args):
    """The ``auth`` for dicomweb.send from the options: None, (user, password) or a token string."""
    if args.token_file or args.token_env:
        if args.user:
            raise CredentialsError("--user goes with --password-file or --password-env, not with a token")
        token = _secret(args.token_file, args.token_env, "token").strip()
        if not token:
            raise CredentialsError("the bearer token is empty")
        if any(ord(character) < 32 or ord(character) == 127 for character in token):
            raise CredentialsError("the bearer token holds a control character: a token is printable text (it is not shown)")
        return token
    if args.password_file or args.password_env:
        if not args.user:
            raise CredentialsError("a password needs --user NAME")
        password = _secret(args.password_file, args.password_env, "password")
        if not password:
            raise CredentialsError("the password is empty")
        return args.user, password
    if args.user:
        raise CredentialsError("--user needs --password-file FILE or --password-env VAR (never a password on the command line)")
    return None


def _secret(path, variable, what):
    """The secret in a file or a variable, less the line endings at its end.

    Any other line break is a CredentialsError that does not show the secret
    (a second line is a mistake, and would end an HTTP header early). A regular
    file that every user may read gives a warning (a pipe, ``<(pass show x)``, does not).
    """
    if path:
        source = f"{path}: the {what} file"
        try:
            with open(path, encoding="utf-8") as f:
                mode = os.fstat(f.fileno()).st_mode
                if stat.S_ISREG(mode) and mode & stat.S_IROTH and path not in _WARNED:
                    _WARNED.add(path)
                    log.warning("%s: the %s file can be read by every user of this machine (chmod 600 it)", path, what)
                value = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(f"{source} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    else:
        source = f"the environment variable {variable}"
        value = os.environ.get(variable)
        if not value:
            raise CredentialsError(f"the environment variable {variable} that should hold the {what} is not set")
    value = value.rstrip("\r\n")
    if "\r" in value or "\n" in value:
        raise CredentialsError(f"{source} holds more than one line: a {what} is one line (it is not shown)")
    return value


# Options that belong to one protocol only (argparse destination -> option).
_DICOMWEB_ONLY = {
    "batch": "--batch",
    "batch_mib": "--batch-mib",
    "user": "--user",
    "password_file": "--password-file",
    "password_env": "--password-env",
    "token_file": "--token-file",
    "token_env": "--token-env",
}
_DIMSE_ONLY = {"calling_ae": "--calling-ae", "deadline": "--deadline"}


def check_options(args, url):
    """The protocol of ``url`` (archive.DIMSE or DICOMWEB), once its options are known to fit it.

    An option of the other protocol is a CredentialsError; so are unusable credentials.
    """
    from .archive import DIMSE, protocol_of

    protocol = protocol_of(url)
    others = _DICOMWEB_ONLY if protocol == DIMSE else _DIMSE_ONLY
    given = [option for name, option in others.items() if getattr(args, name, None) is not None]
    if given:
        scheme = "dicom://" if protocol == DIMSE else "http(s)://"
        raise CredentialsError(f"{', '.join(given)}: not for a {scheme} URL ({url})")
    if protocol != DIMSE:
        credentials(args)
    return protocol


def _send(paths, url, args, progress=None):
    from .archive import DIMSE

    if check_options(args, url) == DIMSE:
        from .dimse import send as send_dimse

        given = {
            "calling_ae": args.calling_ae,
            "cafile": args.cafile,
            "timeout": args.timeout,
            "retries": args.retries,
            "deadline": args.deadline,
        }
        return send_dimse(paths, url, progress=progress, **{name: value for name, value in given.items() if value is not None})
    from .dicomweb import send

    given = {
        "batch_instances": args.batch,
        "batch_bytes": None if args.batch_mib is None else max(1, int(args.batch_mib * _MIB)),
        "timeout": args.timeout,
        "retries": args.retries,
    }
    options = {name: value for name, value in given.items() if value is not None}
    return send(paths, url, auth=credentials(args), cafile=args.cafile, progress=progress, **options)


def cmd_send(args):
    """Send; print the instances that were not stored and one summary line. 0 only when all were stored."""
    bar = _Bar() if sys.stderr.isatty() and not args.quiet else None
    try:
        report = _send(args.paths, args.url, args, bar)
    except (NotDicomError, CredentialsError) as exc:
        _clear(bar)
        print(f"dcmforge send: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SendError as exc:
        _clear(bar)
        print(f"dcmforge send: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _clear(bar)
    for line in problem_lines(report):
        print(line, file=sys.stderr)
    if not (args.quiet and report.ok):
        print(f"sent {report.summary()}", file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else EXIT_FAILED


def cmd_echo(args):
    """C-ECHO once; print the archive's answer. 0 only when it answered success."""
    from .archive import DIMSE, protocol_of

    try:
        if protocol_of(args.url) != DIMSE:
            print(f"dcmforge echo: {args.url}: echo speaks DIMSE: give dicom://CALLED_AE@HOST:PORT", file=sys.stderr)
            return EXIT_BAD_INPUT
        from .dimse import echo

        given = {"calling_ae": args.calling_ae, "cafile": args.cafile, "timeout": args.timeout}
        words = echo(args.url, **{name: value for name, value in given.items() if value is not None})
    except SendError as exc:
        print(f"dcmforge echo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        print(f"echo {args.url}: {words}")
    return 0


def problem_lines(report):
    """One line per instance not stored (or stored with a warning), at most _SHOWN_PROBLEMS of them."""
    from .report import STORED

    problems = [o for o in report.outcomes if o.status != STORED]
    lines = [f"{o.path}: {o.status}" + (f": {o.reason}" if o.reason else "") for o in problems[:_SHOWN_PROBLEMS]]
    if len(problems) > _SHOWN_PROBLEMS:
        lines.append(f"... and {len(problems) - _SHOWN_PROBLEMS} more instances not stored")
    return lines


def sender_for_convert(args):
    """A function that sends a converted series and returns its ConversionResult with the send's line.

    The URL, its options and credentials are checked now, before anything is
    converted: a problem with them is a CredentialsError or a SendError.
    """
    from ..convert import CONVERTED, FAILED, SKIPPED, UNRECORDED

    check_options(args, args.send)

    def send_series(result):
        if result.status not in (CONVERTED, SKIPPED, UNRECORDED):  # a series --resume skipped goes again: a rerun completes the archive
            return result
        try:
            report = _send([result.out_dir], args.send, args)
        except DcmforgeError as exc:
            return result._replace(status=FAILED, message=f"{result.message}\n  not sent: {exc}")
        lines = "".join(f"\n  {line}" for line in problem_lines(report))
        status = result.status if report.ok else FAILED
        return result._replace(status=status, message=f"{result.message}\n  sent {report.summary()}{lines}")

    return send_series


class _Bar:
    """A one-line progress bar of instances and bytes on stderr."""

    def __init__(self):
        self.drawn = ""

    def __call__(self, instances, sent_bytes, total_instances, total_bytes):
        filled = _BAR_WIDTH * sent_bytes // max(total_bytes, 1)
        text = (
            f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {instances}/{total_instances} instances, "
            f"{sent_bytes / _MIB:.1f}/{total_bytes / _MIB:.1f} MiB"
        )
        sys.stderr.write("\r" + text.ljust(len(self.drawn)))
        sys.stderr.flush()
        self.drawn = text


def _clear(bar):
    if bar and bar.drawn:
        sys.stderr.write("\n")


def positive_int(text):
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _count(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text):
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value
