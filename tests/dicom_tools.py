"""Run the external DICOM checkers (dicom3tools, dcmtk) on files and collect what they report.

    report = dciodvfy(path)       # IOD check of one file
    report = dcentvfy(paths)      # cross-file Patient/Study/Series consistency
    report = dcmdump(path)        # parse with dcmtk; report.output is the dump
    assert report.errors == [], report.output

    elements = read_elements(data)  # a strict reader of Explicit VR LE bytes, for byte-level checks

Each returns a ``Report``. When the program is not installed the calling test
is skipped (``pytest.skip``), so the suite still runs where they are missing.
"""

import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

_TIMEOUT = 120  # seconds; these tools take well under a second per small file


class Report(NamedTuple):
    errors: list[str]  # one line per error the tool reported (or its exit status if it gave none)
    warnings: list[str]
    output: str  # stdout and stderr of the run, for assertion messages
    returncode: int


def available(program):
    """True when ``program`` is on PATH."""
    return shutil.which(program) is not None


def require(program):
    """Skip the calling test when ``program`` is not installed; under CI, fail it.

    CI installs every tool (tools/bootstrap.sh): a missing one there is a broken
    set-up, and a skip would hide it.
    """
    if not available(program):
        message = f"{program} is not installed (tools/bootstrap.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _run(arguments, error_prefix, warning_prefix):
    require(arguments[0])
    done = subprocess.run(
        [str(argument) for argument in arguments], capture_output=True, text=True, errors="replace", timeout=_TIMEOUT
    )
    output = done.stdout + done.stderr
    # Only stderr carries diagnostics; stdout can hold dumped values that happen to start with "E:" etc.
    lines = [line.strip() for line in done.stderr.splitlines()]
    errors = [line for line in lines if line.startswith(error_prefix)]
    warnings = [line for line in lines if line.startswith(warning_prefix)]
    if done.returncode != 0 and not errors:
        errors.append(f"{arguments[0]} exited with status {done.returncode}")
    return Report(errors, warnings, output, done.returncode)


def dciodvfy(path):
    """Check one file against its IOD (dicom3tools)."""
    return _run(["dciodvfy", "-filename", Path(path)], "Error", "Warning")


def dcentvfy(paths):
    """Check that files agree on their Patient, Study, Series and Frame of Reference (dicom3tools)."""
    return _run(["dcentvfy", *map(Path, paths)], "Error", "Warning")


def dcmdump(path):
    """Parse one file with dcmtk; ``output`` holds the dump with long values printed in full."""
    return _run(["dcmdump", "+L", Path(path)], "E:", "W:")


# -- a strict reader of Explicit VR Little Endian bytes, independent of dcmforge ---------------

LONG_HEADER_VRS = frozenset("OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
ITEM_TAG = 0xFFFEE000


class Element(NamedTuple):
    tag: int
    vr: str
    value: bytes  # the value field as written (pads included); b"" for a sequence
    items: list  # a sequence's items, each a list of Element; [] otherwise


def read_elements(data):
    """Every element of ``data`` (one dataset level), nested items read too.

    Strict: a length that runs past the end, an undefined length, an odd
    length, or bytes left over raise AssertionError naming the offset.
    """
    elements, offset = [], 0
    while offset < len(data):
        assert offset + 8 <= len(data), f"truncated element header at offset {offset}"
        group, element, vr = struct.unpack_from("<HH2s", data, offset)
        tag, vr = group << 16 | element, vr.decode("ascii")
        if vr in LONG_HEADER_VRS:
            assert data[offset + 6 : offset + 8] == b"\0\0", f"reserved bytes not zero at offset {offset}"
            (length,) = struct.unpack_from("<I", data, offset + 8)
            offset += 12
        else:
            (length,) = struct.unpack_from("<H", data, offset + 6)
            offset += 8
        assert length != 0xFFFFFFFF, f"undefined length for ({group:04X},{element:04X})"
        assert length % 2 == 0, f"odd length {length} for ({group:04X},{element:04X})"
        assert offset + length <= len(data), f"({group:04X},{element:04X}) runs past the end"
        value = data[offset : offset + length]
        offset += length
        if vr == "SQ":
            elements.append(Element(tag, vr, b"", _read_items(value)))
        else:
            elements.append(Element(tag, vr, value, []))
    return elements


def _read_items(data):
    items, offset = [], 0
    while offset < len(data):
        tag_group, tag_element, length = struct.unpack_from("<HHI", data, offset)
        assert (tag_group << 16 | tag_element) == ITEM_TAG, f"not an item tag at offset {offset}"
        assert length != 0xFFFFFFFF, "undefined item length"
        assert offset + 8 + length <= len(data), "item runs past the end of its sequence"
        items.append(read_elements(data[offset + 8 : offset + 8 + length]))
        offset += 8 + length
    return items
