"""The preview picture: three maximum intensity projections, in the radiological convention, labelled.

Views, as the common viewers draw them (3D Slicer's slice views, and the
orientation DICOM scanners write their transverse, coronal and sagittal
images in):

- coronal, seen from the front: the patient's right on the image's left, head up;
- sagittal, seen from the patient's left: anterior on the image's left, head up;
- transverse, seen from the feet: the patient's right on the image's left, anterior up.

Each volume index axis is matched to the patient (LPS) axis it runs nearest
to, using the same index -> LPS affine that gave the files their
ImagePositionPatient and ImageOrientationPatient; the projections are turned
and flipped into the views from that match, and each edge's letter is read
off the affine's direction for that edge (for an oblique volume, its dominant
component: the picture then says "oblique"). All views share one millimetre
scale, shown by the scale bar.

The picture is indexed colour: GREYS levels of grey, then the few colours of
the letters (PALETTE), a third of the bytes of RGB to draw and compress.
"""

import itertools
from typing import NamedTuple

import numpy as np

from .font import GLYPH_HEIGHT, draw_text, text_size

# (LPS axis, sign) of a direction -> its letter
DIRECTION_LETTERS = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "H", (2, -1): "F"}
# name, LPS axis projected away, (LPS axis, sign) of the image's rightward and of its downward direction
VIEWS = (
    ("CORONAL", 1, (0, 1), (2, -1)),
    ("SAGITTAL", 0, (1, 1), (2, -1)),
    ("TRANSVERSE", 2, (0, 1), (1, 1)),
)
# CT: a soft-tissue window, width 400 HU around level 40 HU
CT_WINDOW = (40.0 - 200.0, 40.0 + 200.0)
PET_PERCENTILE = 99.5
# An axis further than this from its patient axis (cosine below) makes the volume oblique on the picture.
OBLIQUE_COSINE = 0.9999

GREYS = 248  # palette indices 0 .. GREYS - 1: black to white
PALETTE = [(round(i * 255 / (GREYS - 1)),) * 3 for i in range(GREYS)] + [(255, 210, 0), (255, 90, 90)]
TEXT, CAPTION, FRAME = GREYS - 1, round(170 / 255 * (GREYS - 1)), round(70 / 255 * (GREYS - 1))
LETTER, ERROR = GREYS, GREYS + 1
LINE = GLYPH_HEIGHT + 3  # a line of scale-1 text with its spacing
GAP = 8


class View(NamedTuple):
    """One projection turned into its view: pixels [rows, columns], their size in mm, the edge letters."""

    name: str
    image: np.ndarray
    pixel_mm: tuple  # (row height, column width)
    letters: dict  # edge ("left", "right", "top", "bottom") -> letter


def patient_axes(affine):
    """({index axis "x", "y", "z": (the LPS axis it runs nearest to, sign)}, the unit steps as columns).

    Each index axis gets its own LPS axis: the assignment with the largest sum of |cosines|.
    """
    steps = np.asarray(affine, np.float64)[:3, :3]
    cosines = steps / np.linalg.norm(steps, axis=0)
    match = max(itertools.permutations(range(3)), key=lambda p: sum(abs(cosines[p[i], i]) for i in range(3)))
    return {"xyz"[i]: (match[i], 1 if cosines[match[i], i] > 0 else -1) for i in range(3)}, cosines


def is_oblique(affine):
    """True when some index axis is not along a patient axis (within OBLIQUE_COSINE)."""
    _, cosines = patient_axes(affine)
    return bool(np.abs(cosines).max(axis=0).min() < OBLIQUE_COSINE)


def letter_of(direction):
    """The letter of a direction in LPS: its dominant component's."""
    axis = int(np.argmax(np.abs(direction)))
    return DIRECTION_LETTERS[(axis, 1 if direction[axis] > 0 else -1)]


def views(projections, affine):
    """The three View of the projections {"x": [z, y], "y": [z, x], "z": [y, x]} of a volume with this affine."""
    axes, cosines = patient_axes(affine)
    spacing = dict(zip("xyz", np.linalg.norm(np.asarray(affine, np.float64)[:3, :3], axis=0)))
    direction = {name: cosines[:, i] for i, name in enumerate("xyz")}
    result = []
    for name, away, right, down in VIEWS:
        projected = next(a for a in "xyz" if axes[a][0] == away)
        image = projections[projected]
        kept = [a for a in "zyx" if a != projected]  # the image's axes, in array order
        if axes[kept[0]][0] == right[0]:  # rows must run along the downward axis
            image, kept = image.T, kept[::-1]
        row_axis, column_axis = kept
        row_sign, column_sign = axes[row_axis][1] * down[1], axes[column_axis][1] * right[1]
        image = image[::row_sign, ::column_sign]
        rightward, downward = column_sign * direction[column_axis], row_sign * direction[row_axis]
        letters = {"left": letter_of(-rightward), "right": letter_of(rightward),
                   "top": letter_of(-downward), "bottom": letter_of(downward)}  # fmt: skip
        result.append(View(name, image, (spacing[row_axis], spacing[column_axis]), letters))
    return result


def window(images, modality):
    """(low, high, text): CT a soft-tissue window; PET 0 to the 99.5th percentile of the projected pixels."""
    if modality == "CT":
        low, high = CT_WINDOW
        return low, high, f"WINDOW W{high - low:g} L{(high + low) / 2:g} HU"
    values = np.concatenate([image.ravel() for image in images])
    # The nearest rank, by partition: np.percentile would import numpy.ma (40 ms, once per process).
    rank = round(PET_PERCENTILE / 100 * (values.size - 1))
    high = float(np.partition(values, rank)[rank])
    if high <= 0:
        high = max(float(values.max()), 1.0)
    return 0.0, high, f"WINDOW 0 TO {high:.4g} ({PET_PERCENTILE:g}TH PERCENTILE)"


def grey(image, pixel_mm, mm_per_pixel, low, high):
    """The image resampled (nearest voxel) to square pixels of mm_per_pixel, windowed to grey indices."""
    picks = []
    for size, step in zip(image.shape, pixel_mm):
        count = max(1, round(size * step / mm_per_pixel))
        picks.append(np.minimum(((np.arange(count) + 0.5) * mm_per_pixel / step).astype(np.intp), size - 1))
    sampled = image[np.ix_(*picks)]
    scaled = (sampled.astype(np.float32) - low) * ((GREYS - 1) / max(high - low, 1e-30))
    return np.clip(np.rint(scaled), 0, GREYS - 1).astype(np.uint8)


def panel(view, pixels, letter_scale, caption=True):
    """One view's block: caption, the image with a frame, its four edge letters."""
    rows, columns = pixels.shape
    margin = GLYPH_HEIGHT * letter_scale + 4
    top = LINE if caption else 0
    block = np.zeros((top + rows + 2 * margin, columns + 2 * margin), np.uint8)
    if caption:
        draw_text(block, view.name, 0, margin, CAPTION)
    image_top, image_left = top + margin, margin
    block[image_top - 1 : image_top + rows + 1, image_left - 1 : image_left + columns + 1] = FRAME
    block[image_top : image_top + rows, image_left : image_left + columns] = pixels
    width, height = text_size("L", letter_scale)
    middle_row, middle_column = image_top + (rows - height) // 2, image_left + (columns - width) // 2
    inset = (margin - width) // 2
    places = {"left": (middle_row, inset), "right": (middle_row, image_left + columns + inset),
              "top": (image_top - margin + 1, middle_column), "bottom": (image_top + rows + 3, middle_column)}  # fmt: skip
    for edge, (row, column) in places.items():
        draw_text(block, view.letters[edge], row, column, LETTER, letter_scale)
    return block


def stack(blocks, axis, gap=GAP):
    """Blocks side by side (axis 1) or one above the other (axis 0), top- or left-aligned, on black."""
    across = 1 - axis
    size = max(block.shape[across] for block in blocks)
    parts = []
    for n, block in enumerate(blocks):
        pad = [(0, 0), (0, 0)]
        pad[across] = (0, size - block.shape[across])
        parts.append(np.pad(block, pad))
        if n < len(blocks) - 1:
            shape = list(parts[-1].shape)
            shape[axis] = gap
            parts.append(np.zeros(shape, np.uint8))
    return np.concatenate(parts, axis=axis)


def text_block(lines, colour=TEXT, scale=1):
    width = max(text_size(line, scale)[0] for line in lines)
    block = np.zeros((len(lines) * LINE * scale, max(width, 1)), np.uint8)
    for n, line in enumerate(lines):
        draw_text(block, line, n * LINE * scale, 0, colour, scale)
    return block


def scale_bar(mm_per_pixel, longest_mm):
    """A bar of a round length in mm, at most a third of the longest view, with its length written."""
    lengths = [m * 10**e for e in range(-1, 4) for m in (1, 2, 5)]
    length = max([v for v in lengths if v <= longest_mm / 3] or [lengths[0]])
    pixels = max(1, round(length / mm_per_pixel))
    label = f"{length:g} mm"
    width = text_size(label)[0]
    block = np.zeros((GLYPH_HEIGHT, pixels + 6 + width), np.uint8)
    block[2:5, :pixels] = TEXT
    draw_text(block, label, 0, pixels + 6, TEXT)
    return block


def views_row(all_views, low, high, size_px, letter_scale, caption=True):
    """The views as panels side by side at one mm scale (the longest extent drawn size_px long)."""
    longest = max(n * step for view in all_views for n, step in zip(view.image.shape, view.pixel_mm))
    mm_per_pixel = longest / size_px
    panels = [panel(v, grey(v.image, v.pixel_mm, mm_per_pixel, low, high), letter_scale, caption) for v in all_views]
    return stack(panels, axis=1), mm_per_pixel, longest


def preview_picture(projections, affine, modality, title, frame_count=1):
    """The preview of one series: a title, the window, three labelled views, a scale bar (PALETTE indices)."""
    all_views = views(projections, affine)
    low, high, window_text = window([v.image for v in all_views], modality)
    row, mm_per_pixel, longest = views_row(all_views, low, high, 256, 2)
    what = f"{'PET' if modality == 'PT' else modality} MAXIMUM INTENSITY PROJECTIONS"
    if frame_count > 1:
        what += f", LAST FRAME ({frame_count} OF {frame_count})"
    if is_oblique(affine):
        what += ", OBLIQUE: NEAREST DIRECTIONS"
    picture = stack([text_block([title.upper(), what, window_text]), row, scale_bar(mm_per_pixel, longest)], axis=0)
    return np.pad(picture, GAP)
