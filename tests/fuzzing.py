"""What every fuzzed input must give: a usable image, or dcmforge's own error (never another exception)."""

import numpy as np

import dcmforge
from dcmforge.errors import DcmforgeError


def read_image_or_our_error(path):
    """read_image(path): None for a DcmforgeError; otherwise the image, checked to be whole."""
    try:
        image = dcmforge.read_image(path)
    except DcmforgeError:
        return None
    volume = np.asarray(image.volume)
    assert volume.ndim in (3, 4) and min(volume.shape) >= 1
    assert image.affine.shape == (4, 4) and np.all(np.isfinite(image.affine))
    assert all(s > 0 for s in image.spacing)
    return image
