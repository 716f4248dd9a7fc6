"""The image every reader returns: Interfile (:mod:`dcmforge.readers.interfile`), NIfTI-1/NIfTI-2
(:mod:`dcmforge.readers.nifti`) and MetaImage (:mod:`dcmforge.readers.metaimage`); :mod:`dcmforge.readers.choose`
picks the reader for a file.

Each reader gives a volume [z, y, x] or [t, z, y, x], the index -> LPS affine of voxel
centres, metadata in dcmforge's keys, and every assumption it made as a warning.
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np

INTERFILE, NIFTI, METAIMAGE = "Interfile", "NIfTI", "MetaImage"


class Image(NamedTuple):
    """An input image as dcmforge uses it, whatever file it came from.

    volume: [z, y, x] or [t, z, y, x]; a numpy array or memmap, or an array-like that
    scales the part it is indexed with (readers.lazy.LazyVolume). affine: 4x4, index
    (i = column = last numpy axis, j = row, k = slice, 1) -> LPS mm of voxel centres.
    spacing: (dx, dy, dz), positive mm. convention: one line saying how the file's
    frame was turned into LPS. keys: the header's keys and values as read.
    """

    header_path: Path
    data_path: Path
    format: str  # INTERFILE, NIFTI or METAIMAGE
    dialect: str  # Interfile's dialect; for the others the format's version ("NIfTI-1", "MetaImage")
    volume: object
    affine: np.ndarray
    spacing: tuple
    convention: str
    metadata: dict
    warnings: list
    keys: dict
