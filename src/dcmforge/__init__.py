"""dcmforge: a small, fast, pydicom-free DICOM encoder for PET and CT volumes.

``import dcmforge`` stays cheap: the public names below are loaded from their
modules on first use (PEP 562), and numba is imported only when a pixel
kernel first runs.
"""

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "write_series": "series",
    "SeriesWriter": "series",
    "read_interfile": "interfile",
    "write_interfile": "interfile",
    "read_metadata": "metadata",
    "encode_dataset": "encode",
    "Explicit": "encode",
    "encode_file": "part10",
    "write_file": "part10",
    "new_uid": "uids",
    "DcmforgeError": "errors",
    "EncodingError": "errors",
    "ValidationError": "errors",
    "MetadataError": "errors",
    "GeometryError": "errors",
    "VolumeError": "errors",
    "InterfileError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dcmforge' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return __all__
