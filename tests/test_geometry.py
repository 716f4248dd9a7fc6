import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dcmforge import geometry
from dcmforge.errors import GeometryError


def test_spacing_form_gives_dicom_order_and_positions():
    g = geometry.from_spacing((2.0, 3.0, 4.0), origin=(-10, 20, 30))
    assert g.pixel_spacing == [3.0, 2.0]  # row spacing (y) first, then column spacing (x)
    assert g.slice_thickness == 4.0
    assert g.image_orientation == [1, 0, 0, 0, 1, 0]
    np.testing.assert_allclose(g.image_positions(3), [[-10, 20, 30], [-10, 20, 34], [-10, 20, 38]])
    np.testing.assert_allclose(g.slice_locations(3), [30, 34, 38])


def test_feet_first_orientation_steps_along_the_normal():
    # FFS as STIR writes it: rows run towards patient right, slices towards the head.
    g = geometry.from_spacing((1, 1, 2), origin=(5, 0, 0), orientation=(-1, 0, 0, 0, 1, 0))
    assert g.image_orientation == [-1, 0, 0, 0, 1, 0]
    np.testing.assert_allclose(g.normal, [0, 0, -1])
    np.testing.assert_allclose(g.image_positions(2)[1], [5, 0, -2])
    np.testing.assert_allclose(g.slice_locations(2), [0, 2])


def test_ras_affine_is_mirrored_in_x_and_y():
    ras = np.diag([2.0, 3.0, 4.0, 1.0])
    ras[:3, 3] = (10, 20, 30)
    g = geometry.from_affine(ras, "RAS")
    np.testing.assert_allclose(g.image_positions(1)[0], [-10, -20, 30])
    assert g.image_orientation == [-1, 0, 0, 0, -1, 0]
    assert g.pixel_spacing == [3.0, 2.0]


def test_affine_with_slices_against_the_normal_is_kept():
    lps = np.diag([1.0, 1.0, -2.0, 1.0])
    g = geometry.from_affine(lps, "LPS")
    np.testing.assert_allclose(g.image_positions(3)[:, 2], [0, -2, -4])
    assert g.slice_thickness == 2.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: geometry.from_spacing((1, 0, 1)), "positive"),
        (lambda: geometry.from_spacing((1, 1, np.nan)), "finite"),
        (lambda: geometry.from_spacing((1, 1, 1), orientation=(1, 0, 0, 1, 0, 0)), "not perpendicular"),
        (lambda: geometry.from_spacing((1, 1, 1), orientation=(2, 0, 0, 0, 1, 0)), "not a unit vector"),
        (lambda: geometry.from_affine(np.eye(4), None), "LPS"),
        (lambda: geometry.from_affine(np.diag([1, 1, 0, 1]), "LPS"), "zero spacing along axis z"),
        (lambda: geometry.from_affine(np.eye(3), "LPS"), "4x4"),
    ],
)
def test_refusals_say_what_is_wrong(call, message):
    with pytest.raises(GeometryError, match=message):
        call()


def test_sheared_stack_is_refused():
    sheared = np.eye(4)
    sheared[0, 2] = 0.5  # each slice shifted along x: not perpendicular to the plane
    with pytest.raises(GeometryError, match="sheared"):
        geometry.from_affine(sheared, "LPS")


@settings(max_examples=100, deadline=None)
@given(
    angles=st.tuples(*[st.floats(-np.pi, np.pi)] * 3),
    spacing=st.tuples(*[st.floats(0.1, 10)] * 3),
    flip=st.booleans(),
)
def test_any_rotation_round_trips_through_the_affine(angles, spacing, flip):
    a, b, c = angles
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    rotation = rz @ ry @ rx
    if flip:
        rotation[:, 2] *= -1
    affine = np.eye(4)
    affine[:3, :3] = rotation * spacing
    affine[:3, 3] = (1, 2, 3)
    g = geometry.from_affine(affine, "LPS")
    np.testing.assert_allclose(g.spacing, spacing)
    np.testing.assert_allclose(g.image_orientation, rotation[:, :2].T.ravel(), atol=1e-12)
    np.testing.assert_allclose(g.image_positions(2)[1], affine[:3, 2] + (1, 2, 3))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=9, max_size=9))
def test_the_cross_product_and_spacing_are_numpys_to_the_bit(values):
    """Geometry's spacing, directions and normal do np.linalg.norm's, numpy's division and np.cross's arithmetic
    on floats (cheaper per series): the same bits, so every header stays as it was."""
    a, b, c = np.array(values).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = np.array([a, b, c]).T
    g = geometry.Geometry(affine)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    assert g.spacing == tuple(float(v) for v in spacing)
    if spacing[0] and spacing[1]:
        row, column = affine[:3, 0] / spacing[0], affine[:3, 1] / spacing[1]
        assert g.row_direction.tobytes() == row.tobytes() and g.column_direction.tobytes() == column.tobytes()
        assert g.normal.tobytes() == np.cross(row, column).tobytes()
