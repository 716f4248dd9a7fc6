"""``read_image``: read any input dcmforge knows, choosing the reader by what the file is.

Interfile (:mod:`dcmforge.readers.interfile`), NIfTI-1/NIfTI-2 (:mod:`dcmforge.readers.nifti`)
and MetaImage (:mod:`dcmforge.readers.metaimage`); each returns a :class:`dcmforge.image.Image`. ``.hdr`` is both an Interfile header
and half of a NIfTI/Analyze pair, and CASToR writes Interfile ``.mhd`` files: those
are told apart by their first bytes.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, MetadataError
from ..image import INTERFILE, METAIMAGE, NIFTI, Image
from ..iods.codes import radionuclide
from ..paths import not_a_file, path_argument

# Suffixes that name one format alone; ".hdr" (Interfile or a NIfTI/Analyze pair) is decided by content.
_BY_SUFFIX = {
    ".hv": INTERFILE, ".h33": INTERFILE, ".hs": INTERFILE,
    ".nii": NIFTI, ".nii.gz": NIFTI,
    ".mha": METAIMAGE,
}  # fmt: skip
# NIfTI-1 (348-byte header, magic at 344) and NIfTI-2 (540 bytes, magic at 4), either byte order.
_NIFTI_SIZES = {348: (344, (b"ni1\0", b"n+1\0")), 540: (4, (b"ni2\0", b"n+2\0"))}


def image_format(path):
    """INTERFILE, NIFTI or METAIMAGE for the file at path, by suffix, else by its first bytes."""
    path = Path(path)
    name = path.name.lower()
    for suffix, kind in _BY_SUFFIX.items():
        if name.endswith(suffix):
            return kind
    try:
        with open(path, "rb") as file:
            start = file.read(4096)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if _is_nifti_header(start):
        return NIFTI
    text = start.decode("latin-1").lower()
    if name.endswith(".mhd") and ":=" not in text:
        return METAIMAGE  # CASToR's dynamic metaheaders are .mhd too, but Interfile text
    if "interfile" in text or ":=" in text:
        return INTERFILE
    if name.endswith(".hdr"):
        raise InputError(
            f"{path}: neither an Interfile header (no '!INTERFILE', no ':=') nor a NIfTI header "
            "(sizeof_hdr 348 or 540 with magic ni1/n+1/ni2)"
        )
    return INTERFILE  # any other name: the Interfile reader says what is wrong with it


def _is_nifti_header(start):
    if len(start) < 8:
        return False
    for order in "<>":
        size = int(np.frombuffer(start[:4], f"{order}i4")[0])
        where = _NIFTI_SIZES.get(size)
        if where and start[where[0] : where[0] + 4] in where[1]:
            return True
    return False


def read_image(
    path: str | os.PathLike,
    *,
    dialect: str | None = None,
    patient_position: str | None = None,
    first_voxel: Sequence[float] | None = None,
    spacing: Sequence[float] | None = None,
    flip: str | Sequence[str] = (),
    allow_data_outside: bool = False,
) -> Image:
    """Read any input dcmforge knows: Interfile, NIfTI-1/2 or MetaImage.

    Options (None, empty or False means not given): dialect, patient_position, flip (Interfile
    only), first_voxel (LPS mm of voxel [0, 0, 0]), spacing (mm, for a NIfTI file that
    has no geometry), allow_data_outside (Interfile, MetaImage: read a data file outside
    the header's folder). An option the format cannot use is an error, not silently dropped.
    """
    options = {"dialect": dialect, "patient_position": patient_position, "first_voxel": first_voxel,
               "spacing": spacing, "flip": flip, "allow_data_outside": allow_data_outside}  # fmt: skip
    given = {key: value for key, value in options.items() if value is not None and value != () and value is not False}
    path = path_argument(path, "read_image's path", InputError)
    what = not_a_file(path)
    if what:  # named as such, and a FIFO never waited on by a reader
        raise InputError(f"{path}: it is {what}, not a file")
    kind = image_format(path)
    if kind == INTERFILE:
        from .interfile import read_interfile as reader

        accepted = ("dialect", "patient_position", "first_voxel", "flip", "allow_data_outside")
    elif kind == NIFTI:
        from .nifti import read_nifti as reader

        accepted = ("first_voxel", "spacing")
    else:
        from .metaimage import read_metaimage as reader

        accepted = ("first_voxel", "allow_data_outside")
    unused = [key for key in given if key not in accepted]
    if unused:
        names = ", ".join("--" + key.replace("_", "-") for key in unused)
        raise InputError(f"{path}: {names} cannot be used with {kind} input")
    image = reader(path, **given)
    _drop_unknown_isotope(image)
    return image


def _drop_unknown_isotope(image):
    """An isotope name a file from the wild gives that dcmforge does not know is a warning, not a refusal:
    the image is good without its code (a name typed in a metadata file stays an error)."""
    name = image.metadata.get("isotope")
    if name is None:
        return
    try:
        radionuclide(name)
    except MetadataError:
        del image.metadata["isotope"]
        image.warnings.append(
            f"{image.header_path}: isotope {name!r} is not one dcmforge knows: written without "
            "RadionuclideCodeSequence, and without a half-life unless the header gives one"
        )
