"""Slice-stack geometry in DICOM patient coordinates (LPS, millimetres).

One affine describes a volume indexed [z, y, x] (slice, row, column): its
columns are the steps, in LPS mm, of one column (x), one row (y) and one
slice (z); its translation is the centre of voxel [0, 0, 0]. Everything
DICOM wants (ImagePositionPatient per slice, ImageOrientationPatient,
PixelSpacing in row/column order, SliceThickness, SliceLocation) is read off
that affine, so the three ways of giving geometry cannot disagree.

PS3.3 C.7.6.2.1.1: ImageOrientationPatient holds the row direction (along a
row, i.e. increasing column index) then the column direction; PixelSpacing
holds the spacing between rows (y) then between columns (x).
"""

import math
from typing import NamedTuple

import numpy as np

from .errors import GeometryError

# How far from orthonormal direction cosines may be (rounding in headers writes 6-7 digits).
COSINE_TOLERANCE = 1e-4

# RAS (NIfTI, nibabel) and LPS (DICOM) differ by the sign of the first two axes.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


class Geometry(NamedTuple):
    """Index [z, y, x] -> LPS mm, as a 4x4 affine acting on (x, y, z, 1)."""

    affine: np.ndarray

    @property
    def spacing(self):
        """(dx, dy, dz): column, row and slice spacing in mm."""
        # np.linalg.norm's arithmetic (x*x + y*y + z*z in that order, then the root), on floats: for three
        # numbers a numpy call costs more than the arithmetic, and a series asks for the spacing several times.
        return tuple(math.sqrt(x * x + y * y + z * z) for x, y, z in zip(*self.affine[:3, :3].tolist()))

    @property
    def row_direction(self):
        return np.array(self._directions()[0])

    @property
    def column_direction(self):
        return np.array(self._directions()[1])

    @property
    def normal(self):
        """Row x column: the direction SliceLocation is measured along."""
        return np.array(_cross(*self._directions()))

    @property
    def image_orientation(self):
        row, column = self._directions()
        return [_tidy(v) for v in (*row, *column)]

    @property
    def pixel_spacing(self):
        dx, dy, _ = self.spacing
        return [dy, dx]

    @property
    def slice_thickness(self):
        return self.spacing[2]

    def image_positions(self, count):
        """Centre of the first pixel of slices 0..count-1, shape (count, 3)."""
        k = np.arange(count, dtype=np.float64)
        return self.affine[:3, 3] + k[:, None] * self.affine[:3, 2]

    def slice_locations(self, count):
        return self.image_positions(count) @ self.normal

    def _directions(self):
        """(row direction, column direction): the first two columns over their spacings, as lists of floats."""
        dx, dy, _ = self.spacing
        (x0, x1), (y0, y1), (z0, z1) = self.affine[:3, :2].tolist()
        return [x0 / dx, y0 / dx, z0 / dx], [x1 / dy, y1 / dy, z1 / dy]


def _tidy(value):
    """Snap cosines within rounding of 0 or +-1 to exact values (no "-1.2e-17" in headers)."""
    for exact in (0.0, 1.0, -1.0):
        if abs(value - exact) < 1e-12:
            return exact
    return float(value)


def from_spacing(spacing, origin=(0.0, 0.0, 0.0), orientation=(1, 0, 0, 0, 1, 0)):
    """Geometry from spacing (dx, dy, dz), origin (LPS of voxel [0,0,0]) and the 6 cosines.

    Slices advance along row x column (for the default orientation: +z, towards the head).
    """
    spacing = finite_vector(spacing, 3, "spacing")
    origin = finite_vector(origin, 3, "origin")
    cosines = finite_vector(orientation, 6, "orientation")
    if min(spacing.tolist()) <= 0:
        raise GeometryError(f"spacing must be positive in mm along x, y and z, got {spacing.tolist()}")
    _check_orthonormal(cosines[:3], cosines[3:], "orientation", cosines)
    (dx, dy, dz), row, column = spacing.tolist(), cosines[:3].tolist(), cosines[3:].tolist()
    # Built from floats in one call (the same products as numpy's): the columns are the steps of x, y and z.
    steps = zip(row, column, _cross(row, column), origin.tolist())
    return Geometry(np.array([*([r * dx, c * dy, n * dz, o] for r, c, n, o in steps), [0.0, 0.0, 0.0, 1.0]]))


def from_affine(affine, convention):
    """Geometry from a 4x4 index (x, y, z) -> patient affine in "LPS" (DICOM) or "RAS" (NIfTI).

    The convention must be named: the two differ by the sign of x and y, and
    guessing wrong mirrors the patient.
    """
    try:
        matrix = np.asarray(affine, dtype=np.float64)
    except (TypeError, ValueError):
        raise GeometryError(f"an affine must be a finite 4x4 matrix of numbers, got {affine!r:.60}") from None
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise GeometryError(f"an affine must be a finite 4x4 matrix, got shape {matrix.shape}")
    if not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise GeometryError(f"the affine's last row must be 0 0 0 1, got {matrix[3].tolist()}")
    if convention == "RAS":
        matrix = _RAS_TO_LPS @ matrix
    elif convention != "LPS":
        raise GeometryError(f'affine convention must be "LPS" or "RAS", got {convention!r}')
    steps = matrix[:3, :3]
    spacing = np.linalg.norm(steps, axis=0)
    if np.any(spacing == 0):
        raise GeometryError(f"the affine has zero spacing along axis {'xyz'[int(np.argmin(spacing))]}")
    row, column, slice_step = (steps / spacing).T
    _check_orthonormal(row, column, "affine", matrix[:3, :2].T.ravel())
    # DICOM slices are planes stacked along their normal (either way); a sheared
    # (oblique) stack cannot be described by one ImageOrientationPatient.
    if abs(abs(float(slice_step @ np.cross(row, column))) - 1) > COSINE_TOLERANCE:
        raise GeometryError(
            "the slice axis is not perpendicular to the image plane (a sheared stack); "
            f"DICOM slices cannot describe it: slice direction {slice_step.round(6).tolist()}"
        )
    return Geometry(matrix)


def _cross(a, b):
    """a x b of two 3-vectors as a list: np.cross's products and differences, without its generality
    (moveaxis, broadcasting) that costs more than the arithmetic in a small series' fixed cost."""
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def finite_vector(values, length, name):
    """values as a float64 vector of length finite numbers; otherwise a GeometryError naming name."""
    try:
        vector = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GeometryError(f"{name} must be {length} numbers, got {values!r}") from None
    if vector.size != length or not all(map(math.isfinite, vector.tolist())):  # a few numbers: no numpy call
        raise GeometryError(f"{name} must be {length} finite numbers, got {values!r}")
    return vector


def _check_orthonormal(row, column, name, shown):
    row, column = row.tolist(), column.tolist()  # three numbers each: no numpy call
    for label, vector in (("row", row), ("column", column)):
        if abs(math.sqrt(sum(v * v for v in vector)) - 1) > COSINE_TOLERANCE:
            raise GeometryError(f"{name}: the {label} direction is not a unit vector: {np.round(shown, 6).tolist()}")
    if abs(sum(r * c for r, c in zip(row, column))) > COSINE_TOLERANCE:
        raise GeometryError(f"{name}: row and column directions are not perpendicular: {np.round(shown, 6).tolist()}")
