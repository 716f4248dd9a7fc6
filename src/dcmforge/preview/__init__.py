"""Preview pictures: see a series' orientation before trusting it.

``write_series(..., preview=True)`` and ``dcmforge convert --preview`` draw,
beside each committed series folder ``NAME``, the picture ``NAME.preview.png``:
three maximum intensity projections with the patient's directions at their
edges (``picture.py``), from projections accumulated while the writer streamed
the volume (``projection.py``), saved as a PNG by the standard library
(``png.py``) with a built-in bitmap font (``font.py``). ``dcmforge preview
DIR`` draws a contact sheet of every series under a folder from the files
themselves (``sheet.py``); ``draw_from_files`` draws one series' picture the
same way (``convert --resume --preview`` for a series it skips).
"""

from pathlib import Path

# Nothing of the drawing is imported here: a convert without a picture asks this package only for the
# picture's name (preview_path).
__all__ = ["draw_from_files", "preview_path", "write_preview"]

SUFFIX = ".preview.png"


def preview_path(series_dir):
    """Where a series folder's picture goes: beside the folder, which holds DICOM files only."""
    series_dir = Path(series_dir)
    return series_dir.with_name(series_dir.name + SUFFIX)


def write_preview(series_dir, accumulator, affine, modality):
    """Draw the accumulated projections of the series in series_dir; returns the picture's path."""
    from .picture import PALETTE, preview_picture
    from .png import write_png

    picture = preview_picture(
        accumulator.projections(), affine, modality, Path(series_dir).name, accumulator.frame_count
    )
    return write_png(preview_path(series_dir), picture, PALETTE)


def draw_from_files(series_dir):
    """Draw the picture of the committed series in series_dir from its files (readback.py); returns its path.

    PreviewError when the files are not what dcmforge writes.
    """
    from .readback import read_series

    series = read_series(series_dir)
    return write_preview(series_dir, series.accumulator, series.affine, series.modality)
