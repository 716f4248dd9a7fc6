"""The DIMSE command set (PS3.7 E.1) of C-ECHO and C-STORE, in Implicit VR Little Endian, and its statuses.

A command is group 0000 alone: its group length first, then the elements in
ascending tag order, each a tag, a 4-byte length and the value (PS3.5 7.1.3).
``decode_command`` raises only SendError, whatever bytes it is given.
"""

import struct

from ..errors import SendError

# Command elements: tag -> VR (PS3.7 E.1-1). Only these VRs are read; any other element of group 0000 is skipped.
GROUP_LENGTH = 0x00000000
AFFECTED_SOP_CLASS = 0x00000002
COMMAND_FIELD = 0x00000100
MESSAGE_ID = 0x00000110
RESPONDED_MESSAGE_ID = 0x00000120
PRIORITY = 0x00000700
DATA_SET_TYPE = 0x00000800
STATUS = 0x00000900
OFFENDING_ELEMENT = 0x00000901
ERROR_COMMENT = 0x00000902
ERROR_ID = 0x00000903
AFFECTED_SOP_INSTANCE = 0x00001000
VRS = {
    GROUP_LENGTH: "UL",
    AFFECTED_SOP_CLASS: "UI",
    COMMAND_FIELD: "US",
    MESSAGE_ID: "US",
    RESPONDED_MESSAGE_ID: "US",
    PRIORITY: "US",
    DATA_SET_TYPE: "US",
    STATUS: "US",
    OFFENDING_ELEMENT: "AT",
    ERROR_COMMENT: "LO",
    ERROR_ID: "US",
    AFFECTED_SOP_INSTANCE: "UI",
}

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
COMMAND_NAMES = {C_STORE_RQ: "C-STORE-RQ", C_STORE_RSP: "C-STORE-RSP", C_ECHO_RQ: "C-ECHO-RQ", C_ECHO_RSP: "C-ECHO-RSP"}
NO_DATA_SET = 0x0101  # CommandDataSetType when no data set follows; any other value says one does
HAS_DATA_SET = 0x0000
PRIORITY_MEDIUM = 0x0000
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"

SUCCESS = 0x0000
# What a status means (PS3.7 C, PS3.4 B.2.3 for C-STORE): (mask, value, words, is a warning), exact codes first.
_STATUSES = (
    (0xFFFF, 0x0000, "success", False),
    (0xFFFF, 0x0001, "warning", True),
    (0xFFFF, 0x0107, "attribute list error", True),
    (0xFFFF, 0x0116, "attribute value out of range", True),
    (0xFFFF, 0xB000, "coercion of data elements", True),
    (0xFFFF, 0xB006, "elements discarded", True),
    (0xFFFF, 0xB007, "data set does not match SOP class", True),
    (0xFFFF, 0xC122, "transfer syntax not supported", False),
    (0xFFFF, 0x0110, "processing failure", False),
    (0xFFFF, 0x0111, "duplicate SOP instance", False),
    (0xFFFF, 0x0117, "invalid SOP instance", False),
    (0xFFFF, 0x0122, "SOP class not supported", False),
    (0xFFFF, 0x0124, "not authorized", False),
    (0xFFFF, 0x0210, "duplicate invocation", False),
    (0xFFFF, 0x0211, "unrecognised operation", False),
    (0xFFFF, 0x0212, "mistyped argument", False),
    (0xFFFF, 0x0213, "resource limitation", False),
    (0xFFFF, 0xFE00, "cancelled", False),
    (0xF000, 0xB000, "warning", True),
    (0xFF00, 0xA700, "out of resources", False),
    (0xFF00, 0xA900, "data set does not match SOP class", False),
    (0xF000, 0xC000, "cannot understand", False),
)


def status_words(code):
    """A status (or a STOW-RS FailureReason or WarningReason) in words with its code: 'out of resources (0xA701)'."""
    meaning = next((words for mask, value, words, _ in _STATUSES if code & mask == value), "unknown reason")
    return f"{meaning} (0x{code:04X})"


def is_warning(code):
    """Whether a status says the instance was stored, with a warning (PS3.7 C.3)."""
    return next((warning for mask, value, _, warning in _STATUSES if code & mask == value), False)


def encode_command(elements):
    """The command set of ``elements`` (tag -> int or str, group 0000 tags of VRS), its group length first."""
    body = b"".join(_element(tag, value) for tag, value in sorted(elements.items()) if tag != GROUP_LENGTH)
    return _element(GROUP_LENGTH, len(body)) + body


def c_echo_rq(message_id):
    return encode_command(
        {
            AFFECTED_SOP_CLASS: VERIFICATION_SOP_CLASS,
            COMMAND_FIELD: C_ECHO_RQ,
            MESSAGE_ID: message_id,
            DATA_SET_TYPE: NO_DATA_SET,
        }
    )


def c_store_rq(message_id, sop_class_uid, sop_instance_uid, priority=PRIORITY_MEDIUM):
    return encode_command(
        {
            AFFECTED_SOP_CLASS: sop_class_uid,
            COMMAND_FIELD: C_STORE_RQ,
            MESSAGE_ID: message_id,
            PRIORITY: priority,
            DATA_SET_TYPE: HAS_DATA_SET,
            AFFECTED_SOP_INSTANCE: sop_instance_uid,
        }
    )


def _element(tag, value):
    vr = VRS[tag]
    if vr == "UL":
        data = struct.pack("<I", value)
    elif vr == "US":
        data = struct.pack("<H", value)
    elif vr == "AT":
        data = b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in value)
    else:
        data = value.encode("ascii")
        if len(data) % 2:
            data += b"\0" if vr == "UI" else b" "
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(data)) + data


def decode_command(data):
    """The elements of a command set (tag -> int, str or tuple of tags); SendError for anything malformed."""
    elements, at = {}, 0
    while at < len(data):
        if at + 8 > len(data):
            raise SendError(f"the archive sent a command set cut short at byte {at} of {len(data)}")
        group, number, length = struct.unpack_from("<HHI", data, at)
        tag = (group << 16) | number
        if group != 0x0000:
            raise SendError(
                f"the archive sent a command set with element ({group:04X},{number:04X}) outside group 0000"
            )
        if at + 8 + length > len(data):
            raise SendError(
                f"the archive sent a command set whose element (0000,{number:04X}) claims {length} bytes past its end"
            )
        value = bytes(data[at + 8 : at + 8 + length])
        at += 8 + length
        vr = VRS.get(tag)
        if vr in ("UL", "US"):
            size = 4 if vr == "UL" else 2
            if length != size:
                raise SendError(
                    f"the archive sent a command set whose element (0000,{number:04X}) is {length} bytes, not {size}"
                )
            elements[tag] = int.from_bytes(value, "little")
        elif vr == "AT":
            if length % 4:
                raise SendError(
                    f"the archive sent a command set whose element (0000,{number:04X}) is {length} bytes, not tags"
                )
            elements[tag] = tuple((g << 16) | e for g, e in struct.iter_unpack("<HH", value))
        elif vr:
            elements[tag] = value.decode("ascii", "replace").strip(" \0")
    return elements


def command_name(elements):
    field = elements.get(COMMAND_FIELD)
    return COMMAND_NAMES.get(field, "a command without a Command Field" if field is None else f"command 0x{field:04X}")
