"""UIDs: random ones by the 2.25 UUID method, or reproducible ones from a seed.

PS3.5 B.2: "2.25." followed by the decimal value of a 128-bit UUID needs no
registered root and is at most 44 characters long.
"""

import os
import re
import uuid

from .. import __version__

_UID_RE = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*", re.ASCII)  # \d: 0-9 only

# Reproducible UIDs are name-based (version 5) UUIDs in dcmforge's own namespace.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://dcmforge.invalid/uid")

# The writer of every file; it changes with the version so a file's writer can be pinned.
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(_NAMESPACE, f'dcmforge {__version__}').int}"
IMPLEMENTATION_VERSION_NAME = "DCMFORGE_" + __version__.replace(".", "_")


def is_valid_uid(text):
    """True for digits and dots, no leading zero in a component, at most 64 characters."""
    return isinstance(text, str) and len(text) <= 64 and _UID_RE.fullmatch(text) is not None


def new_uid(seed=None, *names):
    """A new UID: random when seed is None, else the same for the same seed and names.

    >>> new_uid("run-7", "series", 1) == new_uid("run-7", "series", 1)
    True
    """
    if seed is None:
        return f"2.25.{uuid.uuid4().int}"
    # Each part prefixed with its length, so ("a/b",) and ("a", "b") stay different.
    name = "".join(f"{len(part)}:{part}" for part in map(str, (seed, *names)))
    return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"


def new_uids(count, seed=None, *names):
    """``count`` new UIDs: new_uid(seed, *names, n) for n in range(count), the random ones from one urandom call.

    Random UIDs are version 4 UUIDs, as ``uuid.uuid4`` makes them.
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


# uuid.UUID(version=4): the variant bits 10 (RFC 4122) and the version nibble 4.
_NOT_VERSION_OR_VARIANT = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_4_RFC_4122 = (0x8000 << 48) | (4 << 76)
