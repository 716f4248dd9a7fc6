"""Sending DICOM files to an archive with DICOMweb STOW-RS (PS3.18 10.5), standard library only.

A send is a series of HTTP POSTs to ``{base}/studies``, each a
``multipart/related; type="application/dicom"`` body of a bounded number of
instances and bytes, streamed from the files (memory does not grow with the
series). The server answers each with a DICOM JSON dataset: the instances it
stored (ReferencedSOPSequence) and those it did not (FailedSOPSequence, with a
FailureReason); they are matched to files by the SOP Instance UID each file's
meta group names. Connection errors and 5xx answers are retried with
exponential backoff, resending only the batch that had no answer; a 4xx answer
is not retried, but a batch refused whole (400, 413) is sent again one file at
a time, so that the report names the file the server cannot take.

Each request has one deadline (``timeout`` seconds from its start, however
slowly the server reads or answers) and at most ANSWER_LIMIT bytes of its
answer are read. No printed text carries a secret: the credentials, and the
values of the URL's query (where some archives take a token), are masked
wherever the server echoes them.
"""

import base64
import dataclasses
import http.client
import json
import os
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import SendError
from .command import status_words
from .instances import file_pieces, find_instances
from .report import FAILED, NOT_SENT, STORED, WARNING, Outcome, SendReport

DEFAULT_BATCH_INSTANCES = 64
DEFAULT_BATCH_BYTES = 32 << 20
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 1.0  # seconds before the first retry, doubled for each next one

# The most of an answer that is read: a store answer takes well under 1 KiB per instance it names, so this is
# room for thousands of instances; a longer answer is not a store answer, and is not held in memory.
ANSWER_LIMIT = 16 << 20
# What a secret is replaced with in every printed line.
MASK = "***"

# DICOM JSON tags of a store answer (PS3.18 10.5.3).
_REFERENCED_SOPS = "00081199"
_FAILED_SOPS = "00081198"
_SOP_INSTANCE = "00081155"
_FAILURE_REASON = "00081197"
_WARNING_REASON = "00081196"
# Answers to a whole batch that a smaller one may not get: it is sent again one file at a time.
_REFUSED_WHOLE = (400, 413)


def plan_batches(instances, max_instances, max_bytes):
    """Consecutive runs of instances, each at most max_instances and max_bytes (a larger file goes alone)."""
    batches, batch, size = [], [], 0
    for instance in instances:
        if batch and (len(batch) >= max_instances or size + instance.size > max_bytes):
            batches.append(batch)
            batch, size = [], 0
        batch.append(instance)
        size += instance.size
    if batch:
        batches.append(batch)
    return batches


# -- the multipart body ----------------------------------------------------------------


def new_boundary():
    """A random multipart boundary: 128 random bits cannot be expected inside a file."""
    return f"dcmforge-{secrets.token_hex(16)}"


def content_type(boundary):
    return f'multipart/related; type="application/dicom"; boundary={boundary}'


def _part_header(boundary):
    return f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("ascii")


def _closing(boundary):
    # The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def body_length(batch, boundary):
    """The exact length of the body ``body_pieces`` yields, from the file sizes alone."""
    separators = len(batch) * len(_part_header(boundary)) + (len(batch) - 1) * 2 + len(_closing(boundary))
    return separators + sum(instance.size for instance in batch)


def part_pieces(instance, boundary, first):
    """The bytes of one instance's part, its file read in 1 MiB pieces."""
    yield (b"" if first else b"\r\n") + _part_header(boundary)
    yield from file_pieces(instance, 0, instance.size)


def body_pieces(batch, boundary):
    """The whole multipart body of a batch, piece by piece."""
    for number, instance in enumerate(batch):
        yield from part_pieces(instance, boundary, number == 0)
    yield _closing(boundary)


# -- the server's answer ---------------------------------------------------------------


def outcomes_from_answer(status, answer, batch, hidden=()):
    """Each instance's Outcome from a 200, 202 or 409 answer's DICOM JSON dataset (already decoded).

    An instance the answer does not name was not stored. A 202 that names no
    failure and no warning still is not success: its instances are WARNING.
    Anything but a DICOM JSON object is a SendError. A reason that is text
    is shown with ``hidden`` masked.
    """
    if not isinstance(answer, dict):
        raise SendError(f"the server's {status} answer is not a DICOM JSON dataset (a {type(answer).__name__})")
    top_warning = _reason_of(answer, _WARNING_REASON, hidden)
    stored = {}
    for item in _items(answer, _REFERENCED_SOPS):
        stored[_uid_of(item)] = _reason_of(item, _WARNING_REASON, hidden)
    failed = {_uid_of(item): _reason_of(item, _FAILURE_REASON, hidden) for item in _items(answer, _FAILED_SOPS)}
    quiet_202 = status == 202 and not failed and top_warning is None and not any(stored.values())
    outcomes = []
    for instance in batch:
        uid = instance.sop_instance_uid
        if uid in failed:
            outcome = (FAILED, failed[uid] or f"the server answered {status} without a reason")
        elif uid in stored:
            warning = stored[uid] or top_warning or ("the server answered 202 without a reason" if quiet_202 else None)
            outcome = (WARNING, warning) if warning else (STORED, "")
        else:
            outcome = (FAILED, f"the server's {status} answer does not name this instance")
        outcomes.append(Outcome(instance.path, uid, *outcome))
    return outcomes


def _items(answer, tag):
    element = answer.get(tag)
    if element is None:
        return []
    items = element.get("Value", []) if isinstance(element, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise SendError(f"the server's answer has a malformed sequence ({tag[:4]},{tag[4:]})")
    return items


def _value(dataset, tag):
    """The first value of a DICOM JSON element, or None."""
    element = dataset.get(tag)
    if not isinstance(element, dict):
        return None
    values = element.get("Value")
    return values[0] if isinstance(values, list) and values else None


def _uid_of(item):
    uid = _value(item, _SOP_INSTANCE)
    if not isinstance(uid, str):
        raise SendError("the server's answer names an instance without a ReferencedSOPInstanceUID (0008,1155)")
    return uid


def _reason_of(dataset, tag, hidden=()):
    """A FailureReason or WarningReason as words, or None when absent."""
    code = _value(dataset, tag)
    if code is None:
        return None
    if isinstance(code, bool) or not isinstance(code, int):
        return f"reason {masked(repr(code), hidden)}"
    return status_words(code & 0xFFFF)  # the C-STORE statuses, which STOW-RS reuses


def decode_answer(status, reason, media_type, body, hidden=()):
    """The DICOM JSON dataset of a body, or a SendError that says what the server sent instead (``hidden`` masked)."""
    text = body.decode("utf-8", "replace")
    if "html" in media_type or text.lstrip()[:1] == "<":
        raise SendError(
            f"the server answered {status} {reason} with HTML, not DICOM JSON "
            f"(is the URL the DICOMweb base?): {first_line(masked(text, hidden))}"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        shown = first_line(masked(text, hidden))
        raise SendError(f"the server answered {status} {reason} with something that is not JSON: {shown}") from None


def _body_words(answer, hidden):
    """An answer's body in one line, ``hidden`` masked before it is shortened: compact JSON when it is JSON, else
    its first line."""
    text = answer.body.decode("utf-8", "replace")
    try:
        text = json.dumps(json.loads(text), separators=(",", ":"))
    except (ValueError, RecursionError):
        pass
    return first_line(masked(text, hidden))


def first_line(text):
    """The first non-blank line of a body, shortened for one line of output."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "(empty body)")
    return line if len(line) <= 120 else line[:117] + "..."


# -- HTTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the POSTs go: the connection's class and arguments, and the path of {base}/studies."""

    url: str  # as printed: the query's values masked
    https: bool
    host: str
    port: int | None
    path: str
    context: ssl.SSLContext | None
    hidden: tuple = ()  # the texts no printed line may show (secrets_of), longest first


def target_of(url, cafile=None):
    """The Target for a DICOMweb base URL (``{base}/studies`` when it does not end with /studies)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:  # never echo them
        raise SendError("the URL holds credentials (user:password@): give --user with --password-file or --password-env")
    shown = masked_url(url)
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):  # http.client would echo the path, query and all
        raise SendError(f"{shown}: the URL holds a space or a control character")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SendError(f"{shown}: a DICOMweb URL starts with http:// or https:// and names a host")
    try:
        port = parts.port
    except ValueError:
        raise SendError(f"{shown}: the port is not a number from 0 to 65535") from None
    path = parts.path.rstrip("/")
    if not path.endswith("/studies"):
        path += "/studies"
    shown_path = path
    if parts.query:
        path += f"?{parts.query}"
        shown_path += f"?{urllib.parse.urlsplit(shown).query}"
    context = None
    if parts.scheme == "https":
        try:
            context = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise SendError(f"{cafile}: cannot be read as certificates ({exc})") from None
    return Target(f"{parts.scheme}://{parts.netloc}{shown_path}", parts.scheme == "https", parts.hostname, port, path, context)


def masked_url(url):
    """The URL as printed: each value of its query masked (some archives take a token there), its fragment left out."""
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return urllib.parse.urlunsplit(parts._replace(fragment=""))
    pairs = (item.partition("=") for item in parts.query.split("&"))
    query = "&".join(f"{name}={MASK}" if equals else MASK for name, equals, _ in pairs)
    return urllib.parse.urlunsplit(parts._replace(query=query, fragment=""))


def auth_header(auth):
    """The Authorization header value: a (user, password) pair is basic auth, a string a bearer token.

    A token with a control character (a line break would end the header) and a user name with a colon (which
    basic auth cannot carry) are a SendError that does not show them.
    """
    if auth is None:
        return None
    if isinstance(auth, str):
        if not auth or any(ord(c) < 32 or ord(c) == 127 for c in auth):
            raise SendError("the bearer token is empty or holds a line break or another control character (not shown)")
        return f"Bearer {auth}"
    user, password = auth
    if ":" in user:
        raise SendError("the user name holds a colon, which HTTP basic auth cannot carry")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def secrets_of(auth, url):
    """The texts that no printed line may show: the credentials, their header value, the values of the URL's query."""
    found = set()
    if isinstance(auth, str):
        found.add(auth)
    elif auth is not None:
        found.update(auth[1:])
    header = auth_header(auth)
    if header:
        found.add(header.split(" ", 1)[1])
    for item in urllib.parse.urlsplit(url).query.split("&"):
        name, equals, value = item.partition("=")
        for raw in (value if equals else name,):
            found.update((raw, urllib.parse.unquote_plus(raw)))
    return tuple(sorted((text for text in found if text), key=len, reverse=True))


def masked(text, hidden):
    """``text`` with each of the texts ``hidden`` (longest first) replaced by MASK."""
    for secret in hidden:
        text = text.replace(secret, MASK)
    return text


class _Retryable(Exception):
    """A failure that another try may cure: no connection, a broken one, or a 5xx answer."""


class Answer(NamedTuple):
    """What the server answered one request."""

    status: int
    reason: str
    media_type: str  # the Content-Type, lower case ("" when none)
    location: str  # where a redirection points ("" when none)
    body: bytes


class _Deadline:
    """One deadline for a whole request: when it passes, the connection's socket is shut down, which ends any
    send or read in progress (a socket timeout alone counts per read, and a server trickling a byte at a time
    never reaches it)."""

    def __init__(self, connection, seconds):
        self.seconds = seconds
        self.passed = False
        self._connection = connection
        self._lock = threading.Lock()  # the shutdown never meets a socket being closed
        self._timer = threading.Timer(seconds, self._shut)
        self._timer.daemon = True
        self._timer.start()

    def _shut(self):
        with self._lock:
            self.passed = True
            sock = self._connection.sock
            if sock is not None:
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: no TLS goodbye
                except OSError:
                    pass

    def check(self):
        """Raises TimeoutError once the deadline has passed (a connect that outlived it is not used)."""
        if self.passed:
            raise TimeoutError

    def close(self):
        """Stops the timer and closes the connection."""
        self._timer.cancel()
        with self._lock:
            self._connection.close()

    def words(self):
        return f"no whole answer within the timeout ({self.seconds:g} s for the request)"


def post_batch(target, batch, headers, timeout, sent=None, limit=ANSWER_LIMIT):
    """POST one batch; returns its Answer. Connection failures, and a request not answered within ``timeout``
    seconds of its start, raise _Retryable; an answer of more than ``limit`` bytes is a SendError.

    ``sent(instance)`` is called as each instance's bytes are out.
    """
    boundary = new_boundary()
    if target.https:
        connection = http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=target.context)
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    deadline = _Deadline(connection, timeout)
    try:
        sending_error = None
        try:
            connection.putrequest("POST", target.path, skip_accept_encoding=True)
            for name, value in headers.items():
                try:
                    connection.putheader(name, value)
                except ValueError:  # its text would carry the value (a credential)
                    raise SendError(f"{target.url}: the {name} header's value is not a valid HTTP header value (not shown)") from None
            connection.putheader("Content-Type", content_type(boundary))
            connection.putheader("Content-Length", str(body_length(batch, boundary)))
            connection.endheaders()
            for number, instance in enumerate(batch):
                for piece in part_pieces(instance, boundary, number == 0):
                    deadline.check()
                    connection.send(piece)
                if sent:
                    sent(instance)
            connection.send(_closing(boundary))
        except ssl.SSLCertVerificationError as exc:
            raise SendError(f"{target.url}: the server's certificate is not trusted ({exc.verify_message}); use --cafile") from None
        except ssl.SSLError as exc:  # another try meets the same server: not retried
            raise SendError(f"{target.url}: the TLS handshake failed ({exc.reason or exc}); is the server speaking HTTPS?") from None
        except (OSError, http.client.HTTPException) as exc:
            if deadline.passed:
                raise _Retryable(deadline.words()) from None
            if connection.sock is None:  # never connected
                raise _Retryable(_connection_words(exc, target.hidden)) from None
            sending_error = exc  # the server may have answered early (a 401 before reading the body): read it
        try:
            response = connection.getresponse()
            body = response.read(limit + 1)
            deadline.check()  # a shutdown reads as the end of a body that has no length
        except (OSError, http.client.HTTPException) as exc:
            words = deadline.words() if deadline.passed else _connection_words(sending_error or exc, target.hidden)
            raise _Retryable(words) from None
        if len(body) > limit:
            raise SendError(
                f"{target.url}: the server's {response.status} answer is longer than {limit / (1 << 20):g} MiB, "
                "the most dcmforge reads of an answer (not read further)"
            )
        media_type = (response.getheader("Content-Type") or "").lower()
        location = masked(masked_url(response.getheader("Location") or ""), target.hidden)
        return Answer(response.status, masked(response.reason, target.hidden), media_type, location, body)
    finally:
        deadline.close()


def _connection_words(exc, hidden):
    """What went wrong, in words; the exception's own text (a status line the server sent) with ``hidden`` masked."""
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, ConnectionRefusedError):
        return "cannot connect: nothing answers at this address and port (connection refused)"
    return f"the connection failed ({masked(str(getattr(exc, 'strerror', None) or exc or type(exc).__name__), hidden)})"


def send(
    paths: Iterable[str | os.PathLike],
    url: str,
    *,
    batch_instances: int = DEFAULT_BATCH_INSTANCES,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    auth: tuple[str, str] | str | None = None,
    cafile: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    progress: Callable[[int, int, int, int], object] | None = None,
) -> SendReport:
    """Send the DICOM files in ``paths`` (files or folders) to the DICOMweb server at ``url``.

    ``url`` is the DICOMweb base (``https://pacs.example/dicom-web``); the
    instances go to ``{url}/studies`` in batches of at most ``batch_instances``
    files and ``batch_bytes`` bytes. ``auth`` is a (user, password) pair for
    HTTP basic auth or a bearer token string. ``cafile`` adds trusted
    certificates for HTTPS (the system's are used otherwise). ``progress(instances,
    bytes, total_instances, total_bytes)`` is called as each instance's bytes are out.

    Returns a SendReport (``report.ok`` only when every instance was stored
    without a warning). Raises NotDicomError before sending anything when a
    path is not DICOM, and SendError (with the report so far) when the server
    cannot be reached after ``retries`` retries, refuses the credentials, or
    answers something other than a store answer. No reason or message shows
    the credentials or the values of the URL's query, even where the server
    echoes them.
    """
    if batch_instances < 1 or batch_bytes < 1:
        raise SendError(f"batches need at least 1 instance and 1 byte, not {batch_instances} and {batch_bytes}")
    target = target_of(url, cafile)
    instances = find_instances([paths] if isinstance(paths, (str, os.PathLike)) else paths)
    headers = {"Accept": "application/dicom+json", "User-Agent": "dcmforge"}
    authorization = auth_header(auth)
    if authorization:
        headers["Authorization"] = authorization
    target = dataclasses.replace(target, hidden=secrets_of(auth, url))
    report = SendReport(target.url, [Outcome(i.path, i.sop_instance_uid, NOT_SENT) for i in instances])
    try:
        _store_all(target, instances, headers, report, batch_instances, batch_bytes, timeout, retries, backoff, progress)
    except SendError as exc:
        raise SendError(str(exc), exc.report or report) from None
    return report


def _store_all(target, instances, headers, report, batch_instances, batch_bytes, timeout, retries, backoff, progress):
    """Send the instances in batches, filling in ``report``; raises SendError as send says."""
    done = {"instances": 0, "bytes": 0}
    total_bytes = sum(instance.size for instance in instances)

    def sent(instance):
        done["instances"] += 1
        done["bytes"] += instance.size
        if progress:
            progress(done["instances"], done["bytes"], len(instances), total_bytes)

    def store(batch):
        """The outcomes of one batch; a batch refused whole is sent again one file at a time to find the culprit."""
        before = dict(done)
        answer = _post_with_retries(target, batch, headers, timeout, retries, backoff, sent, report)
        report.bytes_sent += sum(instance.size for instance in batch)
        if answer.status in _REFUSED_WHOLE:
            if len(batch) > 1:
                done.update(before)  # its instances go again, each alone: they count once
                return [outcome for instance in batch for outcome in store([instance])]
            words = f"the server refused it ({answer.status} {answer.reason}: {_body_words(answer, target.hidden)})"
            return [Outcome(batch[0].path, batch[0].sop_instance_uid, FAILED, words)]
        return _outcomes(target, answer, batch, report)

    position = 0
    for batch in plan_batches(instances, batch_instances, batch_bytes):
        try:
            outcomes = store(batch)
        except _Retryable as exc:
            stored = report.count(STORED) + report.count(WARNING)
            tries = "once" if retries == 0 else f"{retries + 1} times"
            raise SendError(
                f"{target.url}: {exc} (tried {tries}); {stored} of {len(instances)} instances stored; "
                "a rerun completes the series (the server keeps one copy of what it already has)",
                report,
            ) from None
        report.outcomes[position : position + len(batch)] = outcomes
        position += len(batch)


def _post_with_retries(target, batch, headers, timeout, retries, backoff, sent, report):
    """post_batch until an answer that is not 5xx, at most retries + 1 times, after 1, 2, 4... backoff units.

    The last failure is raised as _Retryable. ``sent`` counts the batch's instances once however often it goes;
    every answer counts in ``report.requests``.
    """
    counted = set()

    def sent_once(instance):
        if instance.path not in counted:
            counted.add(instance.path)
            sent(instance)

    attempt = 0
    while True:
        try:
            answer = post_batch(target, batch, headers, timeout, sent_once)
            report.requests += 1
            if answer.status < 500:
                return answer
            raise _Retryable(f"the server answered {answer.status} {answer.reason}: {_body_words(answer, target.hidden)}")
        except _Retryable:
            if attempt == retries:
                raise
            time.sleep(backoff * 2**attempt)
            attempt += 1


def _outcomes(target, answer, batch, report):
    """The batch's outcomes from a final (not retried) Answer; other answers are a SendError."""
    status, reason = answer.status, answer.reason
    if status in (401, 403):
        words = "missing or wrong credentials" if status == 401 else "these credentials are not allowed to store"
        raise SendError(f"{target.url}: the server refused the request ({status} {reason}): {words}", report)
    if status not in (200, 202, 409):
        text = _body_words(answer, target.hidden)
        hint = " (is the URL the DICOMweb base?)" if status in (404, 405) else ""
        if 300 <= status < 400:
            hint = f" (to {answer.location or 'nowhere said'}: give the URL it points to)"
        raise SendError(f"{target.url}: the server answered {status} {reason}{hint}: {text}", report)
    try:
        dataset = decode_answer(status, reason, answer.media_type, answer.body, target.hidden)
        return outcomes_from_answer(status, dataset, batch, target.hidden)
    except SendError as exc:
        raise SendError(f"{target.url}: {exc}", report) from None
