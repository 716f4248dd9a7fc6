"""The axis order of a volume given to the writers: dcmforge's [z, y, x] or nibabel's [i, j, k].

dcmforge indexes a volume [z, y, x] (slice, row, column; [t, z, y, x] when
dynamic) and reads an affine as acting on (x, y, z, 1): its first column is
the step of one column. nibabel and NIfTI index an array [i, j, k] ([i, j, k,
t]) with the affine acting on (i, j, k, 1), so one affine describes both
``array`` in nibabel's order and ``array.T`` in dcmforge's. Which of the two
an array is cannot be seen from it: an array given with an affine must say
(``axes="xyz"`` or ``"zyx"``), and a nibabel image says it itself. Nothing is
transposed that the caller did not name.
"""

import numpy as np

from ..errors import DcmforgeError, GeometryError, VolumeError

ZYX = "zyx"  # [z, y, x] or [t, z, y, x]: dcmforge's own order
XYZ = "xyz"  # [x, y, z] or [x, y, z, t]: nibabel's [i, j, k] (img.get_fdata(), img.dataobj)
AXES = (ZYX, XYZ)

# The options a nibabel image brings itself.
_IMAGE_GEOMETRY = ("affine", "affine_convention", "spacing", "axes")


def is_nibabel_image(volume):
    """True for a nibabel spatial image (or anything with ``.affine`` and ``.dataobj``)."""
    return hasattr(volume, "affine") and hasattr(volume, "dataobj")


def check_axes(axes, affine):
    """The axis order named by ``axes`` ("zyx" when not named and no affine is given)."""
    if axes is None:
        if affine is not None:
            raise GeometryError(
                'an array given with affine= must say its axis order: axes="xyz" for nibabel\'s [i, j, k] '
                '(img.get_fdata(); or give the nibabel image itself), axes="zyx" for [slice, row, column]'
            )
        return ZYX
    if axes not in AXES:
        raise DcmforgeError(f'axes={axes!r:.60}: "zyx" ([z, y, x] or [t, z, y, x]) or "xyz" (nibabel\'s [i, j, k] or [i, j, k, t])')
    return axes


def volume_in_zyx(volume, options):
    """(the volume as an array [z, y, x] or [t, z, y, x], the options with its geometry and axes="zyx").

    A nibabel image gives its data (``dataobj``, scaled as nibabel scales it)
    and its affine (RAS+); an array in nibabel's order is transposed (a view,
    no copy) because the caller said ``axes="xyz"``.
    """
    if is_nibabel_image(volume):
        given = [name for name in _IMAGE_GEOMETRY if options.get(name) is not None]
        if given:
            raise GeometryError(
                f"{given[0]}=: a nibabel image brings its own geometry (its affine, RAS+, over its array [i, j, k]); "
                'give the image alone, or its array with axes="xyz"'
            )
        array = np.asanyarray(volume.dataobj)
        if array.ndim not in (3, 4):
            raise VolumeError(f"a nibabel image must be 3-D [i, j, k] or 4-D [i, j, k, t], got shape {array.shape}")
        return array.T, {**options, "affine": np.asarray(volume.affine), "affine_convention": "RAS", "axes": ZYX}
    if not isinstance(volume, np.ndarray):  # lists and other array-likes; arrays and memmaps are not copied
        volume = np.asarray(volume)
    if check_axes(options.get("axes"), options.get("affine")) == XYZ:
        volume = volume.T
    return volume, {**options, "axes": ZYX}
