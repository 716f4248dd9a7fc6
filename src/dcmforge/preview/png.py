"""PNG files from numpy arrays with the standard library (PNG specification, ISO/IEC 15948).

8-bit greyscale ([rows, columns]), RGB ([rows, columns, 3]) or indexed
colour ([rows, columns] with a palette of at most 256 RGB colours) only: what
a preview needs. Each row gets filter type 0 (none); zlib does the rest.
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
_INDEXED = 3


def png_bytes(pixels, palette=None):
    """The PNG file of an 8-bit [rows, columns] or [rows, columns, 3] array.

    With ``palette`` (a list of (r, g, b)), pixels [rows, columns] are indices into it.
    """
    pixels = np.asarray(pixels)
    channels = 1 if pixels.ndim == 2 else pixels.shape[-1] if pixels.ndim == 3 else 0
    if pixels.dtype != np.uint8 or channels not in _COLOUR_TYPES or 0 in pixels.shape:
        raise PreviewError(f"a PNG needs uint8 pixels [rows, columns(, 3)], got {pixels.dtype} {pixels.shape}")
    chunks = []
    colour_type = _COLOUR_TYPES[channels]
    if palette is not None:
        colours = np.asarray(palette)
        if channels != 1 or colours.ndim != 2 or colours.shape[1] != 3 or not 0 < len(colours) <= 256 \
                or colours.min() < 0 or colours.max() > 255 or pixels.max() >= len(colours):  # fmt: skip
            raise PreviewError(f"a PNG palette is 1 to 256 (r, g, b) colours that every index names, got {palette!r}")
        chunks.append(_chunk(b"PLTE", colours.astype(np.uint8).tobytes()))
        colour_type = _INDEXED
    rows, columns = pixels.shape[:2]
    scanlines = np.zeros((rows, 1 + columns * channels), np.uint8)  # a leading 0 per row: no filter
    scanlines[:, 1:] = pixels.reshape(rows, -1)
    header = struct.pack(">IIBBBBB", columns, rows, 8, colour_type, 0, 0, 0)
    return b"".join((
        _SIGNATURE,
        _chunk(b"IHDR", header),
        *chunks,
        _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), COMPRESSION)),
        _chunk(b"IEND", b""),
    ))  # fmt: skip


def write_png(path, pixels, palette=None):
    """Write pixels as a PNG at path through a temporary name (no half picture is ever seen)."""
    return write_atomic(path, [png_bytes(pixels, palette)])


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
