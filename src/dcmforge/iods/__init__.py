"""Minimal image descriptions (IODs) as data: what a PET or CT image must hold.

A description is a flat tuple of ``Attribute`` rows, written below grouped by
module, following ``dicom-minimal-iods.md`` (PS3.3 A.3, A.21 and the modules
they use). Each row says for one attribute:

- its type: "1" (present, with a value), "2" (present, may be empty), "3"
  (optional), "1C"/"2C" (as 1 or 2 when its ``condition`` holds);
- its module (the specialising module when two modules name it, e.g.
  SeriesDate is Type 1 in PET Series although Type 3 in General Series);
- where its value comes from (``source``):
    "default"  a fixed value dcmforge writes unless the user's metadata sets one
    "user"     the user's metadata (``default`` is used when they give none)
    "uid"      a UID dcmforge generates once per series (or study) unless given
    "clock"    the write time, unless the user's metadata gives one
    "series"   derived once per series from the volume and its geometry
    "slice"    derived for every slice (position, scaling, pixels, frame timing)
- allowed values per value position (``enum``): enumerated values (anything
  else is an error) or defined terms (anything else is a warning, as
  dciodvfy does);
- for sequences, the rows of one item (``items``).

Tags are not written here: they come from the tag table (``dcmforge.dicom.tags``).
Cross-attribute checks (HighBit = BitsStored - 1, pixel data length, ...)
are ``Rule`` rows of the description.
"""

import copy
import math
from typing import Callable, NamedTuple

from .. import __version__
from ..dicom.encode import has_non_ascii
from ..dicom.values import is_empty, number_value, text_value, values_of
from ..errors import DcmforgeError
from .codes import ORIENTATION_CODES, current_code

SOURCES = ("default", "user", "uid", "clock", "series", "slice")
TYPES = ("1", "1C", "2", "2C", "3")


class Values(NamedTuple):
    """Allowed values at one value position (1-based), or at every position when ``position`` is None."""

    kind: str  # "enumerated" (others are errors) or "defined" (others are warnings)
    allowed: tuple
    position: int | None = None


def enumerated(*allowed, position=None):
    return Values("enumerated", allowed, position)


def defined(*allowed, position=None):
    return Values("defined", allowed, position)


class Condition(NamedTuple):
    """When a 1C/2C attribute is required: ``test(dataset)``; ``text`` says it in words.

    ``otherwise`` is "absent" when the standard (and dciodvfy) forbid the
    attribute while the condition does not hold, "may be present" if not.
    ``scope`` is what ``test`` looks at: "level", the dataset or item that
    holds the attribute, or "image", the whole image (for attributes inside a
    functional group item that depend on, say, ImageType).
    """

    text: str
    test: Callable[[dict], bool]
    otherwise: str = "absent"
    scope: str = "level"


class Attribute(NamedTuple):
    keyword: str
    type: str
    module: str
    source: str
    default: object = None
    enum: tuple = ()  # Values rows
    condition: Condition | None = None
    items: tuple = ()  # Attribute rows of one sequence item
    vm: str | None = None  # narrower than the tag table's VM, where a module says so
    max_items: int | None = None


class Rule(NamedTuple):
    """A check across attributes: ``check(dataset)`` yields (keyword, level, message)."""

    text: str
    check: Callable[[dict], list]


class Description(NamedTuple):
    name: str
    modality: str
    sop_class_uid: str
    attributes: tuple
    rules: tuple


# -- conditions (named so the tables read as the standard does) -----------------


def _series_type_is(word):
    return lambda dataset: text_value(dataset, "SeriesType") == word


is_dynamic = Condition("SeriesType value 1 is DYNAMIC", _series_type_is("DYNAMIC"))
is_gated = Condition("SeriesType value 1 is GATED", _series_type_is("GATED"))
is_gated_with_beat_rejection = Condition(
    "SeriesType value 1 is GATED and BeatRejectionFlag is Y",
    lambda dataset: _series_type_is("GATED")(dataset) and text_value(dataset, "BeatRejectionFlag") == "Y",
)
is_reprojection = Condition(
    "SeriesType value 2 is REPROJECTION", lambda dataset: text_value(dataset, "SeriesType", 2) == "REPROJECTION"
)
is_decay_corrected = Condition(
    "DecayCorrection is not NONE", lambda dataset: text_value(dataset, "DecayCorrection") not in (None, "NONE")
)
has_no_orientation_codes = Condition(
    "PatientOrientationCodeSequence is absent (CT; PET carries the position in code sequences)",
    lambda dataset: "PatientOrientationCodeSequence" not in dataset,
)
has_no_image_laterality = Condition(
    "ImageLaterality is absent (and the body part is paired)", lambda dataset: "ImageLaterality" not in dataset
)
has_no_image_plane = Condition(
    "ImageOrientationPatient and ImagePositionPatient are absent",
    lambda dataset: "ImageOrientationPatient" not in dataset and "ImagePositionPatient" not in dataset,
)
has_window_width = Condition("WindowWidth is present (VOI LUT module used)", lambda dataset: "WindowWidth" in dataset)
has_window_center = Condition("WindowCenter is present", lambda dataset: "WindowCenter" in dataset)
has_no_pixel_url = Condition(
    "PixelDataProviderURL is absent (pixels are in the file)", lambda dataset: "PixelDataProviderURL" not in dataset
)
is_multienergy = Condition(
    "MultienergyCTAcquisition is YES",
    lambda dataset: text_value(dataset, "MultienergyCTAcquisition") == "YES",
    otherwise="may be present",
)
# The images of one series are temporally related, so ContentDate/Time are always required.
is_temporally_related = Condition("the images of the series are temporally related", lambda dataset: True)
has_non_ascii_text = Condition(
    "a text value uses characters outside ASCII", has_non_ascii, otherwise="may be present"
)
is_recumbent = Condition(
    "the orientation is recumbent (supine or prone completes it)",
    lambda item: current_code(item.get("CodeValue"), item.get("CodingSchemeDesignator"))
    == ORIENTATION_CODES["recumbent"][0],
    otherwise="may be present",
)
# dcmforge writes the pixels it is given; only the caller knows of an earlier lossy step.
was_lossy_compressed = Condition("the image has been lossy compressed", lambda dataset: False, "may be present")
has_short_code_value = Condition(
    "LongCodeValue and URNCodeValue are absent",
    lambda item: "LongCodeValue" not in item and "URNCodeValue" not in item,
)
has_no_urn_code_value = Condition(
    "URNCodeValue is absent", lambda item: "URNCodeValue" not in item, otherwise="may be present"
)
has_context_identifier = Condition("ContextIdentifier is present", lambda item: "ContextIdentifier" in item)


# -- building blocks --------------------------------------------------------------


def _module(name, *rows):
    """Rows written as (keyword, type, source, **details) with the module name filled in."""
    return tuple(Attribute(keyword, kind, name, source, **details) for keyword, kind, source, details in rows)


def _row(keyword, kind, source, **details):
    return (keyword, kind, source, details)


def _specialise(common, specific):
    """``common`` rows with the rows of ``specific`` put in place of those with the same keyword.

    This is how the standard specialises a module: PET Series makes SeriesDate
    Type 1, PET Image makes BitsAllocated enumerated 16, and so on.
    """
    replaced = {row.keyword for row in specific}
    return tuple(row for row in common if row.keyword not in replaced) + specific


def _code_item(module, meaning_type="1"):
    """The rows of one Code Sequence Macro item (PS3.3 Table 8.8-1), as far as dcmforge writes them."""
    return _module(
        module,
        _row("CodeValue", "1C", "user", condition=has_short_code_value),
        _row("CodingSchemeDesignator", "1C", "user", condition=has_no_urn_code_value),
        _row("CodeMeaning", meaning_type, "user"),
        _row("MappingResource", "1C", "user", condition=has_context_identifier),
        _row("ContextGroupVersion", "1C", "user", condition=has_context_identifier),
    )


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


def _decay_correction_listed(dataset):
    corrections = [text for text in values_of(dataset.get("CorrectedImage")) if isinstance(text, str)]
    decay = text_value(dataset, "DecayCorrection")
    if decay not in (None, "NONE") and "DECY" not in corrections:
        return [("CorrectedImage", "warning", f"DecayCorrection is {decay} but DECY is not listed")]
    if decay == "NONE" and "DECY" in corrections:
        return [("DecayCorrection", "warning", "NONE, but CorrectedImage lists DECY")]
    return []


# The unit RadionuclideTotalDose is in -> (is a dose implausible in it, what to say). PET Isotope
# wants becquerels, Enhanced PET Isotope megabecquerels: a dose given in the other one is off by 1e6.
_TOTAL_DOSE_UNITS = {
    "Bq": (lambda dose: 0 < dose < 1e4, "{dose:g} Bq is tiny: was it given in MBq? DICOM wants Bq"),
    "MBq": (lambda dose: dose >= 1e5, "{dose:g} MBq is huge: was it given in Bq? Enhanced PET wants MBq"),
}


def _total_dose_in(unit):
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


_COMMON_RULES = (
    Rule("HighBit is BitsStored - 1", _high_bit),
    Rule("BitsStored is at most BitsAllocated", _bits_stored),
    Rule("PixelData holds Rows x Columns pixels", _pixel_data_length),
    Rule("spacings, thickness and slope are not zero", _non_zero("PixelSpacing", "SliceThickness", "RescaleSlope")),
    Rule("WindowCenter and WindowWidth pair up, width at least 1", _window),
    Rule("ImageOrientationPatient holds two orthogonal unit vectors", _orientation),
    Rule("PatientSize is in metres", _patient_size_in_metres),
    Rule("what a DICOMDIR indexes by has a value", _dicomdir_needs),
)

_PET_RULES = _COMMON_RULES + (
    Rule("DecayCorrection agrees with CorrectedImage", _decay_correction_listed),
    Rule("RadionuclideTotalDose is in becquerels", _total_dose_in("Bq")),
)


# -- modules common to PET and CT (spec section 1) --------------------------------

_PATIENT = _module(
    "Patient",
    _row("PatientName", "2", "user", default=""),
    _row("PatientID", "2", "user", default="UNKNOWN"),  # empty is legal, but DICOMDIR and PACS need one
    _row("PatientBirthDate", "2", "user", default=""),
    _row("PatientSex", "2", "user", default="", enum=(enumerated("M", "F", "O"),)),
)

_GENERAL_STUDY = _module(
    "General Study",
    _row("StudyInstanceUID", "1", "uid"),
    _row("StudyDate", "2", "clock"),
    _row("StudyTime", "2", "clock"),
    _row("ReferringPhysicianName", "2", "user", default=""),
    _row("StudyID", "2", "default", default="1"),
    _row("AccessionNumber", "2", "user", default=""),
    _row("StudyDescription", "3", "user"),
)

_PATIENT_STUDY = _module(
    "Patient Study",
    _row("PatientAge", "3", "user"),
    _row("PatientSize", "3", "user"),  # metres
    _row("PatientWeight", "3", "user"),  # kg; every SUVbw needs it
)

_PATIENT_POSITIONS = (
    "HFP", "HFS", "HFDR", "HFDL", "FFDR", "FFDL", "FFP", "FFS",
    "LFP", "LFS", "RFP", "RFS", "AFDR", "AFDL", "PFDR", "PFDL",
)  # fmt: skip

_GENERAL_SERIES = _module(
    "General Series",
    _row("Modality", "1", "default"),
    _row("SeriesInstanceUID", "1", "uid"),
    _row("SeriesNumber", "2", "user", default=1),
    _row("Laterality", "2C", "user", condition=has_no_image_laterality, enum=(enumerated("R", "L"),)),
    _row(
        "PatientPosition", "2C", "user", condition=has_no_orientation_codes, enum=(defined(*_PATIENT_POSITIONS),)
    ),
    _row("SeriesDate", "3", "clock"),
    _row("SeriesTime", "3", "clock"),
    _row("SeriesDescription", "3", "user"),
    _row("BodyPartExamined", "3", "user"),
)

_FRAME_OF_REFERENCE = _module(
    "Frame of Reference",
    _row("FrameOfReferenceUID", "1", "uid"),
    _row("PositionReferenceIndicator", "2", "default", default=""),
)

_GENERAL_EQUIPMENT = _module(
    "General Equipment",
    _row("Manufacturer", "2", "default", default="dcmforge"),
    _row("InstitutionName", "3", "user"),
    _row("ManufacturerModelName", "3", "user"),
    _row("DeviceSerialNumber", "3", "user"),
    _row("SoftwareVersions", "3", "default", default=f"dcmforge {__version__}"),
)

_GENERAL_IMAGE = _module(
    "General Image",
    _row("InstanceNumber", "2", "slice"),
    _row("PatientOrientation", "2C", "user", condition=has_no_image_plane),
    _row("ContentDate", "2C", "clock", condition=is_temporally_related),
    _row("ContentTime", "2C", "clock", condition=is_temporally_related),
    _row("ImageLaterality", "3", "default", default="U", enum=(enumerated("R", "L", "U", "B"),)),
    _row("LossyImageCompression", "3", "default", default="00", enum=(enumerated("00", "01"),)),
)

_IMAGE_PLANE = _module(
    "Image Plane",
    _row("PixelSpacing", "1", "series"),
    _row("ImageOrientationPatient", "1", "series"),
    _row("ImagePositionPatient", "1", "slice"),
    _row("SliceThickness", "2", "series"),
    _row("SliceLocation", "3", "slice"),
)

_IMAGE_PIXEL = _module(
    "Image Pixel",
    _row("SamplesPerPixel", "1", "default", default=1),
    _row("PhotometricInterpretation", "1", "default", default="MONOCHROME2"),
    _row("Rows", "1", "series"),
    _row("Columns", "1", "series"),
    _row("BitsAllocated", "1", "default", default=16),
    _row("BitsStored", "1", "default", default=16),
    _row("HighBit", "1", "default", default=15),
    _row("PixelRepresentation", "1", "slice", enum=(enumerated(0, 1),)),
    _row("SmallestImagePixelValue", "3", "slice"),
    _row("LargestImagePixelValue", "3", "slice"),
    _row("PixelData", "1C", "slice", condition=has_no_pixel_url),
)

_VOI_LUT = _module(
    "VOI LUT",
    _row("WindowCenter", "1C", "user", condition=has_window_width),
    _row("WindowWidth", "1C", "user", condition=has_window_center),
)

_SOP_COMMON = _module(
    "SOP Common",
    _row("SpecificCharacterSet", "1C", "user", condition=has_non_ascii_text),
    _row("InstanceCreationDate", "3", "clock"),
    _row("InstanceCreationTime", "3", "clock"),
    _row("SOPClassUID", "1", "default"),
    _row("SOPInstanceUID", "1", "slice"),
)


_COMMON = (
    _PATIENT
    + _GENERAL_STUDY
    + _PATIENT_STUDY
    + _GENERAL_SERIES
    + _FRAME_OF_REFERENCE
    + _GENERAL_EQUIPMENT
    + _GENERAL_IMAGE
    + _IMAGE_PLANE
    + _IMAGE_PIXEL
    + _VOI_LUT
    + _SOP_COMMON
)


def _identity(modality, sop_class_uid):
    """Modality and SOPClassUID, fixed for one IOD."""
    return _module(
        "General Series", _row("Modality", "1", "default", default=modality, enum=(enumerated(modality),))
    ) + _module(
        "SOP Common", _row("SOPClassUID", "1", "default", default=sop_class_uid, enum=(enumerated(sop_class_uid),))
    )


# -- PET Image IOD (PS3.3 A.21; spec section 2) ------------------------------------

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"

_PET_SERIES = _module(
    "PET Series",
    _row("SeriesDate", "1", "clock"),
    _row("SeriesTime", "1", "clock"),  # the series reference time: FrameReferenceTime counts from it
    _row(
        "Units",
        "1",
        "default",
        default="BQML",
        enum=(
            defined(
                "CNTS", "NONE", "CM2", "CM2ML", "PCNT", "CPS", "BQML", "MGMINML", "UMOLMINML", "MLMING",
                "MLG", "1CM", "UMOLML", "PROPCNTS", "PROPCPS", "MLMINML", "MLML", "GML", "STDDEV",
            ),
        ),
    ),  # fmt: skip
    _row("CountsSource", "1", "default", default="EMISSION", enum=(enumerated("EMISSION", "TRANSMISSION"),)),
    _row(
        "SeriesType",
        "1",
        "default",
        default=["STATIC", "IMAGE"],
        enum=(
            enumerated("STATIC", "DYNAMIC", "GATED", "WHOLE BODY", position=1),
            enumerated("IMAGE", "REPROJECTION", position=2),
        ),
    ),
    _row("ReprojectionMethod", "2C", "user", condition=is_reprojection, enum=(defined("SUM", "MAX PIXEL"),)),
    _row("NumberOfRRIntervals", "1C", "user", condition=is_gated),
    _row("NumberOfTimeSlots", "1C", "user", condition=is_gated),
    _row("NumberOfTimeSlices", "1C", "series", condition=is_dynamic),
    _row("NumberOfSlices", "1", "series"),
    _row(
        "CorrectedImage",
        "2",
        "default",
        default=["DECY", "ATTN"],
        enum=(defined("DECY", "ATTN", "SCAT", "DTIM", "MOTN", "PMOT", "CLN", "RAN", "RADL", "DCAL", "NORM"),),
    ),
    _row("DecayCorrection", "1", "default", default="START", enum=(defined("NONE", "START", "ADMIN"),)),
    _row("CollimatorType", "2", "default", default="NONE", enum=(defined("NONE", "RING"),)),
    _row("RandomsCorrectionMethod", "3", "user", enum=(defined("NONE", "DLYD", "SING", "PDDL"),)),
    _row("AttenuationCorrectionMethod", "3", "user"),
    _row("ScatterCorrectionMethod", "3", "user"),
    _row("ReconstructionMethod", "3", "user"),
    _row("ConvolutionKernel", "3", "user"),
    _row("SUVType", "3", "user", enum=(enumerated("BSA", "BW", "LBM", "LBMJAMES128", "LBMJANMA", "IBW"),)),
)

_RADIOPHARMACEUTICAL_ITEM = _module(
    "PET Isotope",
    _row("RadionuclideCodeSequence", "2", "user", items=_code_item("PET Isotope"), max_items=1),
    _row("Radiopharmaceutical", "3", "user"),
    _row("RadiopharmaceuticalCodeSequence", "3", "user", items=_code_item("PET Isotope"), max_items=1),
    _row("AdministrationRouteCodeSequence", "3", "user", items=_code_item("PET Isotope"), max_items=1),
    _row("RadiopharmaceuticalStartTime", "3", "user"),
    _row("RadiopharmaceuticalStartDateTime", "3", "user"),
    _row("RadionuclideTotalDose", "3", "user"),  # Bq at the start time
    _row("RadionuclideHalfLife", "3", "user"),  # s
    _row("RadionuclidePositronFraction", "3", "user"),
)

_PET_ISOTOPE = _module(
    "PET Isotope",
    _row("RadiopharmaceuticalInformationSequence", "2", "user", default=[], items=_RADIOPHARMACEUTICAL_ITEM),
)

_PET_MULTI_GATED = _module(
    "PET Multi-gated Acquisition",
    _row("BeatRejectionFlag", "2C", "user", condition=is_gated, enum=(enumerated("Y", "N"),)),
)

_ORIENTATION_ITEM = _code_item("NM/PET Patient Orientation", meaning_type="3") + _module(
    "NM/PET Patient Orientation",
    _row(
        "PatientOrientationModifierCodeSequence",
        "2C",
        "user",
        condition=is_recumbent,
        items=_code_item("NM/PET Patient Orientation", meaning_type="3"),
        max_items=1,
    ),
)

# The HFS codes, as isotopes.orientation_sequences("HFS") gives them (a test checks they agree).
_HFS_ORIENTATION = [
    {
        "CodeValue": "102538003",
        "CodingSchemeDesignator": "SCT",
        "CodeMeaning": "recumbent",
        "PatientOrientationModifierCodeSequence": [
            {"CodeValue": "40199007", "CodingSchemeDesignator": "SCT", "CodeMeaning": "supine"}
        ],
    }
]
_HFS_GANTRY = [{"CodeValue": "102540008", "CodingSchemeDesignator": "SCT", "CodeMeaning": "headfirst"}]

_NM_PET_ORIENTATION = _module(
    "NM/PET Patient Orientation",
    _row(
        "PatientOrientationCodeSequence", "2", "user", default=_HFS_ORIENTATION, items=_ORIENTATION_ITEM, max_items=1
    ),
    _row(
        "PatientGantryRelationshipCodeSequence",
        "2",
        "user",
        default=_HFS_GANTRY,
        items=_code_item("NM/PET Patient Orientation", meaning_type="3"),
        max_items=1,
    ),
)

_PET_IMAGE = _module(
    "PET Image",
    _row(
        "ImageType",
        "1",
        "default",
        default=["DERIVED", "PRIMARY"],
        enum=(enumerated("ORIGINAL", "DERIVED", position=1), enumerated("PRIMARY", position=2)),
    ),
    _row("SamplesPerPixel", "1", "default", default=1, enum=(enumerated(1),)),
    _row("PhotometricInterpretation", "1", "default", default="MONOCHROME2", enum=(enumerated("MONOCHROME2"),)),
    _row("BitsAllocated", "1", "default", default=16, enum=(enumerated(16),)),
    _row("BitsStored", "1", "default", default=16, enum=(enumerated(16),)),
    _row("HighBit", "1", "default", default=15, enum=(enumerated(15),)),
    _row("RescaleIntercept", "1", "default", default=0, enum=(enumerated(0),)),
    _row("RescaleSlope", "1", "slice"),
    _row("FrameReferenceTime", "1", "slice"),  # ms from SeriesTime
    _row("TriggerTime", "1C", "user", condition=is_gated),
    _row("FrameTime", "1C", "user", condition=is_gated),
    _row("LowRRValue", "1C", "user", condition=is_gated_with_beat_rejection),
    _row("HighRRValue", "1C", "user", condition=is_gated_with_beat_rejection),
    _row("LossyImageCompression", "1C", "default", default="00", enum=(enumerated("00", "01"),),
         condition=was_lossy_compressed),
    _row("ImageIndex", "1", "slice"),
    _row("AcquisitionDate", "2", "slice"),
    _row("AcquisitionTime", "2", "slice"),  # frame start
    _row("ActualFrameDuration", "2", "slice"),  # ms
    _row("DecayFactor", "1C", "slice", condition=is_decay_corrected),
)  # fmt: skip

_PET_ATTRIBUTES = _specialise(
    _COMMON,
    _identity("PT", PET_IMAGE_STORAGE)
    + _PET_SERIES
    + _PET_ISOTOPE
    + _PET_MULTI_GATED
    + _NM_PET_ORIENTATION
    + _PET_IMAGE,
)

PET_IMAGE = Description("PET Image", "PT", PET_IMAGE_STORAGE, _PET_ATTRIBUTES, _PET_RULES)


# -- CT Image IOD (PS3.3 A.3; spec section 3) ---------------------------------------

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

_CT_IMAGE = _module(
    "CT Image",
    _row(
        "ImageType",
        "1",
        "default",
        default=["DERIVED", "PRIMARY", "AXIAL"],
        vm="3-n",  # dciodvfy: "A value is required for value 3 in CT Images"
        enum=(
            enumerated("ORIGINAL", "DERIVED", position=1),
            enumerated("PRIMARY", "SECONDARY", position=2),
            defined("AXIAL", "LOCALIZER", position=3),
            defined(
                "VMI", "MAT_SPECIFIC", "MAT_REMOVED", "MAT_FRACTIONAL", "EFF_ATOMIC_NUM",
                "ELECTRON_DENSITY", "MAT_MODIFIED", "MAT_VALUE_BASED", position=4,
            ),
        ),
    ),  # fmt: skip
    _row("SamplesPerPixel", "1", "default", default=1, enum=(enumerated(1),)),
    _row(
        "PhotometricInterpretation",
        "1",
        "default",
        default="MONOCHROME2",
        enum=(enumerated("MONOCHROME1", "MONOCHROME2"),),
    ),
    _row("BitsAllocated", "1", "default", default=16, enum=(enumerated(16),)),
    _row("BitsStored", "1", "default", default=16, enum=(enumerated(12, 13, 14, 15, 16),)),
    _row("HighBit", "1", "default", default=15),
    _row("RescaleIntercept", "1", "slice"),
    _row("RescaleSlope", "1", "slice"),
    _row("RescaleType", "1C", "default", default="HU", condition=is_multienergy, enum=(defined("HU"),)),
    _row("KVP", "2", "user", default=""),  # empty for simulated attenuation maps
    _row("AcquisitionNumber", "2", "user", default=1),
    _row("DataCollectionDiameter", "3", "user"),
    _row("ReconstructionDiameter", "3", "user"),
    _row("ConvolutionKernel", "3", "user"),
)

_CT_SERIES_POSITION = _module(
    "General Series",
    _row(
        "PatientPosition",
        "2C",
        "user",
        default="HFS",
        condition=has_no_orientation_codes,
        enum=(defined(*_PATIENT_POSITIONS),),
    ),
)

CT_IMAGE = Description(
    "CT Image",
    "CT",
    CT_IMAGE_STORAGE,
    _specialise(_COMMON, _identity("CT", CT_IMAGE_STORAGE) + _CT_SERIES_POSITION + _CT_IMAGE),
    _COMMON_RULES,
)


# -- Enhanced PET Image IOD (PS3.3 A.56; spec sections 0.3 and 4) -------------------

ENHANCED_PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.130"


def _says(keyword, word):
    return lambda dataset: text_value(dataset, keyword) == word


def functional_group_items(dataset, macro):
    """Every item of the functional group ``macro`` in an image: the shared one's and the per-frame ones'."""
    found = []
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in values_of(dataset.get(group)):
            if isinstance(item, dict):
                found += [inner for inner in values_of(item.get(macro)) if isinstance(inner, dict)]
    return found


is_original = Condition("ImageType value 1 is ORIGINAL", _says("ImageType", "ORIGINAL"), "may be present")
is_original_image = is_original._replace(scope="image")
is_original_and_stationary = Condition(
    "ImageType value 1 is ORIGINAL and TypeOfDetectorMotion is STATIONARY",
    lambda dataset: _says("ImageType", "ORIGINAL")(dataset) and _says("TypeOfDetectorMotion", "STATIONARY")(dataset),
    "may be present",
)
is_original_and_moving = Condition(
    "ImageType value 1 is ORIGINAL and TypeOfDetectorMotion is not STATIONARY",
    lambda dataset: _says("ImageType", "ORIGINAL")(dataset)
    and not _says("TypeOfDetectorMotion", "STATIONARY")(dataset),
    "may be present",
)
is_original_and_table_moving = Condition(
    "ImageType value 1 is ORIGINAL and TableMotion is DYNAMIC",
    lambda dataset: _says("ImageType", "ORIGINAL")(dataset) and _says("TableMotion", "DYNAMIC")(dataset),
    "may be present",
)
# dciodvfy reports DecayCorrectionDateTime as an error when DecayCorrected is NO (spec 4.6).
is_decay_corrected_enhanced = Condition("DecayCorrected is YES", _says("DecayCorrected", "YES"))
is_randoms_corrected = Condition("RandomsCorrected is YES", _says("RandomsCorrected", "YES"), "may be present")
is_scatter_corrected = Condition("ScatterCorrected is YES", _says("ScatterCorrected", "YES"), "may be present")
is_attenuation_corrected = Condition(
    "AttenuationCorrected is YES", _says("AttenuationCorrected", "YES"), "may be present"
)
is_iterative = Condition(
    "IterativeReconstructionMethod is YES", _says("IterativeReconstructionMethod", "YES"), "may be present"
)
has_no_reconstruction_field_of_view = Condition(
    "ReconstructionFieldOfView is absent", lambda item: "ReconstructionFieldOfView" not in item, "may be present"
)
has_no_reconstruction_diameter = Condition(
    "ReconstructionDiameter is absent", lambda item: "ReconstructionDiameter" not in item, "may be present"
)
has_no_frame_laterality = Condition(
    "FrameLaterality is absent (Frame Anatomy functional group)",
    lambda dataset: not any(
        "FrameLaterality" in item for item in functional_group_items(dataset, "FrameAnatomySequence")
    ),
)
# dcmforge writes images from volumes, never by converting legacy single-frame images.
is_not_legacy_converted = Condition("the image is not converted from legacy single-frame images", lambda dataset: True)
# Only the caller knows whether another series (a CT) gave the attenuation map.
used_another_series = Condition(
    "another series was used for attenuation correction", lambda dataset: False, "may be present"
)


def _acquisition_threshold(keyword, condition_keyword, word):
    """A Start/Termination threshold: required when its condition names it (PS3.3 C.8.22.2)."""
    condition = Condition(f"{condition_keyword} is {word}", _says(condition_keyword, word), "may be present")
    return _row(keyword, "1C", "user", condition=condition)


_ENHANCED_GENERAL_SERIES = _module(
    "General Series",
    _row("Laterality", "2C", "user", condition=has_no_frame_laterality, enum=(enumerated("R", "L"),)),
    # Not required (Enhanced PET is not among the CT/MR classes), but the only place left for
    # the patient position once the NM/PET orientation code sequences are gone.
    _row("PatientPosition", "3", "user", enum=(defined(*_PATIENT_POSITIONS),)),
)

_ENHANCED_PET_SERIES = _module(
    "Enhanced PET Series",
    _row(
        "RelatedSeriesSequence",
        "1C",
        "user",
        condition=used_another_series,
        items=_module(
            "Enhanced PET Series",
            _row("StudyInstanceUID", "1", "user"),
            _row("SeriesInstanceUID", "1", "user"),
            _row("PurposeOfReferenceCodeSequence", "2", "user", items=_code_item("Enhanced PET Series")),
        ),
    ),
)

# Type 1 here; the defaults say "not known" rather than make a scanner up.
_ENHANCED_GENERAL_EQUIPMENT = _module(
    "Enhanced General Equipment",
    _row("Manufacturer", "1", "default", default="dcmforge"),
    _row("ManufacturerModelName", "1", "user", default="unknown"),
    _row("DeviceSerialNumber", "1", "user", default="unknown"),
    _row("SoftwareVersions", "1", "default", default=f"dcmforge {__version__}"),
)

_ENHANCED_PET_IMAGE_MODULE = _module(
    "Enhanced PET Image",
    _row(
        "ImageType",
        "1",
        "default",
        default=["DERIVED", "PRIMARY", "VOLUME", "NONE"],
        vm="4",
        enum=(enumerated("ORIGINAL", "DERIVED", "MIXED", position=1), enumerated("PRIMARY", position=2)),
    ),
    _row("PixelPresentation", "1", "default", default="MONOCHROME", enum=(enumerated("MONOCHROME", "MIXED"),)),
    _row(
        "VolumetricProperties",
        "1",
        "default",
        default="VOLUME",
        enum=(enumerated("VOLUME", "SAMPLED", "DISTORTED", "MIXED"),),
    ),
    _row("VolumeBasedCalculationTechnique", "1", "default", default="NONE"),
    _row("AcquisitionDateTime", "1C", "series", condition=is_original),  # the first frame's start
    _row("AcquisitionDuration", "1C", "series", condition=is_original),  # s, first frame start to last frame end
    _row("SamplesPerPixel", "1", "default", default=1, enum=(enumerated(1),)),
    _row("PhotometricInterpretation", "1", "default", default="MONOCHROME2", enum=(enumerated("MONOCHROME2"),)),
    _row("BitsAllocated", "1", "default", default=16, enum=(enumerated(16),)),
    _row("BitsStored", "1", "default", default=16, enum=(enumerated(16),)),
    _row("HighBit", "1", "default", default=15, enum=(enumerated(15),)),
    _row(
        "ContentQualification",
        "1",
        "user",
        default="RESEARCH",
        enum=(enumerated("PRODUCT", "RESEARCH", "SERVICE"),),
    ),
    _row(
        "BurnedInAnnotation",
        "1C",
        "default",
        default="NO",
        condition=is_not_legacy_converted,
        enum=(enumerated("YES", "NO"),),
    ),
    _row(
        "LossyImageCompression",
        "1C",
        "default",
        default="00",
        condition=is_not_legacy_converted,
        enum=(enumerated("00", "01"),),
    ),
    _row("PresentationLUTShape", "1", "default", default="IDENTITY", enum=(enumerated("IDENTITY"),)),
)

_ENHANCED_RADIOPHARMACEUTICAL_ITEM = _module(
    "Enhanced PET Isotope",
    _row("RadiopharmaceuticalAgentNumber", "1", "series"),  # 1, 2, ... the item's number
    _row("RadionuclideCodeSequence", "1", "user", items=_code_item("Enhanced PET Isotope"), max_items=1),
    _row("AdministrationRouteCodeSequence", "1", "user", items=_code_item("Enhanced PET Isotope"), max_items=1),
    _row("RadiopharmaceuticalStartDateTime", "1", "user"),
    _row("RadionuclideTotalDose", "2", "user"),  # MBq here (Bq in the PET Isotope module)
    _row("RadionuclideHalfLife", "1", "user"),  # s
    _row("RadionuclidePositronFraction", "1", "user"),
    _row("RadiopharmaceuticalCodeSequence", "1", "user", items=_code_item("Enhanced PET Isotope"), max_items=1),
)

_ENHANCED_PET_ISOTOPE = _module(
    "Enhanced PET Isotope",
    _row("RadiopharmaceuticalInformationSequence", "1", "user", items=_ENHANCED_RADIOPHARMACEUTICAL_ITEM),
)

_AXIAL_VIEW = [{"CodeValue": "399348003", "CodingSchemeDesignator": "SCT", "CodeMeaning": "axial"}]

_ENHANCED_PET_ACQUISITION = _module(
    "Enhanced PET Acquisition",
    _row(
        "AcquisitionStartCondition",
        "1C",
        "user",
        condition=is_original,
        enum=(defined("DENS", "RDD", "MANU", "AUTO", "CARD_TRIG", "RESP_TRIG"),),
    ),
    _acquisition_threshold("StartDensityThreshold", "AcquisitionStartCondition", "DENS"),
    _acquisition_threshold("StartRelativeDensityDifferenceThreshold", "AcquisitionStartCondition", "RDD"),
    _acquisition_threshold("StartCardiacTriggerCountThreshold", "AcquisitionStartCondition", "CARD_TRIG"),
    _acquisition_threshold("StartRespiratoryTriggerCountThreshold", "AcquisitionStartCondition", "RESP_TRIG"),
    _row(
        "AcquisitionTerminationCondition",
        "1C",
        "user",
        condition=is_original,
        enum=(defined("CNTS", "DENS", "RDD", "MANU", "OVFL", "TIME", "CARD_TRIG", "RESP_TRIG"),),
    ),
    _acquisition_threshold("TerminationCountsThreshold", "AcquisitionTerminationCondition", "CNTS"),
    _acquisition_threshold("TerminationDensityThreshold", "AcquisitionTerminationCondition", "DENS"),
    _acquisition_threshold("TerminationRelativeDensityThreshold", "AcquisitionTerminationCondition", "RDD"),
    _acquisition_threshold("TerminationTimeThreshold", "AcquisitionTerminationCondition", "TIME"),
    _acquisition_threshold("TerminationCardiacTriggerCountThreshold", "AcquisitionTerminationCondition", "CARD_TRIG"),
    _acquisition_threshold(
        "TerminationRespiratoryTriggerCountThreshold", "AcquisitionTerminationCondition", "RESP_TRIG"
    ),
    _row(
        "TypeOfDetectorMotion",
        "1C",
        "user",
        condition=is_original,
        enum=(defined("STATIONARY", "STEP AND SHOOT", "CONTINUOUS", "WOBBLE", "CLAMSHELL"),),
    ),
    _row(
        "DetectorGeometry",
        "1C",
        "user",
        condition=is_original_and_stationary,
        enum=(defined("CYLINDRICAL_RING", "CYL_RING_PARTIAL", "MULTIPLE_PLANAR", "MUL_PLAN_PARTIAL"),),
    ),
    _row("TransverseDetectorSeparation", "1C", "user", condition=is_original),  # mm
    _row("AxialDetectorDimension", "1C", "user", condition=is_original),  # mm
    # As in the PET Series module; written only when required (conditional defaults are).
    _row("CollimatorType", "1C", "user", default="NONE", condition=is_original, enum=(defined("NONE", "RING"),)),
    _row("CoincidenceWindowWidth", "1C", "user", condition=is_original),  # ns
    _row(
        "EnergyWindowRangeSequence",
        "1C",
        "user",
        condition=is_original,
        items=_module(
            "Enhanced PET Acquisition",
            _row("EnergyWindowLowerLimit", "1", "user"),  # keV
            _row("EnergyWindowUpperLimit", "1", "user"),
        ),
    ),
    _row("TableMotion", "1", "user", default="STATIC", enum=(enumerated("STATIC", "DYNAMIC"),)),
    # Whether the reconstruction used time of flight: only the caller knows; dcmforge does not claim it.
    _row("TimeOfFlightInformationUsed", "1", "user", default="FALSE", enum=(enumerated("TRUE", "FALSE"),)),
    _row(
        "ViewCodeSequence",
        "1",
        "user",
        default=_AXIAL_VIEW,
        items=_code_item("Enhanced PET Acquisition")
        + _module(
            "Enhanced PET Acquisition",
            _row("ViewModifierCodeSequence", "3", "user", items=_code_item("Enhanced PET Acquisition")),
        ),
        max_items=1,
    ),
)

_ENHANCED_PET_CORRECTIONS = _module(
    "Enhanced PET Corrections",
    _row("CountsSource", "1", "user", default="EMISSION", enum=(enumerated("EMISSION", "TRANSMISSION"),)),
    *(
        _row(keyword, "1", "series", enum=(enumerated("YES", "NO"),))
        for keyword in (
            "DecayCorrected", "AttenuationCorrected", "ScatterCorrected", "DeadTimeCorrected",
            "GantryMotionCorrected", "PatientMotionCorrected", "CountLossNormalizationCorrected",
            "RandomsCorrected", "NonUniformRadialSamplingCorrected", "SensitivityCalibrated",
            "DetectorNormalizationCorrection",
        )
    ),  # fmt: skip
    _row(
        "RandomsCorrectionMethod",
        "1C",
        "user",
        condition=is_randoms_corrected,
        enum=(defined("NONE", "DLYD", "SING", "PDDL"),),
    ),
    # The defaults are what a PET/CT has (the spec's reference file says the same).
    _row(
        "AttenuationCorrectionSource",
        "1C",
        "user",
        default="CT",
        condition=is_attenuation_corrected,
        enum=(defined("CT", "MR", "POSITRON SOURCE", "SINGLE PHOTON"),),
    ),
    _row(
        "AttenuationCorrectionTemporalRelationship",
        "1C",
        "user",
        default="CONCURRENT",
        condition=is_attenuation_corrected,
        enum=(defined("CONCURRENT", "SEPARATE", "SIMULTANEOUS"),),
    ),
    _row("ScatterCorrectionMethod", "1C", "user", condition=is_scatter_corrected),
    _row("DecayCorrectionDateTime", "1C", "series", condition=is_decay_corrected_enhanced),
)

_ACQUISITION_CONTEXT = _module(
    "Acquisition Context", _row("AcquisitionContextSequence", "2", "default", default=[])
)


# -- functional groups (PS3.3 Table A.56-2; spec 4.7) ---------------------------------


class FunctionalGroup(NamedTuple):
    """One functional group macro: its sequence, the rows of its one item, when it is required.

    Each is either in the shared item or in every per-frame item, never in both;
    ``required`` None means always; ``per_frame_only`` groups never go in the shared item.
    """

    keyword: str
    name: str
    items: tuple
    required: Condition | None = None
    per_frame_only: bool = False


def _group(keyword, name, *rows, required=None, per_frame_only=False):
    return FunctionalGroup(keyword, name, _module(name, *rows), required, per_frame_only)


FUNCTIONAL_GROUPS = (
    _group(
        "PixelMeasuresSequence",
        "Pixel Measures",
        _row("PixelSpacing", "1", "series"),
        _row("SliceThickness", "1", "series"),
        _row("SpacingBetweenSlices", "3", "series"),
    ),
    _group(
        "FrameContentSequence",
        "Frame Content",
        _row("FrameAcquisitionNumber", "3", "user"),
        _row("FrameReferenceDateTime", "1C", "slice", condition=is_original_image),
        _row("FrameAcquisitionDateTime", "1C", "slice", condition=is_original_image),
        _row("FrameAcquisitionDuration", "1C", "slice", condition=is_original_image),  # ms
        # 1C in the macro, always required in Enhanced PET (spec 4.7; dciodvfy agrees).
        _row("StackID", "1", "slice"),
        _row("InStackPositionNumber", "1", "slice"),
        _row("TemporalPositionIndex", "1", "slice"),
        _row("DimensionIndexValues", "1", "slice"),
        per_frame_only=True,
    ),
    _group("PlanePositionSequence", "Plane Position (Patient)", _row("ImagePositionPatient", "1", "slice")),
    _group("PlaneOrientationSequence", "Plane Orientation (Patient)", _row("ImageOrientationPatient", "1", "series")),
    _group(
        "FrameAnatomySequence",
        "Frame Anatomy",
        _row(
            "AnatomicRegionSequence",
            "1",
            "user",
            default=[{"CodeValue": "38266002", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Entire body"}],
            items=_code_item("Frame Anatomy"),
        ),
        _row("FrameLaterality", "1", "user", default="U", enum=(enumerated("R", "L", "U", "B"),)),
    ),
    _group(
        "PixelValueTransformationSequence",
        "Pixel Value Transformation",
        _row("RescaleIntercept", "1", "slice"),
        _row("RescaleSlope", "1", "slice"),
        _row("RescaleType", "1", "default", default="US"),  # unspecified: the units are in Real World Value Mapping
    ),
    _group(
        "FrameVOILUTSequence",
        "Frame VOI LUT",
        _row("WindowCenter", "1", "user"),
        _row("WindowWidth", "1", "user"),
        _row("WindowCenterWidthExplanation", "3", "user"),
    ),
    _group(
        "RealWorldValueMappingSequence",
        "Real World Value Mapping",
        _row("RealWorldValueFirstValueMapped", "1", "series"),
        _row("RealWorldValueLastValueMapped", "1", "series"),
        _row("RealWorldValueIntercept", "1", "slice"),
        _row("RealWorldValueSlope", "1", "slice"),
        _row("LUTExplanation", "1", "series"),
        _row("LUTLabel", "1", "series"),
        _row("MeasurementUnitsCodeSequence", "1", "series", items=_code_item("Real World Value Mapping"), max_items=1),
    ),
    _group(
        "RadiopharmaceuticalUsageSequence",
        "Radiopharmaceutical Usage",
        _row("RadiopharmaceuticalAgentNumber", "1", "default", default=1),
    ),
    _group(
        "PETFrameTypeSequence",
        "PET Frame Type",
        _row("FrameType", "1", "series", vm="4"),
        _row("PixelPresentation", "1", "series"),
        _row("VolumetricProperties", "1", "series"),
        _row("VolumeBasedCalculationTechnique", "1", "series"),
    ),
    _group(
        "PETFrameAcquisitionSequence",
        "PET Frame Acquisition",
        _row("TableHeight", "1", "user"),
        _row("GantryDetectorTilt", "1", "user"),
        _row("GantryDetectorSlew", "1", "user"),
        _row("DataCollectionDiameter", "1", "user"),
        required=is_original,
    ),
    _group("PETDetectorMotionDetailsSequence", "PET Detector Motion Details", required=is_original_and_moving),
    _group(
        "PETPositionSequence",
        "PET Position",
        _row("TablePosition", "1", "user"),
        _row("DataCollectionCenterPatient", "1", "user"),
        _row("ReconstructionTargetCenterPatient", "1", "user"),
        required=is_original,
    ),
    _group(
        "PETFrameCorrectionFactorsSequence",
        "PET Frame Correction Factors",
        # 1C in PS3.3; dciodvfy requires all but DecayFactor whenever the group is present.
        _row("PrimaryPromptsCountsAccumulated", "1", "user"),
        _row("SliceSensitivityFactor", "1", "user"),
        _row("DecayFactor", "1C", "slice", condition=is_decay_corrected_enhanced._replace(scope="image")),
        _row("ScatterFractionFactor", "1", "user"),
        _row("DeadTimeFactor", "1", "user"),
        required=is_original,
    ),
    _group(
        "PETReconstructionSequence",
        "PET Reconstruction",
        _row("ReconstructionType", "1", "user", enum=(defined("2D", "3D", "3D_REBINNED"),)),
        _row(
            "ReconstructionAlgorithm",
            "1",
            "user",
            enum=(defined("FILTER_BACK_PROJ", "REPROJECTION", "RAMLA", "MLEM"),),
        ),
        _row("IterativeReconstructionMethod", "1", "user", enum=(enumerated("YES", "NO"),)),
        _row("NumberOfIterations", "1C", "user", condition=is_iterative),
        _row("NumberOfSubsets", "1C", "user", condition=is_iterative),
        _row("ReconstructionDiameter", "1C", "user", condition=has_no_reconstruction_field_of_view),
        _row("ReconstructionFieldOfView", "1C", "user", condition=has_no_reconstruction_diameter),
        required=is_original,
    ),
    _group("PETTableDynamicsSequence", "PET Table Dynamics", required=is_original_and_table_moving),
)


def _group_rows(source, per_frame):
    """The functional groups as rows of a Shared (or Per-frame) item; where each must be is a rule."""
    return tuple(
        Attribute(group.keyword, "3", group.name, source, items=group.items, max_items=1)
        for group in FUNCTIONAL_GROUPS
        if per_frame or not group.per_frame_only
    )


_MULTIFRAME_FUNCTIONAL_GROUPS = _module(
    "Multi-frame Functional Groups",
    _row("SharedFunctionalGroupsSequence", "1", "series", items=_group_rows("series", False), max_items=1),
    _row("PerFrameFunctionalGroupsSequence", "1", "slice", items=_group_rows("slice", True)),
    _row("InstanceNumber", "1", "series"),
    _row("ContentDate", "1", "clock"),
    _row("ContentTime", "1", "clock"),
    _row("NumberOfFrames", "1", "series"),
)

_MULTIFRAME_DIMENSION = _module(
    "Multi-frame Dimension",
    _row(
        "DimensionOrganizationSequence",
        "1",
        "series",
        items=_module("Multi-frame Dimension", _row("DimensionOrganizationUID", "1", "series")),
    ),
    # 1C: required when the frames have dimension indices, which dcmforge always gives.
    _row(
        "DimensionIndexSequence",
        "1",
        "series",
        items=_module(
            "Multi-frame Dimension",
            _row("DimensionIndexPointer", "1", "series"),
            _row("FunctionalGroupPointer", "1", "series"),  # 1C: the index is inside a functional group
            _row("DimensionOrganizationUID", "1", "series"),
            _row("DimensionDescriptionLabel", "3", "series"),
        ),
    ),
    _row("DimensionOrganizationType", "3", "series", enum=(defined("3D", "3D_TEMPORAL"),)),
)

_ENHANCED_SOP_INSTANCE = _module("SOP Common", _row("SOPInstanceUID", "1", "series"))


def _without(rows, *keywords):
    return tuple(row for row in rows if row.keyword not in keywords)


# The Image Pixel module's smallest/largest values would have to hold for every frame at once.
_ENHANCED_PET_ATTRIBUTES = _specialise(
    _PATIENT
    + _GENERAL_STUDY
    + _PATIENT_STUDY
    + _GENERAL_SERIES
    + _FRAME_OF_REFERENCE
    + _GENERAL_EQUIPMENT
    + _without(_IMAGE_PIXEL, "SmallestImagePixelValue", "LargestImagePixelValue")
    + _SOP_COMMON,
    _identity("PT", ENHANCED_PET_IMAGE_STORAGE)
    + _ENHANCED_GENERAL_SERIES
    + _ENHANCED_PET_SERIES
    + _ENHANCED_GENERAL_EQUIPMENT
    + _ENHANCED_PET_IMAGE_MODULE
    + _ENHANCED_PET_ISOTOPE
    + _ENHANCED_PET_ACQUISITION
    + _ENHANCED_PET_CORRECTIONS
    + _ACQUISITION_CONTEXT
    + _MULTIFRAME_FUNCTIONAL_GROUPS
    + _MULTIFRAME_DIMENSION
    + _ENHANCED_SOP_INSTANCE,
)


def _functional_group_placement(dataset):
    """Each group in the shared item or in every per-frame item, never both; the required ones somewhere."""
    shared = [item for item in values_of(dataset.get("SharedFunctionalGroupsSequence")) if isinstance(item, dict)]
    shared = shared[0] if shared else {}
    frames = [item for item in values_of(dataset.get("PerFrameFunctionalGroupsSequence")) if isinstance(item, dict)]
    found = []
    for group in FUNCTIONAL_GROUPS:
        in_frames = sum(group.keyword in item for item in frames)
        where = f"PerFrameFunctionalGroupsSequence.{group.keyword}"
        if group.keyword in shared and (group.per_frame_only or in_frames):
            why = "it differs per frame by definition" if group.per_frame_only else "it is in per-frame items too"
            shared_path = f"SharedFunctionalGroupsSequence[1].{group.keyword}"
            found.append((shared_path, "error", f"in the shared item, but {why}"))
        elif in_frames not in (0, len(frames)):
            found.append((where, "error", f"in {in_frames} of {len(frames)} per-frame items: in every one, or shared"))
        elif group.keyword not in shared and not in_frames and (group.required is None or group.required.test(dataset)):
            because = f" (required when {group.required.text})" if group.required else ""
            found.append((where, "error", f"missing from the shared and the per-frame functional groups{because}"))
    return found


_ENHANCED_PET_RULES = _COMMON_RULES + (
    Rule("each functional group is shared or in every frame; the required ones are there", _functional_group_placement),
    Rule("RadionuclideTotalDose is in megabecquerels", _total_dose_in("MBq")),
)

ENHANCED_PET_IMAGE = Description(
    "Enhanced PET Image", "PT", ENHANCED_PET_IMAGE_STORAGE, _ENHANCED_PET_ATTRIBUTES, _ENHANCED_PET_RULES
)


# -- choosing a description ----------------------------------------------------------

# (modality, multiframe) -> description.
DESCRIPTIONS = {
    ("PT", False): PET_IMAGE,
    ("CT", False): CT_IMAGE,
    ("PT", True): ENHANCED_PET_IMAGE,
}

_MODALITY_NAMES = {"PT": "PT", "PET": "PT", "CT": "CT"}


def description_for(modality, multiframe=False):
    """The description of the image dcmforge writes for ``modality`` ("PT" or "CT")."""
    code = _MODALITY_NAMES.get(modality.strip().upper()) if isinstance(modality, str) else None
    if code is None:
        raise DcmforgeError(f"modality {modality!r}: dcmforge describes PT (or PET) and CT images")
    description = DESCRIPTIONS.get((code, bool(multiframe)))
    if description is None:
        raise DcmforgeError(
            f"multi-frame {code} images are not described (only Enhanced PET is); write single-frame images"
        )
    return description


def defaults(description):
    """keyword -> value for every attribute with a default (a fresh copy: callers may change it)."""
    return defaults_of(description.attributes)


def defaults_of(rows):
    """keyword -> value for every row with a default, e.g. the rows of a functional group's item."""
    return {row.keyword: copy.deepcopy(row.default) for row in rows if row.default is not None}


def attribute(description, keyword):
    """The row of ``keyword`` in ``description``, or None."""
    for row in description.attributes:
        if row.keyword == keyword:
            return row
    return None


def keywords_from(description, *sources):
    """The keywords whose value comes from one of ``sources`` (e.g. "slice"), in description order."""
    return tuple(row.keyword for row in description.attributes if row.source in sources)
