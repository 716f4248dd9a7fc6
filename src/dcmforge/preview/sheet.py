"""A contact sheet: one row per series under a folder (its name, then its three small views), for batches.

The series are read back from their files (readback.py), so the sheet shows
what the files say, whatever wrote them; a folder that cannot be read gets a
row with the reason instead of its views.
"""

import numpy as np

from .picture import ERROR, GAP, is_oblique, stack, text_block, views, views_row, window
from .readback import read_series, series_folders

SHEET_NAME = "contact-sheet.png"
VIEW_SIZE = 120  # pixels along the longest extent of a series
NAME_CHARACTERS = 28


def contact_sheet(root):
    """(the picture in picture.PALETTE's colours, [(folder, problem)]) of every series folder under root."""
    folders = series_folders(root)
    problems = []
    rows = [text_block([f"{len(folders)} SERIES UNDER {root}".upper()[:100],
                        "EACH: CORONAL, SAGITTAL, TRANSVERSE MAXIMUM INTENSITY PROJECTIONS"])]  # fmt: skip
    for folder in folders:
        name = str(folder.relative_to(root)) if folder != root else folder.name
        try:
            rows.append(_row(name, read_series(folder)))
        except (ValueError, OSError) as exc:  # PreviewError, numbers no picture can be made of, an unreadable file
            problems.append((folder, str(exc)))
            rows.append(stack([_label([name.upper()]), text_block([_short(str(exc).upper(), 90)], ERROR)], axis=1))
    return np.pad(stack(rows, axis=0), GAP), problems


def _row(name, series):
    all_views = views(series.accumulator.projections(), series.affine)
    low, high, _ = window([v.image for v in all_views], series.modality)
    row, _, _ = views_row(all_views, low, high, VIEW_SIZE, 1, caption=False)
    lines = [name.upper(), f"{series.modality} WINDOW {low:.4g} TO {high:.4g}"]
    if series.accumulator.frame_count > 1:
        lines.append(f"LAST FRAME OF {series.accumulator.frame_count}")
    if is_oblique(series.affine):
        lines.append("OBLIQUE")
    return stack([_label(lines), row], axis=1)


def _label(lines):
    block = text_block([_short(line, NAME_CHARACTERS) for line in lines])
    width = NAME_CHARACTERS * 6
    return np.pad(block, ((0, 0), (0, max(0, width - block.shape[1]))))


def _short(text, characters):
    return text if len(text) <= characters else text[: characters - 2] + ".."
