"""What compressed data can hold, checked before anything is inflated.

Deflate (zlib, gzip) spends at least 2 bits on every 258 bytes it gives back, so
no stream inflates to more than 1032 times its size (zlib's technical notes,
"maximum compression factor"). A header that declares more than its compressed
data can give is refused before a byte is inflated: a small file declaring a
gibibyte never costs a gibibyte of memory.
"""

DEFLATE_MOST = 1032


def cannot_inflate_to(compressed_bytes, needed_bytes):
    """True when ``compressed_bytes`` of deflate data (zlib or gzip) cannot inflate to ``needed_bytes``."""
    return compressed_bytes * DEFLATE_MOST < needed_bytes
