"""The PET Image IOD (PS3.3 A.21): the PET Series, PET Isotope, PET Multi-gated Acquisition,
NM/PET Patient Orientation and PET Image modules over the common ones.
"""

from ..dicom.values import text_value, values_of
from .codes import ORIENTATION_CODES, PET_UNITS, UNSTATED_UNITS, current_code, orientation_sequences
from .common import (
    COMMON_MODULES,
    COMMON_RULES,
    LOSSY,
    MONOCHROME_16_BIT,
    identity,
    total_dose_in,
)
from .model import (
    Condition,
    Description,
    Rule,
    code_item,
    defined,
    enumerated,
    module,
    row,
    specialise,
)

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"


# -- PET Series (PS3.3 C.8.9.1) ------------------------------------------------------

# Terms the Enhanced PET modules name too.
UNITS = defined(*PET_UNITS)
COUNTS_SOURCES = enumerated("EMISSION", "TRANSMISSION")
COLLIMATOR_TYPES = defined("NONE", "RING")
RANDOMS_CORRECTION_METHODS = defined("NONE", "DLYD", "SING", "PDDL")

SERIES_TYPES = (
    enumerated("STATIC", "DYNAMIC", "GATED", "WHOLE BODY", position=1),
    enumerated("IMAGE", "REPROJECTION", position=2),
)
CORRECTIONS = defined("DECY", "ATTN", "SCAT", "DTIM", "MOTN", "PMOT", "CLN", "RAN", "RADL", "DCAL", "NORM")
SUV_TYPES = enumerated("BSA", "BW", "LBM", "LBMJAMES128", "LBMJANMA", "IBW")


def _series_type_is(word):
    return lambda dataset: text_value(dataset, "SeriesType") == word


is_dynamic = Condition("SeriesType value 1 is DYNAMIC", _series_type_is("DYNAMIC"))
is_gated = Condition("SeriesType value 1 is GATED", _series_type_is("GATED"))
is_reprojection = Condition(
    "SeriesType value 2 is REPROJECTION", lambda dataset: text_value(dataset, "SeriesType", 2) == "REPROJECTION"
)

# fmt: off
_PET_SERIES = module("PET Series",
    row("SeriesDate",                  "1",  "clock"),
    row("SeriesTime",                  "1",  "clock"),  # the series reference time: FrameReferenceTime counts from it
    row("Units",                       "1",  "default", default=UNSTATED_UNITS, enum=UNITS),  # docs/iods.md 2
    row("CountsSource",                "1",  "default", default="EMISSION", enum=COUNTS_SOURCES),
    row("SeriesType",                  "1",  "default", default=["STATIC", "IMAGE"], enum=SERIES_TYPES),
    row("ReprojectionMethod",          "2C", "user",    condition=is_reprojection, enum=defined("SUM", "MAX PIXEL")),
    row("NumberOfRRIntervals",         "1C", "user",    condition=is_gated),
    row("NumberOfTimeSlots",           "1C", "user",    condition=is_gated),
    row("NumberOfTimeSlices",          "1C", "series",  condition=is_dynamic),
    row("NumberOfSlices",              "1",  "series"),
    row("CorrectedImage",              "2",  "user",    default="", enum=CORRECTIONS),  # only what is stated
    row("DecayCorrection",             "1",  "default", default="NONE", enum=defined("NONE", "START", "ADMIN")),
    row("CollimatorType",              "2",  "default", default="NONE", enum=COLLIMATOR_TYPES),
    row("RandomsCorrectionMethod",     "3",  "user",    enum=RANDOMS_CORRECTION_METHODS),
    row("AttenuationCorrectionMethod", "3",  "user"),
    row("ScatterCorrectionMethod",     "3",  "user"),
    row("ReconstructionMethod",        "3",  "user"),
    row("ConvolutionKernel",           "3",  "user"),
    row("SUVType",                     "3",  "user",    enum=SUV_TYPES),
)
# fmt: on


# -- PET Isotope (PS3.3 C.8.9.2) -----------------------------------------------------

# fmt: off
_RADIOPHARMACEUTICAL_ITEM = module("PET Isotope",
    row("RadionuclideCodeSequence",         "2", "user", items=code_item("PET Isotope"), max_items=1),
    row("Radiopharmaceutical",              "3", "user"),
    row("RadiopharmaceuticalCodeSequence",  "3", "user", items=code_item("PET Isotope"), max_items=1),
    row("AdministrationRouteCodeSequence",  "3", "user", items=code_item("PET Isotope"), max_items=1),
    row("RadiopharmaceuticalStartTime",     "3", "user"),
    row("RadiopharmaceuticalStartDateTime", "3", "user"),
    row("RadionuclideTotalDose",            "3", "user"),  # Bq at the start time
    row("RadionuclideHalfLife",             "3", "user"),  # s
    row("RadionuclidePositronFraction",     "3", "user"),
)
# fmt: on

# fmt: off
_PET_ISOTOPE = module("PET Isotope",
    row("RadiopharmaceuticalInformationSequence", "2", "user", default=[], items=_RADIOPHARMACEUTICAL_ITEM),
)
# fmt: on


# -- PET Multi-gated Acquisition (PS3.3 C.8.9.3) --------------------------------------

# fmt: off
_PET_MULTI_GATED = module("PET Multi-gated Acquisition",
    row("BeatRejectionFlag", "2C", "user", condition=is_gated, enum=enumerated("Y", "N")),
)
# fmt: on


# -- NM/PET Patient Orientation (PS3.3 C.8.4.6) ----------------------------------------

is_recumbent = Condition(
    "the orientation is recumbent (supine or prone completes it)",
    lambda item: (
        current_code(item.get("CodeValue"), item.get("CodingSchemeDesignator")) == ORIENTATION_CODES["recumbent"][0]
    ),
    otherwise="may be present",
)

_ORIENTATION_CODE = code_item("NM/PET Patient Orientation", meaning_type="3")

# fmt: off
_ORIENTATION_ITEM = _ORIENTATION_CODE + module("NM/PET Patient Orientation",
    row("PatientOrientationModifierCodeSequence", "2C", "user", condition=is_recumbent, items=_ORIENTATION_CODE, max_items=1),
)
# fmt: on

_HFS = orientation_sequences("HFS")
_HFS_ORIENTATION, _HFS_GANTRY = _HFS["PatientOrientationCodeSequence"], _HFS["PatientGantryRelationshipCodeSequence"]

# fmt: off
NM_PET_ORIENTATION = module("NM/PET Patient Orientation",
    row("PatientOrientationCodeSequence",        "2", "user", default=_HFS_ORIENTATION, items=_ORIENTATION_ITEM, max_items=1),
    row("PatientGantryRelationshipCodeSequence", "2", "user", default=_HFS_GANTRY, items=_ORIENTATION_CODE, max_items=1),
)
# fmt: on


# -- PET Image (PS3.3 C.8.9.4) ---------------------------------------------------------

is_gated_with_beat_rejection = Condition(
    "SeriesType value 1 is GATED and BeatRejectionFlag is Y",
    lambda dataset: _series_type_is("GATED")(dataset) and text_value(dataset, "BeatRejectionFlag") == "Y",
)
is_decay_corrected = Condition(
    "DecayCorrection is not NONE", lambda dataset: text_value(dataset, "DecayCorrection") not in (None, "NONE")
)
# dcmforge writes the pixels it is given; only the caller knows of an earlier lossy step.
was_lossy_compressed = Condition("the image has been lossy compressed", lambda dataset: False, "may be present")

IMAGE_TYPES = (enumerated("ORIGINAL", "DERIVED", position=1), enumerated("PRIMARY", position=2))

# fmt: off
_PET_IMAGE = module("PET Image",
    row("ImageType",             "1",  "default", default=["DERIVED", "PRIMARY"], enum=IMAGE_TYPES),
    *MONOCHROME_16_BIT,
    row("RescaleIntercept",      "1",  "default", default=0, enum=enumerated(0)),
    row("RescaleSlope",          "1",  "slice"),
    row("FrameReferenceTime",    "1",  "slice"),  # ms from SeriesTime
    row("TriggerTime",           "1C", "user",    condition=is_gated),
    row("FrameTime",             "1C", "user",    condition=is_gated),
    row("LowRRValue",            "1C", "user",    condition=is_gated_with_beat_rejection),
    row("HighRRValue",           "1C", "user",    condition=is_gated_with_beat_rejection),
    row("LossyImageCompression", "1C", "default", default="00", enum=LOSSY, condition=was_lossy_compressed),
    row("ImageIndex",            "1",  "slice"),
    row("AcquisitionDate",       "2",  "slice"),
    row("AcquisitionTime",       "2",  "slice"),  # frame start
    row("ActualFrameDuration",   "2",  "slice"),  # ms
    row("DecayFactor",           "1C", "slice",   condition=is_decay_corrected),
)
# fmt: on


# -- checks and the IOD ------------------------------------------------------------------


def _decay_correction_listed(dataset):
    corrections = [text for text in values_of(dataset.get("CorrectedImage")) if isinstance(text, str)]
    decay = text_value(dataset, "DecayCorrection")
    if decay not in (None, "NONE") and "DECY" not in corrections:
        return [("CorrectedImage", "warning", f"DecayCorrection is {decay} but DECY is not listed")]
    if decay == "NONE" and "DECY" in corrections:
        return [("DecayCorrection", "warning", "NONE, but CorrectedImage lists DECY")]
    return []


_PET_RULES = COMMON_RULES + (
    Rule("DecayCorrection agrees with CorrectedImage", _decay_correction_listed),
    Rule("RadionuclideTotalDose is in becquerels", total_dose_in("Bq")),
)

_PET_ATTRIBUTES = specialise(
    COMMON_MODULES,
    identity("PT", PET_IMAGE_STORAGE)
    + _PET_SERIES
    + _PET_ISOTOPE
    + _PET_MULTI_GATED
    + NM_PET_ORIENTATION
    + _PET_IMAGE,
)

PET_IMAGE = Description("PET Image", "PT", PET_IMAGE_STORAGE, _PET_ATTRIBUTES, _PET_RULES)
