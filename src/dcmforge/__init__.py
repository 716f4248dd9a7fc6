"""dcmforge: a small, fast, pydicom-free DICOM encoder for PET and CT volumes.

``import dcmforge`` stays cheap: the public names below are loaded from their
modules on first use (PEP 562), and numba is imported only when a pixel
kernel first runs.
"""

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "write_series": "write.series",
    "SeriesWriter": "write.series",
    "new_study": "write.study",
    "Image": "image",
    "read_image": "readers.choose",
    "read_interfile": "readers.interfile",
    "read_nifti": "readers.nifti",
    "read_metaimage": "readers.metaimage",
    "write_interfile": "readers.interfile",
    "read_metadata": "metadata",
    "convert_one": "convert",
    "ConversionResult": "convert",
    "convert_many": "batch",
    "encode_dataset": "dicom.encode",
    "Explicit": "dicom.encode",
    "encode_file": "dicom.part10",
    "write_file": "dicom.part10",
    "new_uid": "dicom.uids",
    "send": "sending.archive",
    "SendReport": "sending.report",
    "DcmforgeError": "errors",
    "EncodingError": "errors",
    "ValidationError": "errors",
    "MetadataError": "errors",
    "GeometryError": "errors",
    "VolumeError": "errors",
    "InputError": "errors",
    "InterfileError": "errors",
    "OutputExistsError": "errors",
    "NotDicomError": "errors",
    "SendError": "errors",
    "NiftiError": "errors",
    "MetaImageError": "errors",
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
