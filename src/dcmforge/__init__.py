"""dcmforge: a small, fast, pydicom-free DICOM encoder for PET and CT volumes.

``import dcmforge`` stays cheap: the public functions are loaded from their
modules on first use, and numba is imported only when a pixel kernel runs.
"""

__version__ = "0.1.0"
