"""PNG files from numpy arrays with the standard library (PNG specification, ISO/IEC 15948).

8-bit greyscale ([rows, columns]) or RGB ([rows, columns, 3]) only: what a
preview needs. Each row gets filter type 0 (none); zlib does the rest.
"""

import struct
import zlib

import numpy as np

from ..dicom.part10 import write_atomic
from ..errors import PreviewError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# zlib level 1: a preview's flat black margins and windowed images shrink almost as much as
# at the default level 6, in a fifth of the time (12 ms against 59 ms for a 755 x 371 picture of noise).
COMPRESSION = 1
# channels -> PNG colour type (greyscale 0, truecolour 2)
_COLOUR_TYPES = {1: 0, 3: 2}


def png_bytes(pixels):
    """The PNG file of an 8-bit [rows, columns] or [rows, columns, 3] array."""
    pixels = np.asarray(pixels)
    channels = 1 if pixels.ndim == 2 else pixels.shape[-1] if pixels.ndim == 3 else 0
    if pixels.dtype != np.uint8 or channels not in _COLOUR_TYPES or 0 in pixels.shape:
        raise PreviewError(f"a PNG needs uint8 pixels [rows, columns(, 3)], got {pixels.dtype} {pixels.shape}")
    rows, columns = pixels.shape[:2]
    scanlines = np.zeros((rows, 1 + columns * channels), np.uint8)  # a leading 0 per row: no filter
    scanlines[:, 1:] = pixels.reshape(rows, -1)
    header = struct.pack(">IIBBBBB", columns, rows, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"".join((
        _SIGNATURE,
        _chunk(b"IHDR", header),
        _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), COMPRESSION)),
        _chunk(b"IEND", b""),
    ))  # fmt: skip


def write_png(path, pixels):
    """Write pixels as a PNG at path through a temporary name (no half picture is ever seen)."""
    return write_atomic(path, [png_bytes(pixels)])


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
