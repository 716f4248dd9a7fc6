"""Sending DICOM files to an archive's DICOM port: DIMSE C-STORE and C-ECHO (PS3.7 9.1, PS3.8), standard library only.

A send is one association (``dicom://CALLED_AE@HOST:PORT``, or
``dicoms://`` for DICOM over TLS, PS3.15 B.1) proposing one
presentation context per SOP class of the files, Explicit VR Little Endian
then Implicit VR Little Endian (a file in another transfer syntax gets a
context of its own for its syntax alone). Each file goes as a C-STORE-RQ
followed by its data set, both cut into P-DATA-TF PDUs no longer than the
archive's maximum length, and waits for its C-STORE-RSP, whose status is the
file's outcome. A file whose syntax the archive did not accept is rewritten
from Explicit to Implicit VR when the archive chose that (implicit.py), or is
named and skipped. The association is released at the end.

When the connection is lost, refused or aborted (or the archive rejects the
association transiently), a new association sends again only the files that
got no response, after 1, 2, 4... backoff units, at most ``retries`` times in a
row. Every wait for the archive is bounded by ``timeout`` seconds, and the
whole association by ``deadline`` seconds (ARTIM included).
"""

import os
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass

from ..dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from ..errors import SendError
from . import command, pdu
from .implicit import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, explicit_to_implicit
from .instances import file_pieces, find_instances
from .report import FAILED, NOT_SENT, STORED, WARNING, Outcome, SendReport

DEFAULT_CALLING_AE = "DCMFORGE"
DEFAULT_PORT = 104  # the well-known DICOM port (PS3.8 F.1)
DEFAULT_TLS_PORT = 2762  # the well-known DICOM port over TLS (PS3.15 B.1)
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 1.0  # seconds before the first retry, doubled for each next one
# The largest P-DATA-TF this side receives: answers are a command set of about 100 bytes.
RECEIVE_MAX_PDU = 65536
# Fragments when the archive sets no maximum (0): large enough that headers cost nothing.
UNLIMITED_FRAGMENT = 1 << 20
# Other PDUs than P-DATA-TF (an A-ASSOCIATE-AC) are not bounded by RECEIVE_MAX_PDU; larger than this is not an answer.
_MAX_ANY_PDU = 1 << 20
_WRITE_SIZE = 256 << 10
# An archive with Nagle's algorithm on (dcmtk's storescp as installed) sends the second piece of an answer only
# once the first is acknowledged, and Linux delays that acknowledgement by up to 40 ms: asked before every read,
# it is sent at once (Linux resets the flag by itself). 20 instances/s become hundreds (benchmarks/bench_dimse.py).
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)
_MAX_CONTEXTS = 128  # odd IDs 1..255 (PS3.8 9.3.2.2)
_AE_CHARACTERS = set(map(chr, range(0x20, 0x7F))) - {"\\"}
_TS_NAMES = {
    EXPLICIT_VR_LITTLE_ENDIAN: "Explicit VR Little Endian",
    IMPLICIT_VR_LITTLE_ENDIAN: "Implicit VR Little Endian",
}


@dataclass(frozen=True)
class Target:
    """The archive of a ``dicom://CALLED_AE@HOST:PORT`` URL (``dicoms://``: over TLS)."""

    url: str
    called_ae: str
    host: str
    port: int
    tls: bool = False


def target_of(url):
    """The Target of a DIMSE URL; SendError naming what is wrong with it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("dicom", "dicoms") or not parts.hostname or parts.username is None:
        raise SendError(
            f"{url}: a DIMSE URL is dicom://CALLED_AE@HOST:PORT (the archive's AE title, host and DICOM port)"
        )
    if parts.password is not None or parts.path.strip("/") or parts.query or parts.fragment:
        raise SendError(f"{url}: a DIMSE URL has nothing but dicom://CALLED_AE@HOST:PORT")
    try:
        port = parts.port or (DEFAULT_TLS_PORT if parts.scheme == "dicoms" else DEFAULT_PORT)
    except ValueError:
        raise SendError(f"{url}: the port is not a number from 1 to 65535") from None
    called = check_ae_title(urllib.parse.unquote(parts.username), f"{url}: the called AE title")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    url = f"{parts.scheme}://{urllib.parse.quote(called)}@{host}:{port}"
    return Target(url, called, parts.hostname, port, parts.scheme == "dicoms")


def tls_context(target, cafile):
    """The TLS context of a dicoms:// target (the system's certificates, or those of ``cafile``); None for dicom://."""
    if not target.tls:
        if cafile:
            raise SendError(f"{target.url}: a certificate file is for dicoms:// URLs (DICOM over TLS)")
        return None
    import ssl

    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise SendError(f"{cafile}: cannot be read as certificates ({exc})") from None


def check_ae_title(title, what):
    """An AE title without its surrounding spaces: 1 to 16 characters of ASCII, no backslash or control character."""
    stripped = title.strip(" ")
    if not 1 <= len(stripped) <= 16 or not set(stripped) <= _AE_CHARACTERS:
        raise SendError(f"{what} {title!r} is not an AE title (1 to 16 ASCII characters, no backslash)")
    return stripped


class _Lost(Exception):
    """The association is gone before its end: another association may cure it."""


class _DeadlinePassed(Exception):
    pass


# -- the association -------------------------------------------------------------------


class Association:
    """One open association over a socket: PDUs in and out, every wait bounded by the timeout and the deadline."""

    def __init__(self, target, calling_ae, contexts, timeout, deadline, tls=None):
        self.target = target
        self.timeout = timeout
        self.ends_at = None if deadline is None else time.monotonic() + deadline
        self.accepted = {}  # context ID -> transfer syntax, for the contexts the archive accepted
        self.refused = {}  # context ID -> the result in words
        self.fragment = UNLIMITED_FRAGMENT
        self.sock = None
        self.deadline_is_nearer = False
        try:
            self._negotiate(calling_ae, contexts, tls)
        except BaseException:
            self.close()
            raise

    def _negotiate(self, calling_ae, contexts, tls):
        target = self.target
        try:
            self.sock = socket.create_connection((target.host, target.port), timeout=self._wait())
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls:
                self.sock = tls.wrap_socket(self.sock, server_hostname=target.host)
        except OSError as exc:
            if tls and type(exc).__name__ == "SSLCertVerificationError":  # another try meets the same certificate
                raise SendError(
                    f"{target.url}: the archive's certificate is not trusted ({exc.verify_message}); use --cafile"
                )
            if tls and type(exc).__module__ == "ssl":
                raise SendError(
                    f"{target.url}: the TLS handshake failed ({exc.reason or exc}); does the port speak TLS?"
                )
            raise self._lost(exc) from None
        request = pdu.AssociateRQ(
            target.called_ae,
            calling_ae,
            tuple(contexts),
            RECEIVE_MAX_PDU,
            IMPLEMENTATION_CLASS_UID,
            IMPLEMENTATION_VERSION_NAME,
        )
        self.send(pdu.encode(request))
        answer = self.receive()  # ARTIM: the wait for the answer is bounded like any other
        if isinstance(answer, pdu.AssociateRJ):
            words = f"the archive rejected the association: {answer.words()}"
            if answer.result == pdu.REJECTED_TRANSIENTLY:  # another try may be accepted
                raise _Lost(words)
            if (answer.source, answer.reason) == pdu.CALLED_AE_NOT_RECOGNISED:
                words += f" (the archive is not {target.called_ae!r}: check CALLED_AE in the URL)"
            elif (answer.source, answer.reason) == pdu.CALLING_AE_NOT_RECOGNISED:
                words += f" (the archive does not know {calling_ae!r}: check --calling-ae, or register it there)"
            raise SendError(f"{target.url}: {words}")
        if not isinstance(answer, pdu.AssociateAC):
            self.abort(pdu.ABORT_UNEXPECTED_PDU)
            raise SendError(f"{target.url}: the archive answered the A-ASSOCIATE-RQ with {type(answer).__name__}")
        for result in answer.results:
            if result.result == pdu.ACCEPTED:
                self.accepted[result.id] = result.transfer_syntax
            else:
                self.refused[result.id] = pdu.CONTEXT_RESULTS.get(result.result, f"result {result.result}")
        if answer.max_pdu_length:
            if answer.max_pdu_length <= pdu.PDV_HEADER_LENGTH:
                self.abort(pdu.ABORT_INVALID_PARAMETER)
                raise SendError(
                    f"{target.url}: the archive's maximum PDU length {answer.max_pdu_length} cannot carry data"
                )
            self.fragment = min(answer.max_pdu_length - pdu.PDV_HEADER_LENGTH, UNLIMITED_FRAGMENT)

    def _wait(self):
        """Seconds the next wait may take: the timeout, or less when the deadline is nearer."""
        self.deadline_is_nearer = False
        if self.ends_at is None:
            return self.timeout
        left = self.ends_at - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed()
        self.deadline_is_nearer = left < self.timeout
        return min(self.timeout, left)

    def _lost(self, exc):
        """The exception for a failed socket operation: the deadline when it cut the wait short, else _Lost."""
        self.close()
        if isinstance(exc, TimeoutError) and self.deadline_is_nearer:
            return _DeadlinePassed()
        return _Lost(connection_words(exc, self.target))

    def send(self, data):
        try:
            self.sock.settimeout(self._wait())
            self.sock.sendall(data)
        except OSError as exc:
            raise self._lost(exc) from None

    def _read(self, count):
        buffer = bytearray(count)
        view, got = memoryview(buffer), 0
        try:
            while got < count:
                self.sock.settimeout(self._wait())
                if _QUICKACK is not None:
                    self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                n = self.sock.recv_into(view[got:])
                if not n:
                    raise _Lost("the archive closed the connection without answering")
                got += n
        except OSError as exc:
            raise self._lost(exc) from None
        except _Lost:
            self.close()
            raise
        return bytes(buffer)

    def receive(self):
        """The next PDU from the archive, decoded; an A-ABORT is _Lost, a malformed PDU a SendError (after an abort)."""
        header = self._read(pdu.HEADER_LENGTH)
        pdu_type, _, length = struct.unpack(">BBI", header)
        limit = RECEIVE_MAX_PDU if pdu_type == pdu.P_DATA_TF else _MAX_ANY_PDU
        if length > limit:
            self.abort(pdu.ABORT_INVALID_PARAMETER)
            raise SendError(
                f"{self.target.url}: the archive sent a PDU of {length} bytes, more than the {limit} expected"
            )
        try:
            answer = pdu.decode(pdu_type, self._read(length))
        except SendError as exc:
            self.abort(pdu.ABORT_INVALID_PARAMETER if pdu_type in pdu.PDU_TYPES else pdu.ABORT_UNRECOGNISED_PDU)
            raise SendError(f"{self.target.url}: {exc}") from None
        if isinstance(answer, pdu.Abort):
            self.close()
            raise _Lost(answer.words())
        if isinstance(answer, pdu.ReleaseRQ):  # the archive ends the association: agree, and try the rest again
            self.send(pdu.encode(pdu.ReleaseRP()))
            self.close()
            raise _Lost("the archive released the association before its end")
        return answer

    def send_message(self, context_id, command_set, dataset=None):
        """Send a command set, then the data set's pieces (an iterable of bytes-like pieces of known total length)."""
        self._send_fragments(context_id, True, [command_set], len(command_set))
        if dataset is not None:
            self._send_fragments(context_id, False, *dataset)

    def _send_fragments(self, context_id, is_command, pieces, total):
        """P-DATA-TF PDUs of one PDV each, at most self.fragment data bytes, the last one flagged.

        PDUs are gathered into writes of about _WRITE_SIZE bytes: one system call per fragment costs
        more than the copy when the archive's fragments are small (16 KiB is common).
        """
        out, carry, sent = bytearray(), bytearray(), 0

        def emit(data):
            nonlocal sent
            sent += len(data)
            out.extend(pdu.pdata_header(context_id, is_command, sent >= total, len(data)))
            out.extend(data)
            if len(out) >= _WRITE_SIZE:
                self.send(out)
                out.clear()

        for piece in pieces:
            view, at = memoryview(piece), 0
            if carry:
                at = min(self.fragment - len(carry), len(view))
                carry += view[:at]
                if len(carry) == self.fragment:
                    emit(carry)
                    carry.clear()
            while len(view) - at >= self.fragment:
                emit(view[at : at + self.fragment])
                at += self.fragment
            carry += view[at:]
        if carry or total == 0:
            emit(carry)
        if sent != total:
            raise SendError(f"{self.target.url}: a file changed while it was being sent ({sent} bytes, not {total})")
        if out:
            self.send(out)

    def receive_command(self):
        """The next command set (decoded) the archive sends, with any data set after it read and dropped."""
        fragments = []
        while True:
            answer = self.receive()
            if not isinstance(answer, pdu.PData):
                self.abort(pdu.ABORT_UNEXPECTED_PDU)
                raise SendError(
                    f"{self.target.url}: the archive sent {type(answer).__name__} where a DIMSE answer belongs"
                )
            for value in answer.values:
                if value.is_command:
                    fragments.append(value.data)
                    if value.is_last:
                        return self._decoded(b"".join(fragments))

    def _decoded(self, data):
        try:
            return command.decode_command(data)
        except SendError as exc:
            self.abort(pdu.ABORT_INVALID_PARAMETER)
            raise SendError(f"{self.target.url}: {exc}") from None

    def release(self):
        """A-RELEASE-RQ, then the A-RELEASE-RP, as long as the timeout (ARTIM) allows; the socket is closed either way."""
        try:
            self.send(pdu.encode(pdu.ReleaseRQ()))
            while not isinstance(self.receive(), pdu.ReleaseRP):
                pass
        except (_Lost, _DeadlinePassed, SendError):
            pass  # every answer is in: a release that goes wrong changes none of them
        self.close()

    def abort(self, reason=0):
        """A-ABORT (from the service user, or as provider with a reason for a malformed PDU), then close."""
        if self.sock is not None:
            try:
                self.sock.settimeout(1.0)
                self.sock.sendall(pdu.encode(pdu.Abort(2 if reason else 0, reason)))
            except OSError:
                pass
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def connection_words(exc, target):
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect: nothing answers at {target.host} port {target.port} (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"cannot find the host {target.host} ({exc.strerror or exc})"
    return f"the connection failed ({getattr(exc, 'strerror', None) or exc or type(exc).__name__})"


# -- C-ECHO ----------------------------------------------------------------------------


def echo(url, *, calling_ae=DEFAULT_CALLING_AE, cafile=None, timeout=DEFAULT_TIMEOUT, deadline=None):
    """C-ECHO the archive at a ``dicom://`` URL once; returns its status in words ('success (0x0000)').

    Raises SendError with one line when the archive cannot be reached, rejects
    the association or answers anything but success.
    """
    target = target_of(url)
    calling_ae = check_ae_title(calling_ae, "the calling AE title")
    context = pdu.PresentationContext(1, command.VERIFICATION_SOP_CLASS, (IMPLICIT_VR_LITTLE_ENDIAN,))
    tls = tls_context(target, cafile)
    try:
        association = Association(target, calling_ae, [context], timeout, deadline, tls)
        if 1 not in association.accepted:
            association.release()
            raise SendError(
                f"{target.url}: the archive does not accept C-ECHO (Verification): {association.refused.get(1, 'no answer')}"
            )
        association.send_message(1, command.c_echo_rq(1))
        answer = association.receive_command()
        association.release()
    except _Lost as exc:
        raise SendError(f"{target.url}: {exc}") from None
    except _DeadlinePassed:
        raise SendError(f"{target.url}: no answer to C-ECHO within the deadline of {deadline:g} s") from None
    status = answer.get(command.STATUS)
    if answer.get(command.COMMAND_FIELD) != command.C_ECHO_RSP or status is None:
        raise SendError(
            f"{target.url}: the archive answered C-ECHO-RQ with {command.command_name(answer)} without a status"
        )
    if status != command.SUCCESS:
        raise SendError(f"{target.url}: the archive answered C-ECHO with {command.status_words(status)}")
    return command.status_words(status)


# -- C-STORE ---------------------------------------------------------------------------


def plan_contexts(instances):
    """One presentation context per SOP class and syntax family, and each instance's context ID.

    Explicit VR Little Endian files propose Explicit then Implicit (which they can
    be rewritten to); files in any other syntax propose theirs alone.
    """
    keys, ids = {}, []
    for instance in instances:
        syntax = instance.transfer_syntax_uid or EXPLICIT_VR_LITTLE_ENDIAN
        key = (instance.sop_class_uid, syntax)
        if key not in keys:
            keys[key] = 2 * len(keys) + 1
        ids.append(keys[key])
    if len(keys) > _MAX_CONTEXTS:
        raise SendError(
            f"the files need {len(keys)} presentation contexts, more than the {_MAX_CONTEXTS} of one association: "
            "send them in parts"
        )
    contexts = [
        pdu.PresentationContext(
            context_id,
            sop_class,
            (syntax, IMPLICIT_VR_LITTLE_ENDIAN) if syntax == EXPLICIT_VR_LITTLE_ENDIAN else (syntax,),
        )
        for (sop_class, syntax), context_id in keys.items()
    ]
    return contexts, ids


def dataset_of(instance, accepted_syntax):
    """The data set of a file as ([pieces], length) in the accepted syntax, or the reason it cannot be sent (a str)."""
    syntax = instance.transfer_syntax_uid or EXPLICIT_VR_LITTLE_ENDIAN
    length = instance.size - instance.dataset_offset
    if accepted_syntax == syntax:
        return file_pieces(instance, instance.dataset_offset, length, UNLIMITED_FRAGMENT), length
    if syntax == EXPLICIT_VR_LITTLE_ENDIAN and accepted_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        try:
            with open(instance.path, "rb") as f:
                f.seek(instance.dataset_offset)
                rewritten = explicit_to_implicit(f.read())
        except OSError as exc:
            return f"not sent: the file cannot be read ({exc.strerror or exc})"
        except SendError as exc:
            return f"not sent: the archive takes Implicit VR only, and {exc}"
        return [rewritten], len(rewritten)
    return (
        f"not sent: the archive accepted its SOP class only as {_ts_name(accepted_syntax)}, "
        f"and the file is {_ts_name(syntax)}"
    )


def _ts_name(uid):
    return _TS_NAMES.get(uid, uid or "no transfer syntax")


def send(
    paths,
    url,
    *,
    calling_ae=DEFAULT_CALLING_AE,
    cafile=None,
    timeout=DEFAULT_TIMEOUT,
    deadline=None,
    retries=DEFAULT_RETRIES,
    backoff=DEFAULT_BACKOFF,
    progress=None,
):
    """Send the DICOM files in ``paths`` (files or folders) to the archive at ``url`` by C-STORE.

    ``url`` is ``dicom://CALLED_AE@HOST:PORT`` (port 104 when left out);
    ``calling_ae`` is this side's AE title. ``dicoms://`` goes over TLS,
    trusting the system's certificates or ``cafile``'s. ``timeout`` bounds every wait for
    the archive, ``deadline`` (seconds, None for none) each association.
    ``progress(instances, bytes, total_instances, total_bytes)`` is called as
    each instance is answered.

    Returns a SendReport (``report.ok`` only when every instance was stored
    without a warning). Raises NotDicomError before sending anything when a
    path is not DICOM, and SendError (with the report so far) when the archive
    cannot be reached after ``retries`` retries in a row, rejects the
    association, misses the deadline or breaks the protocol.
    """
    target = target_of(url)
    calling_ae = check_ae_title(calling_ae, "the calling AE title")
    instances = find_instances([paths] if isinstance(paths, (str, os.PathLike)) else paths)
    contexts, context_ids = plan_contexts(instances)
    tls = tls_context(target, cafile)
    report = SendReport(
        target.url, [Outcome(i.path, i.sop_instance_uid, NOT_SENT) for i in instances], request_name="association"
    )
    total_bytes = sum(instance.size for instance in instances)
    pending = list(range(len(instances)))  # indexes of the instances without an answer, in order
    answered = {"instances": 0, "bytes": 0}
    failures = 0
    while pending:
        try:
            association = Association(target, calling_ae, contexts, timeout, deadline, tls)
        except _Lost as exc:
            failures = _retry_or_raise(exc, failures, retries, backoff, report, target)
            continue
        except _DeadlinePassed:
            raise SendError(_deadline_words(target, deadline, report), report) from None
        except SendError as exc:
            raise SendError(str(exc), report) from None
        report.requests += 1
        message_id = 0
        try:
            while pending:
                index = pending[0]
                instance = instances[index]
                message_id = message_id % 0xFFFF + 1
                outcome = _store(association, instance, context_ids[index], message_id)
                report.outcomes[index] = outcome
                if outcome.status in (STORED, WARNING):
                    report.bytes_sent += instance.size
                pending.pop(0)
                failures = 0
                answered["instances"] += 1
                answered["bytes"] += instance.size
                if progress:
                    progress(answered["instances"], answered["bytes"], len(instances), total_bytes)
            association.release()
        except _Lost as exc:
            failures = _retry_or_raise(exc, failures, retries, backoff, report, target)
        except _DeadlinePassed:
            association.abort()
            raise SendError(_deadline_words(target, deadline, report), report) from None
        except SendError as exc:
            association.abort()
            raise SendError(str(exc), report) from None
    return report


def _store(association, instance, context_id, message_id):
    """One instance's C-STORE on an open association: its Outcome."""
    if context_id in association.refused:
        syntax = _ts_name(instance.transfer_syntax_uid or EXPLICIT_VR_LITTLE_ENDIAN)
        refused = association.refused[context_id]
        words = f"not sent: the archive refused its SOP class {instance.sop_class_uid} in {syntax} ({refused})"
        return Outcome(instance.path, instance.sop_instance_uid, FAILED, words)
    accepted = association.accepted.get(context_id)
    if accepted is None:
        return Outcome(
            instance.path,
            instance.sop_instance_uid,
            FAILED,
            f"not sent: the archive did not answer for its SOP class {instance.sop_class_uid}",
        )
    dataset = dataset_of(instance, accepted)
    if isinstance(dataset, str):
        return Outcome(instance.path, instance.sop_instance_uid, FAILED, dataset)
    rq = command.c_store_rq(message_id, instance.sop_class_uid, instance.sop_instance_uid)
    association.send_message(context_id, rq, dataset)
    answer = association.receive_command()
    status = answer.get(command.STATUS)
    if answer.get(command.COMMAND_FIELD) != command.C_STORE_RSP or status is None:
        raise SendError(
            f"{association.target.url}: the archive answered a C-STORE-RQ with {command.command_name(answer)} without a status"
        )
    if answer.get(command.RESPONDED_MESSAGE_ID) != message_id:
        raise SendError(
            f"{association.target.url}: the archive answered message {answer.get(command.RESPONDED_MESSAGE_ID)} "
            f"when message {message_id} was sent"
        )
    if status == command.SUCCESS:
        return Outcome(instance.path, instance.sop_instance_uid, STORED)
    words = command.status_words(status)
    comment = answer.get(command.ERROR_COMMENT)
    if comment:
        words += f": {comment}"
    return Outcome(instance.path, instance.sop_instance_uid, WARNING if command.is_warning(status) else FAILED, words)


def _retry_or_raise(exc, failures, retries, backoff, report, target):
    """Sleep before the next try and return the failures in a row; SendError when the retries are spent."""
    if failures >= retries:
        stored = report.count(STORED) + report.count(WARNING)
        tries = "once" if failures == 0 else f"{failures + 1} times in a row"
        raise SendError(
            f"{target.url}: {exc} (tried {tries}); {stored} of {len(report.outcomes)} instances stored; "
            "a rerun sends them all again",
            report,
        ) from None
    time.sleep(backoff * 2**failures)
    return failures + 1


def _deadline_words(target, deadline, report):
    stored = report.count(STORED) + report.count(WARNING)
    return (
        f"{target.url}: the association took longer than the deadline of {deadline:g} s; "
        f"{stored} of {len(report.outcomes)} instances stored"
    )
