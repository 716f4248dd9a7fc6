"""The modules PET and CT images share (PS3.3 C.7, C.8, C.11, C.12), and the checks common to every image.

Specialising modules (PET Series, CT Image, ...) replace rows of these; see ``model.specialise``.
"""

import math

from .. import __version__
from ..dicom.encode import has_non_ascii
from ..dicom.values import is_empty, number_value, values_of
from .model import Condition, Rule, defined, enumerated, module, row

# -- rules ----------------------------------------------------------------------


def _high_bit(dataset):
    stored, high = number_value(dataset, "BitsStored"), number_value(dataset, "HighBit")
    if stored is not None and high is not None and high != stored - 1:
        return [("HighBit", "error", f"must be BitsStored - 1 = {stored - 1:g}, not {high:g}")]
    return []


def _bits_stored(dataset):
    stored, allocated = number_value(dataset, "BitsStored"), number_value(dataset, "BitsAllocated")
    if stored is not None and allocated is not None and stored > allocated:
        return [("BitsStored", "error", f"{stored:g} is more than BitsAllocated {allocated:g}")]
    return []


def _pixel_data_length(dataset):
    pixels = dataset.get("PixelData")
    sizes = [number_value(dataset, k) for k in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated")]
    if pixels is None or None in sizes:
        return []
    rows, columns, samples, bits = sizes
    expected = int(rows * columns * samples * bits) // 8
    if hasattr(pixels, "nbytes"):  # numpy arrays and memoryviews
        length = pixels.nbytes
    elif isinstance(pixels, (bytes, bytearray)):
        length = len(pixels)
    else:
        return []  # not pixels at all: the VR check reports it
    if length not in (expected, expected + expected % 2):
        formula = "Rows x Columns x SamplesPerPixel x BitsAllocated/8"
        return [("PixelData", "error", f"holds {length} bytes; {formula} = {expected}")]
    return []


def _non_zero(*keywords):
    def check(dataset):
        found = []
        for keyword in keywords:
            for position, single in enumerate(values_of(dataset.get(keyword)), 1):
                try:
                    if float(single) == 0:
                        found.append((keyword, "error", f"value {position} is zero"))
                except (TypeError, ValueError):
                    pass  # not a number: the VR check reports it
        return found

    return check


def _window(dataset):
    centers, widths = values_of(dataset.get("WindowCenter")), values_of(dataset.get("WindowWidth"))
    found = []
    if len(centers) != len(widths):
        found.append(("WindowWidth", "error", f"{len(widths)} value(s) but WindowCenter has {len(centers)}"))
    for position in range(1, len(widths) + 1):
        width = number_value(dataset, "WindowWidth", position)
        if width is not None and width < 1:
            found.append(("WindowWidth", "error", f"value {position} is {width:g}; a window width is at least 1"))
    return found


def _orientation(dataset):
    cosines = [number_value(dataset, "ImageOrientationPatient", i) for i in range(1, 7)]
    if None in cosines:
        return []
    row, column = cosines[:3], cosines[3:]
    found = []
    for name, vector in (("row", row), ("column", column)):
        if abs(math.fsum(c * c for c in vector) - 1) > 1e-4:
            found.append(("ImageOrientationPatient", "error", f"the {name} direction {vector} is not a unit vector"))
    if abs(math.fsum(r * c for r, c in zip(row, column))) > 1e-4:
        found.append(("ImageOrientationPatient", "error", "the row and column directions are not orthogonal"))
    return found


def _patient_size_in_metres(dataset):
    size = number_value(dataset, "PatientSize")
    if size is not None and size > 3:
        return [("PatientSize", "warning", f"{size:g} looks like centimetres; DICOM wants metres")]
    return []


# wants becquerels, Enhanced PET Isotope megabecquerels: a dose given in the other one is off by 1e6.
_TOTAL_DOSE_UNITS = {
    "Bq": (lambda dose: 0 < dose < 1e4, "{dose:g} Bq is tiny: was it given in MBq? DICOM wants Bq"),
    "MBq": (lambda dose: dose >= 1e5, "{dose:g} MBq is huge: was it given in Bq? Enhanced PET wants MBq"),
}


def total_dose_in(unit):
    implausible, message = _TOTAL_DOSE_UNITS[unit]

    def check(dataset):
        found = []
        for number, item in enumerate(values_of(dataset.get("RadiopharmaceuticalInformationSequence")), 1):
            dose = number_value(item, "RadionuclideTotalDose") if isinstance(item, dict) else None
            if dose is not None and implausible(dose):
                keyword = f"RadiopharmaceuticalInformationSequence[{number}].RadionuclideTotalDose"
                found.append((keyword, "warning", message.format(dose=dose)))
        return found

    return check


def _dicomdir_needs(dataset):
    # dciodvfy warns when these are empty: a DICOMDIR (and most archives) index by them.
    needed = ("PatientID", "StudyDate", "StudyTime", "StudyID", "SeriesNumber", "InstanceNumber")
    return [
        (keyword, "warning", "empty, but DICOMDIR and archives index images by it")
        for keyword in needed
        if keyword in dataset and is_empty(dataset[keyword])
    ]


COMMON_RULES = (
    Rule("HighBit is BitsStored - 1", _high_bit),
    Rule("BitsStored is at most BitsAllocated", _bits_stored),
    Rule("PixelData holds Rows x Columns pixels", _pixel_data_length),
    Rule("spacings, thickness and slope are not zero", _non_zero("PixelSpacing", "SliceThickness", "RescaleSlope")),
    Rule("WindowCenter and WindowWidth pair up, width at least 1", _window),
    Rule("ImageOrientationPatient holds two orthogonal unit vectors", _orientation),
    Rule("PatientSize is in metres", _patient_size_in_metres),
    Rule("what a DICOMDIR indexes by has a value", _dicomdir_needs),
)


# What SoftwareVersions says of dcmforge (after the reconstruction's own, when given).
DCMFORGE_VERSION = f"dcmforge {__version__}"

# -- enumerations more than one module names ---------------------------------------

LATERALITY = enumerated("R", "L")
IMAGE_LATERALITY = enumerated("R", "L", "U", "B")  # ImageLaterality, FrameLaterality
LOSSY = enumerated("00", "01")  # LossyImageCompression: 00 never lossy compressed, 01 lossy compressed
YES_NO = enumerated("YES", "NO")
PATIENT_POSITIONS = defined(
    "HFP", "HFS", "HFDR", "HFDL", "FFDR", "FFDL", "FFP", "FFS",
    "LFP", "LFS", "RFP", "RFS", "AFDR", "AFDL", "PFDR", "PFDL",
)  # fmt: skip

# The pixels PET Image and Enhanced PET Image fix: one 16-bit sample, MONOCHROME2.
MONOCHROME_16_BIT = (
    row("SamplesPerPixel",           "1", "default", default=1,             enum=enumerated(1)),
    row("PhotometricInterpretation", "1", "default", default="MONOCHROME2", enum=enumerated("MONOCHROME2")),
    row("BitsAllocated",             "1", "default", default=16,            enum=enumerated(16)),
    row("BitsStored",                "1", "default", default=16,            enum=enumerated(16)),
    row("HighBit",                   "1", "default", default=15,            enum=enumerated(15)),
)  # fmt: skip


# -- modules common to PET and CT (docs/iods.md 1) -------------------------------------

# fmt: off
PATIENT = module("Patient",  # PS3.3 C.7.1.1
    row("PatientName",      "2", "user", default=""),
    row("PatientID",        "2", "user", default="UNKNOWN"),  # empty is legal, but DICOMDIR and PACS need one
    row("PatientBirthDate", "2", "user", default=""),
    row("PatientSex",       "2", "user", default="", enum=enumerated("M", "F", "O")),
)
# fmt: on

# fmt: off
GENERAL_STUDY = module("General Study",  # PS3.3 C.7.2.1
    row("StudyInstanceUID",       "1", "uid"),
    row("StudyDate",              "2", "clock"),
    row("StudyTime",              "2", "clock"),
    row("ReferringPhysicianName", "2", "user",    default=""),
    row("StudyID",                "2", "default", default="1"),
    row("AccessionNumber",        "2", "user",    default=""),
    row("StudyDescription",       "3", "user"),
)
# fmt: on

# fmt: off
PATIENT_STUDY = module("Patient Study",  # PS3.3 C.7.2.2
    row("PatientAge",    "3", "user"),
    row("PatientSize",   "3", "user"),  # metres
    row("PatientWeight", "3", "user"),  # kg; every SUVbw needs it
)
# fmt: on

has_no_image_laterality = Condition(
    "ImageLaterality is absent (and the body part is paired)", lambda dataset: "ImageLaterality" not in dataset
)
has_no_orientation_codes = Condition(
    "PatientOrientationCodeSequence is absent (CT; PET carries the position in code sequences)",
    lambda dataset: "PatientOrientationCodeSequence" not in dataset,
)

# fmt: off
GENERAL_SERIES = module("General Series",  # PS3.3 C.7.3.1
    row("Modality",          "1",  "default"),
    row("SeriesInstanceUID", "1",  "uid"),
    row("SeriesNumber",      "2",  "user", default=1),
    row("Laterality",        "2C", "user", condition=has_no_image_laterality, enum=LATERALITY),
    row("PatientPosition",   "2C", "user", condition=has_no_orientation_codes, enum=PATIENT_POSITIONS),
    row("SeriesDate",        "3",  "clock"),
    row("SeriesTime",        "3",  "clock"),
    row("SeriesDescription", "3",  "user"),
    row("BodyPartExamined",  "3",  "user"),
)
# fmt: on

# fmt: off
FRAME_OF_REFERENCE = module("Frame of Reference",  # PS3.3 C.7.4.1
    row("FrameOfReferenceUID",        "1", "uid"),
    row("PositionReferenceIndicator", "2", "default", default=""),
)
# fmt: on

# fmt: off
GENERAL_EQUIPMENT = module("General Equipment",  # PS3.3 C.7.5.1
    row("Manufacturer",          "2", "default", default="dcmforge"),
    row("InstitutionName",       "3", "user"),
    row("ManufacturerModelName", "3", "user"),
    row("DeviceSerialNumber",    "3", "user"),
    row("SoftwareVersions",      "3", "default", default=DCMFORGE_VERSION),
)
# fmt: on

has_no_image_plane = Condition(
    "ImageOrientationPatient and ImagePositionPatient are absent",
    lambda dataset: "ImageOrientationPatient" not in dataset and "ImagePositionPatient" not in dataset,
)
# The images of one series are temporally related, so ContentDate/Time are always required.
is_temporally_related = Condition("the images of the series are temporally related", lambda dataset: True)

# fmt: off
GENERAL_IMAGE = module("General Image",  # PS3.3 C.7.6.1
    row("InstanceNumber",        "2",  "slice"),
    row("PatientOrientation",    "2C", "user",    condition=has_no_image_plane),
    row("ContentDate",           "2C", "clock",   condition=is_temporally_related),
    row("ContentTime",           "2C", "clock",   condition=is_temporally_related),
    row("ImageLaterality",       "3",  "default", default="U", enum=IMAGE_LATERALITY),
    row("LossyImageCompression", "3",  "default", default="00", enum=LOSSY),
)
# fmt: on

# fmt: off
IMAGE_PLANE = module("Image Plane",  # PS3.3 C.7.6.2
    row("PixelSpacing",            "1", "series"),
    row("ImageOrientationPatient", "1", "series"),
    row("ImagePositionPatient",    "1", "slice"),
    row("SliceThickness",          "2", "series"),
    row("SliceLocation",           "3", "slice"),
)
# fmt: on

has_no_pixel_url = Condition(
    "PixelDataProviderURL is absent (pixels are in the file)", lambda dataset: "PixelDataProviderURL" not in dataset
)

# fmt: off
IMAGE_PIXEL = module("Image Pixel",  # PS3.3 C.7.6.3
    row("SamplesPerPixel",           "1",  "default", default=1),
    row("PhotometricInterpretation", "1",  "default", default="MONOCHROME2"),
    row("Rows",                      "1",  "series"),
    row("Columns",                   "1",  "series"),
    row("BitsAllocated",             "1",  "default", default=16),
    row("BitsStored",                "1",  "default", default=16),
    row("HighBit",                   "1",  "default", default=15),
    row("PixelRepresentation",       "1",  "slice",   enum=enumerated(0, 1)),
    row("SmallestImagePixelValue",   "3",  "slice"),
    row("LargestImagePixelValue",    "3",  "slice"),
    row("PixelData",                 "1C", "slice",   condition=has_no_pixel_url),
)
# fmt: on

has_window_width = Condition("WindowWidth is present (VOI LUT module used)", lambda dataset: "WindowWidth" in dataset)
has_window_center = Condition("WindowCenter is present", lambda dataset: "WindowCenter" in dataset)

# fmt: off
VOI_LUT = module("VOI LUT",  # PS3.3 C.11.2
    row("WindowCenter", "1C", "user", condition=has_window_width),
    row("WindowWidth",  "1C", "user", condition=has_window_center),
)
# fmt: on

has_non_ascii_text = Condition("a text value uses characters outside ASCII", has_non_ascii, otherwise="may be present")

# fmt: off
SOP_COMMON = module("SOP Common",  # PS3.3 C.12.1
    row("SpecificCharacterSet", "1C", "user",  condition=has_non_ascii_text),
    row("InstanceCreationDate", "3",  "clock"),
    row("InstanceCreationTime", "3",  "clock"),
    row("SOPClassUID",          "1",  "default"),
    row("SOPInstanceUID",       "1",  "slice"),
)
# fmt: on

COMMON_MODULES = (
    PATIENT + GENERAL_STUDY + PATIENT_STUDY + GENERAL_SERIES + FRAME_OF_REFERENCE + GENERAL_EQUIPMENT
    + GENERAL_IMAGE + IMAGE_PLANE + IMAGE_PIXEL + VOI_LUT + SOP_COMMON
)  # fmt: skip


def identity(modality, sop_class_uid):
    """Modality and SOPClassUID, fixed for one IOD."""
    modality_row = row("Modality", "1", "default", default=modality, enum=enumerated(modality))
    sop_class_row = row("SOPClassUID", "1", "default", default=sop_class_uid, enum=enumerated(sop_class_uid))
    return module("General Series", modality_row) + module("SOP Common", sop_class_row)
