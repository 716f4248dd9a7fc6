"""Every input reader, in one room; each returns a :class:`dcmforge.image.Image`.

* :mod:`dcmforge.readers.interfile`: Interfile in each dialect (STIR, CASToR, GATE, ...).
* :mod:`dcmforge.readers.nifti`: NIfTI-1 and NIfTI-2.
* :mod:`dcmforge.readers.metaimage`: MetaImage (``.mha``, ``.mhd``).
* :mod:`dcmforge.readers.lazy`: the scaled, memory-mapped volume the readers return.
* :mod:`dcmforge.readers.choose`: :func:`read_image`, the reader for a file by suffix and first bytes.

Nothing is imported here, so a reader loads only what it needs.
"""
