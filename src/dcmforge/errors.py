"""The errors dcmforge raises.

All of them are ``ValueError`` subclasses, so a caller that only wants to
know "was the input bad?" can catch ``ValueError``; a caller that wants to
know *which* input was bad catches the specific class and reads its fields.
"""


class DcmforgeError(ValueError):
    """Root of every error dcmforge raises on purpose."""


class EncodingError(DcmforgeError):
    """A value cannot be encoded in its value representation.

    The message names the keyword, the tag, the VR and the offending value;
    the same facts are kept as attributes for programs.
    """

    def __init__(self, reason, *, keyword=None, tag=None, vr=None, value=None):
        self.reason = reason
        self.keyword = keyword
        self.tag = tag
        self.vr = vr
        self.value = value
        where = []
        if keyword:
            where.append(keyword)
        if tag is not None:
            where.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        if vr:
            where.append(vr)
        prefix = " ".join(where)
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        text = f"{prefix}: {reason}" if prefix else reason
        if value is not None:
            text += f" (value {shown})"
        super().__init__(text)


class ValidationError(DcmforgeError):
    """A dataset does not meet its image description.

    ``problems`` holds every problem found, not only the first, so a user can
    fix a metadata file in one go.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) with the dataset:\n{lines}")


class MetadataError(DcmforgeError):
    """A metadata file cannot be read or holds something dcmforge cannot use."""


class GeometryError(DcmforgeError):
    """Spacing, origin, orientation or affine that cannot describe a slice stack."""


class VolumeError(DcmforgeError):
    """Voxel data that cannot be stored (NaN or infinite values, bad shape or type)."""


class InputError(DcmforgeError):
    """An input file that is not an image dcmforge can read, or an option its format cannot use."""


class InterfileError(InputError):
    """An Interfile header or its data file cannot be read as an image."""


class NiftiError(InputError):
    """A NIfTI-1/NIfTI-2 file that cannot be read as an image slice stack."""


class MetaImageError(InputError):
    """A MetaImage header (.mhd, .mha) or its data that cannot be read as an image."""


class PreviewError(DcmforgeError):
    """A preview picture cannot be drawn: a series folder dcmforge cannot read back, or a bad picture."""


class OutputExistsError(DcmforgeError):
    """The series folder exists (and overwrite was not asked for, or it is not a folder dcmforge may
    replace), or another writer committed the same folder first. The message names the folder."""


class NoWorkerError(DcmforgeError):
    """No Dask worker joined the scheduler in the time given (a batch's tasks would wait for ever)."""


class NotDicomError(DcmforgeError):
    """A path given to send is not a DICOM Part 10 file (no "DICM" at byte 128) or folder of them."""


class SendError(DcmforgeError):
    """A DICOMweb server could not be reached or did not store what it was sent.

    ``report`` holds what was stored before the failure (a ``SendReport``), or None
    when nothing was answered.
    """

    def __init__(self, message, report=None):
        self.report = report
        super().__init__(message)
