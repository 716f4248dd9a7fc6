"""The DICOM upper layer's protocol data units (PS3.8 9.3), as plain values, and their bytes.

Every PDU starts with a type byte, a reserved byte and a 4-byte big endian
length of what follows. ``encode`` turns a PDU value into its bytes and
``decode`` does the reverse for the body after that header; ``decode`` raises
only SendError, whatever bytes it is given (an archive's answer is input).
Items a client need not understand (asynchronous operations, role selection,
extended negotiation) are skipped when decoded, as PS3.8 9.3.1 allows.
"""

import struct
from dataclasses import dataclass

from ..errors import SendError

ASSOCIATE_RQ = 0x01
ASSOCIATE_AC = 0x02
ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
RELEASE_RQ = 0x05
RELEASE_RP = 0x06
ABORT = 0x07

HEADER_LENGTH = 6  # type, reserved, 4-byte length
PDV_HEADER_LENGTH = 6  # 4-byte item length, presentation context ID, message control header
PROTOCOL_VERSION = 1
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # the DICOM Application Context Name (PS3.7 A.2.1)

PDU_TYPES = {ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA_TF, RELEASE_RQ, RELEASE_RP, ABORT}

# Item types of the variable fields (PS3.8 9.3.2, 9.3.3).
_APPLICATION_CONTEXT_ITEM = 0x10
_CONTEXT_RQ_ITEM = 0x20
_CONTEXT_AC_ITEM = 0x21
_ABSTRACT_SYNTAX_ITEM = 0x30
_TRANSFER_SYNTAX_ITEM = 0x40
_USER_INFORMATION_ITEM = 0x50
_MAX_LENGTH_ITEM = 0x51
_IMPLEMENTATION_UID_ITEM = 0x52
_IMPLEMENTATION_VERSION_ITEM = 0x55
_AE_LENGTH = 16

# The message control header of a PDV (PS3.8 E.2): bit 0 command/data, bit 1 last fragment.
_COMMAND_BIT = 0x01
_LAST_BIT = 0x02

# A presentation context's result in an A-ASSOCIATE-AC (PS3.8 table 9-18).
ACCEPTED = 0
CONTEXT_RESULTS = {
    0: "acceptance",
    1: "user rejection",
    2: "no reason (provider rejection)",
    3: "abstract syntax not supported",
    4: "transfer syntaxes not supported",
}
# A-ASSOCIATE-RJ (PS3.8 table 9-21): result, and the reason by (source, reason).
REJECT_RESULTS = {1: "rejected permanently", 2: "rejected transiently"}
REJECTED_TRANSIENTLY = 2
CALLING_AE_NOT_RECOGNISED = (1, 3)  # (source, reason)
CALLED_AE_NOT_RECOGNISED = (1, 7)
REJECT_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised",
    (2, 1): "no reason given (by the ACSE service provider)",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}
# A-ABORT (PS3.8 table 9-26): reasons when the source is the service provider (2).
ABORT_REASONS = {
    0: "reason not specified",
    1: "unrecognised PDU",
    2: "unexpected PDU",
    4: "unrecognised PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}
ABORT_UNRECOGNISED_PDU = 1
ABORT_UNEXPECTED_PDU = 2
ABORT_INVALID_PARAMETER = 6
ABORT_SOURCES = {
    0: "the archive (service user)",
    1: "reserved source",
    2: "the archive's network layer (service provider)",
}


@dataclass(frozen=True)
class PresentationContext:
    """One proposed presentation context: its odd ID, one abstract syntax (SOP class), the transfer syntaxes offered."""

    id: int
    abstract_syntax: str
    transfer_syntaxes: tuple


@dataclass(frozen=True)
class ContextResult:
    """The archive's answer to one presentation context: a result (0 accepted) and the transfer syntax it chose."""

    id: int
    result: int
    transfer_syntax: str


@dataclass(frozen=True)
class AssociateRQ:
    called_ae: str
    calling_ae: str
    contexts: tuple  # of PresentationContext
    max_pdu_length: int  # the largest P-DATA-TF this side receives (0: no limit)
    implementation_uid: str
    implementation_version: str = ""
    application_context: str = APPLICATION_CONTEXT


@dataclass(frozen=True)
class AssociateAC:
    called_ae: str
    calling_ae: str
    results: tuple  # of ContextResult
    max_pdu_length: int
    implementation_uid: str
    implementation_version: str = ""
    application_context: str = APPLICATION_CONTEXT


@dataclass(frozen=True)
class AssociateRJ:
    result: int
    source: int
    reason: int

    def words(self):
        """The rejection in words: 'called AE title not recognised (rejected permanently)'."""
        reason = REJECT_REASONS.get((self.source, self.reason), f"reason {self.reason} from source {self.source}")
        return f"{reason} ({REJECT_RESULTS.get(self.result, f'result {self.result}')})"


@dataclass(frozen=True)
class PDV:
    """One presentation data value: a fragment of a command or data set."""

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes


@dataclass(frozen=True)
class PData:
    values: tuple  # of PDV


@dataclass(frozen=True)
class ReleaseRQ:
    pass


@dataclass(frozen=True)
class ReleaseRP:
    pass


@dataclass(frozen=True)
class Abort:
    source: int
    reason: int

    def words(self):
        reason = ABORT_REASONS.get(self.reason, f"reason {self.reason}") if self.source == 2 else "no reason given"
        return f"{ABORT_SOURCES.get(self.source, f'source {self.source}')} aborted the association: {reason}"


# -- encoding --------------------------------------------------------------------------


def encode(pdu):
    """The bytes of a PDU value, header included."""
    if isinstance(pdu, (AssociateRQ, AssociateAC)):
        pdu_type = ASSOCIATE_RQ if isinstance(pdu, AssociateRQ) else ASSOCIATE_AC
        fixed = struct.pack(">HH", PROTOCOL_VERSION, 0) + _ae(pdu.called_ae) + _ae(pdu.calling_ae) + bytes(32)
        items = [_item(_APPLICATION_CONTEXT_ITEM, pdu.application_context.encode("ascii"))]
        if isinstance(pdu, AssociateRQ):
            items += [_context_rq(context) for context in pdu.contexts]
        else:
            items += [_context_ac(result) for result in pdu.results]
        items.append(_user_information(pdu))
        return _pdu(pdu_type, fixed + b"".join(items))
    if isinstance(pdu, AssociateRJ):
        return _pdu(ASSOCIATE_RJ, bytes([0, pdu.result, pdu.source, pdu.reason]))
    if isinstance(pdu, PData):
        return _pdu(
            P_DATA_TF,
            b"".join(pdv_header(v.context_id, v.is_command, v.is_last, len(v.data)) + v.data for v in pdu.values),
        )
    if isinstance(pdu, ReleaseRQ):
        return _pdu(RELEASE_RQ, bytes(4))
    if isinstance(pdu, ReleaseRP):
        return _pdu(RELEASE_RP, bytes(4))
    if isinstance(pdu, Abort):
        return _pdu(ABORT, bytes([0, 0, pdu.source, pdu.reason]))
    raise TypeError(f"not a PDU: {type(pdu).__name__}")


def pdata_header(context_id, is_command, is_last, length):
    """The PDU header and PDV item header of a P-DATA-TF carrying one fragment of ``length`` bytes."""
    return struct.pack(">BBI", P_DATA_TF, 0, PDV_HEADER_LENGTH + length) + pdv_header(
        context_id, is_command, is_last, length
    )


def pdv_header(context_id, is_command, is_last, length):
    control = (_COMMAND_BIT if is_command else 0) | (_LAST_BIT if is_last else 0)
    return struct.pack(">IBB", 2 + length, context_id, control)


def _pdu(pdu_type, body):
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def _item(item_type, value):
    if len(value) > 0xFFFF:
        raise SendError(f"an item of type 0x{item_type:02X} is {len(value)} bytes, more than 65535")
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _ae(title):
    """An AE title in its 16-byte field, padded with spaces."""
    return title.encode("ascii").ljust(_AE_LENGTH, b" ")


def _context_rq(context):
    syntaxes = [_item(_ABSTRACT_SYNTAX_ITEM, context.abstract_syntax.encode("ascii"))]
    syntaxes += [_item(_TRANSFER_SYNTAX_ITEM, uid.encode("ascii")) for uid in context.transfer_syntaxes]
    return _item(_CONTEXT_RQ_ITEM, bytes([context.id, 0, 0, 0]) + b"".join(syntaxes))


def _context_ac(result):
    syntax = _item(_TRANSFER_SYNTAX_ITEM, result.transfer_syntax.encode("ascii"))
    return _item(_CONTEXT_AC_ITEM, bytes([result.id, 0, result.result, 0]) + syntax)


def _user_information(pdu):
    items = [_item(_MAX_LENGTH_ITEM, struct.pack(">I", pdu.max_pdu_length))]
    items.append(_item(_IMPLEMENTATION_UID_ITEM, pdu.implementation_uid.encode("ascii")))
    if pdu.implementation_version:
        items.append(_item(_IMPLEMENTATION_VERSION_ITEM, pdu.implementation_version.encode("ascii")))
    return _item(_USER_INFORMATION_ITEM, b"".join(items))


# -- decoding --------------------------------------------------------------------------


def decode(pdu_type, body):
    """The PDU value of a body (the bytes after the 6-byte header); SendError for anything malformed."""
    if pdu_type in (ASSOCIATE_RQ, ASSOCIATE_AC):
        return _decode_associate(pdu_type, body)
    if pdu_type in (ASSOCIATE_RJ, ABORT, RELEASE_RQ, RELEASE_RP):
        if len(body) != 4:
            raise SendError(f"the archive sent a PDU of type 0x{pdu_type:02X} of {len(body)} bytes, not 4")
        if pdu_type == ASSOCIATE_RJ:
            return AssociateRJ(body[1], body[2], body[3])
        if pdu_type == ABORT:
            return Abort(body[2], body[3])
        return ReleaseRQ() if pdu_type == RELEASE_RQ else ReleaseRP()
    if pdu_type == P_DATA_TF:
        return PData(tuple(_decode_pdvs(body)))
    raise SendError(f"the archive sent an unknown PDU type 0x{pdu_type:02X}")


def _decode_pdvs(body):
    at = 0
    while at < len(body):
        if at + PDV_HEADER_LENGTH > len(body):
            raise SendError("the archive sent a P-DATA-TF whose last PDV item is cut short")
        length, context_id, control = struct.unpack_from(">IBB", body, at)
        if length < 2 or at + 4 + length > len(body):
            raise SendError(f"the archive sent a P-DATA-TF with a PDV item length of {length} in {len(body)} bytes")
        yield PDV(
            context_id, bool(control & _COMMAND_BIT), bool(control & _LAST_BIT), bytes(body[at + 6 : at + 4 + length])
        )
        at += 4 + length


def _decode_associate(pdu_type, body):
    name = "A-ASSOCIATE-RQ" if pdu_type == ASSOCIATE_RQ else "A-ASSOCIATE-AC"
    if len(body) < 68:
        raise SendError(f"the archive sent an {name} of {len(body)} bytes, shorter than its 68 fixed ones")
    called, calling = _text(body[4:20]), _text(body[20:36])
    fields = {
        "application_context": "",
        "contexts": [],
        "max_pdu_length": 0,
        "implementation_uid": "",
        "implementation_version": "",
    }
    for item_type, value in _items(body[68:], name):
        if item_type == _APPLICATION_CONTEXT_ITEM:
            fields["application_context"] = _text(value)
        elif item_type == _CONTEXT_RQ_ITEM and pdu_type == ASSOCIATE_RQ:
            fields["contexts"].append(_decode_context_rq(value, name))
        elif item_type == _CONTEXT_AC_ITEM and pdu_type == ASSOCIATE_AC:
            fields["contexts"].append(_decode_context_ac(value, name))
        elif item_type == _USER_INFORMATION_ITEM:
            for sub_type, sub in _items(value, name):
                if sub_type == _MAX_LENGTH_ITEM:
                    if len(sub) != 4:
                        raise SendError(
                            f"the archive sent an {name} whose maximum length item is {len(sub)} bytes, not 4"
                        )
                    fields["max_pdu_length"] = struct.unpack(">I", sub)[0]
                elif sub_type == _IMPLEMENTATION_UID_ITEM:
                    fields["implementation_uid"] = _text(sub)
                elif sub_type == _IMPLEMENTATION_VERSION_ITEM:
                    fields["implementation_version"] = _text(sub)
    contexts = tuple(fields.pop("contexts"))
    if pdu_type == ASSOCIATE_RQ:
        return AssociateRQ(called, calling, contexts, **fields)
    return AssociateAC(called, calling, contexts, **fields)


def _decode_context_rq(value, name):
    if len(value) < 4:
        raise SendError(f"the archive sent an {name} with a presentation context item of {len(value)} bytes")
    abstract, transfers = "", []
    for sub_type, sub in _items(value[4:], name):
        if sub_type == _ABSTRACT_SYNTAX_ITEM:
            abstract = _text(sub)
        elif sub_type == _TRANSFER_SYNTAX_ITEM:
            transfers.append(_text(sub))
    return PresentationContext(value[0], abstract, tuple(transfers))


def _decode_context_ac(value, name):
    if len(value) < 4:
        raise SendError(f"the archive sent an {name} with a presentation context item of {len(value)} bytes")
    transfer = next((_text(sub) for sub_type, sub in _items(value[4:], name) if sub_type == _TRANSFER_SYNTAX_ITEM), "")
    return ContextResult(value[0], value[2], transfer)


def _items(data, name):
    """(item type, value) of each item in a variable field: a type byte, a reserved byte, a 2-byte length."""
    at = 0
    while at < len(data):
        if at + 4 > len(data):
            raise SendError(f"the archive sent an {name} whose last item is cut short")
        item_type, _, length = struct.unpack_from(">BBH", data, at)
        if at + 4 + length > len(data):
            raise SendError(
                f"the archive sent an {name} whose item of type 0x{item_type:02X} claims {length} bytes past its end"
            )
        yield item_type, bytes(data[at + 4 : at + 4 + length])
        at += 4 + length


def _text(data):
    """A UID or AE title field: ASCII, without the padding (spaces, NULs) either end."""
    return bytes(data).decode("ascii", "replace").strip(" \0")
