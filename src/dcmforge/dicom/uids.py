"""UIDs: random ones by the 2.25 UUID method, or reproducible ones from a seed.

PS3.5 B.2: "2.25." followed by the decimal value of a 128-bit UUID needs no
registered root and is at most 44 characters long.
"""

import os
import re

from .. import __version__

_UID_RE = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*", re.ASCII)  # \d: 0-9 only

# Reproducible UIDs are name-based (version 5) UUIDs in dcmforge's own namespace, itself
# uuid.uuid5(uuid.NAMESPACE_URL, "https://dcmforge.invalid/uid"). RFC 4122 4.3 is written out (one SHA-1)
# rather than imported: the uuid module (or hashlib, for the seeded ones only) costs a short command more than
# all of this file.
_NAMESPACE = bytes.fromhex("2293586e2e895487b7418219417cb410")


def _uuid5(name):
    """The integer of the version 5 UUID of ``name`` in dcmforge's namespace, as uuid.uuid5(...).int."""
    from hashlib import sha1

    number = int.from_bytes(sha1(_NAMESPACE + name.encode()).digest()[:16], "big")
    return (number & _NOT_VERSION_OR_VARIANT) | _VERSION_5_RFC_4122


# The writer of every file: _uuid5(f"dcmforge {__version__}"), so that it changes with the version and a file's
# writer can be pinned; written out so that no hash runs at import (tests/test_uids.py holds it to the version).
IMPLEMENTATION_CLASS_UID = "2.25.258825281567867334393415430065251333652"
IMPLEMENTATION_VERSION_NAME = "DCMFORGE_" + __version__.replace(".", "_")


def is_valid_uid(text):
    """True for digits and dots, no leading zero in a component, at most 64 characters."""
    return isinstance(text, str) and len(text) <= 64 and _UID_RE.fullmatch(text) is not None


def new_uid(seed: object = None, *names: object) -> str:
    """A new UID: random when seed is None, else the same for the same seed and names.

    >>> new_uid("run-7", "series", 1) == new_uid("run-7", "series", 1)
    True
    """
    if seed is None:
        return new_uids(1)[0]
    # Each part prefixed with its length, so ("a/b",) and ("a", "b") stay different.
    name = "".join(f"{len(part)}:{part}" for part in map(str, (seed, *names)))
    return f"2.25.{_uuid5(name)}"


def new_uids(count, seed=None, *names):
    """``count`` new UIDs: new_uid(seed, *names, n) for n in range(count), the random ones from one urandom call.

    Random UIDs are version 4 UUIDs, as ``uuid.uuid4`` makes them (RFC 4122 4.4).
    """
    if seed is not None:
        return [new_uid(seed, *names, n) for n in range(count)]
    random = os.urandom(16 * count)
    uids = []
    for n in range(count):
        number = int.from_bytes(random[16 * n : 16 * n + 16], "big")
        number = (number & _NOT_VERSION_OR_VARIANT) | _VERSION_4_RFC_4122
        uids.append(f"2.25.{number}")
    return uids


# uuid.UUID(version=4 or 5): the variant bits 10 (RFC 4122) and the version nibble.
_NOT_VERSION_OR_VARIANT = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_4_RFC_4122 = (0x8000 << 48) | (4 << 76)
_VERSION_5_RFC_4122 = (0x8000 << 48) | (5 << 76)
