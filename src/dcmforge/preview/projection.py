"""Maximum intensity projections, accumulated from the chunks of slices a writer streams.

The writers read a volume once, a chunk of whole slices at a time; the
accumulator takes each chunk as it passes, so a preview costs no second read
of a memory-mapped input. It keeps three images: the maximum along the
volume's x (columns), y (rows) and z (slices) index axes. A dynamic volume
contributes its last frame only (the picture says so).
"""

import numpy as np


class ProjectionAccumulator:
    """Maximum of a [z, y, x] or [t, z, y, x] volume along each index axis, built chunk by chunk."""

    def __init__(self, shape):
        shape = tuple(int(n) for n in shape)
        self.frame_count = shape[0] if len(shape) == 4 else 1
        self.frame = self.frame_count - 1  # the frame that is projected
        nz, ny, nx = shape[-3:]
        # index axis -> maximum along it: x -> [z, y], y -> [z, x], z -> [y, x]
        self.along = {
            "x": np.full((nz, ny), -np.inf, np.float32),
            "y": np.full((nz, nx), -np.inf, np.float32),
            "z": np.full((ny, nx), -np.inf, np.float32),
        }

    def add(self, chunk, first_slice, frame=0):
        """Take slices first_slice .. first_slice + len(chunk) - 1 ([n, y, x]) of the given frame."""
        if frame != self.frame:
            return
        slices = slice(first_slice, first_slice + len(chunk))
        self.along["x"][slices] = chunk.max(axis=2)
        self.along["y"][slices] = chunk.max(axis=1)
        np.maximum(self.along["z"], chunk.max(axis=0), out=self.along["z"])

    def add_images(self, images, first_image, slice_count):
        """Take consecutive images numbered from first_image (frame-major), which may span frames."""
        n = 0
        while n < len(images):
            frame, z = divmod(first_image + n, slice_count)
            count = min(len(images) - n, slice_count - z)
            self.add(images[n : n + count], z, frame)
            n += count

    def projections(self):
        """{"x": [z, y], "y": [z, x], "z": [y, x]}: the maximum along each index axis."""
        return self.along
