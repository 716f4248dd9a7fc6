"""The NM Image IOD (PS3.3 A.5) as dcmforge writes it: one reconstructed SPECT volume (RECON TOMO),
every slice a frame of one file, the geometry in DetectorInformationSequence (C.8.4.11, C.8.4.14).

The modules are those of A.5 for RECON TOMO: NM Image Pixel, Multi-frame, NM Multi-frame, NM Image,
NM Isotope, NM Detector, NM TOMO Acquisition, NM Reconstruction and NM/PET Patient Orientation over
the common ones. What a reconstruction does not know of its acquisition (collimator, counts,
rotations) is a Type 2 attribute left empty. RescaleSlope and RescaleIntercept are not NM
attributes; they are written beside RealWorldValueMappingSequence because the readers people use
apply only them (docs/iods.md 6), which dciodvfy reports as a "Standard Extended SOP Class".
"""

from ..dicom.values import text_value, values_of
from .common import (
    COMMON_RULES,
    FRAME_OF_REFERENCE,
    GENERAL_EQUIPMENT,
    GENERAL_IMAGE,
    GENERAL_SERIES,
    GENERAL_STUDY,
    IMAGE_PIXEL,
    PATIENT,
    PATIENT_STUDY,
    SOP_COMMON,
    VOI_LUT,
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
    without,
)
from .pet import NM_PET_ORIENTATION

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"

# The one frame index of a reconstructed volume (C.8.4.8.1.1, Table C.8-8: RECON TOMO).
FRAME_INCREMENT_POINTER = "SliceVector"


# -- NM Image Pixel and Multi-frame (PS3.3 C.8.4.7, C.7.6.6) ------------------------------------

# fmt: off
_NM_IMAGE_PIXEL = module("NM Image Pixel",
    row("SamplesPerPixel",           "1", "default", default=1,             enum=enumerated(1)),
    row("PhotometricInterpretation", "1", "default", default="MONOCHROME2", enum=enumerated("MONOCHROME2", "PALETTE COLOR")),
    row("BitsAllocated",             "1", "default", default=16,            enum=enumerated(8, 16)),
    row("BitsStored",                "1", "default", default=16,            enum=enumerated(8, 16)),
    row("HighBit",                   "1", "default", default=15,            enum=enumerated(7, 15)),
    row("PixelSpacing",              "2", "series"),
)
# FrameIncrementPointer, Type 1 in Multi-frame too, is NM Multi-frame's row below.
_MULTI_FRAME = module("Multi-frame",
    row("NumberOfFrames", "1", "series"),
)
# fmt: on


# -- NM Multi-frame (PS3.3 C.8.4.8) ----------------------------------------------------------------


def _points_to(keyword):
    return lambda dataset: keyword in values_of(dataset.get("FrameIncrementPointer"))


is_tomography = Condition(
    "ImageType value 3 is TOMO, GATED TOMO, RECON TOMO or RECON GATED TOMO",
    lambda dataset: text_value(dataset, "ImageType", 3) in ("TOMO", "GATED TOMO", "RECON TOMO", "RECON GATED TOMO"),
)
indexes_slices = Condition("FrameIncrementPointer holds SliceVector", _points_to("SliceVector"))

# NumberOfDetectors is 1 for RECON TOMO (C.8.4.8.1.3). NumberOfEnergyWindows and NumberOfRotations
# count the items of their sequences (C.8.4.9, C.8.4.12), which hold what the input knows.
# fmt: off
_NM_MULTI_FRAME = module("NM Multi-frame",
    row("FrameIncrementPointer", "1",  "default", default=FRAME_INCREMENT_POINTER,
        enum=enumerated(FRAME_INCREMENT_POINTER)),
    row("NumberOfEnergyWindows", "1",  "series"),
    row("NumberOfDetectors",     "1",  "default", default=1, enum=enumerated(1)),
    row("NumberOfRotations",     "1C", "series",  condition=is_tomography),
    row("SliceVector",           "1C", "series",  condition=indexes_slices),
    row("NumberOfSlices",        "1C", "series",  condition=indexes_slices),
)
# fmt: on


# -- NM Image (PS3.3 C.8.4.9) ----------------------------------------------------------------------

IMAGE_TYPES = (
    enumerated("ORIGINAL", "DERIVED", position=1),
    enumerated("PRIMARY", position=2),
    enumerated(
        "STATIC", "DYNAMIC", "GATED", "WHOLE BODY", "TOMO", "GATED TOMO", "RECON TOMO", "RECON GATED TOMO", position=3
    ),
    enumerated("EMISSION", "TRANSMISSION", position=4),
)
NM_CORRECTIONS = defined("UNIF", "COR", "NCO", "DECY", "ATTN", "SCAT", "DTIM", "NRGY", "LIN", "MOTN", "CLN")
_IMAGE_TYPE = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]

is_static_or_whole_body = Condition(
    "ImageType value 3 is STATIC or WHOLE BODY",
    lambda dataset: text_value(dataset, "ImageType", 3) in ("STATIC", "WHOLE BODY"),
)

_UNITS_ITEM = code_item("NM Image")
# The standard's statement of what the stored values mean (C.7.6.16.2.11): one item for the file.
# fmt: off
_REAL_WORLD_VALUE_MAPPING_ITEM = module("NM Image",
    row("RealWorldValueFirstValueMapped", "1", "series"),
    row("RealWorldValueLastValueMapped",  "1", "series"),
    row("RealWorldValueIntercept",        "1", "series"),
    row("RealWorldValueSlope",            "1", "series"),
    row("LUTExplanation",                 "1", "series"),
    row("LUTLabel",                       "1", "series"),
    row("MeasurementUnitsCodeSequence",   "1", "series", items=_UNITS_ITEM, max_items=1),
)
# CorrectedImage is Type 3 here: written only when the input or the user names the corrections.
_NM_IMAGE = module("NM Image",
    row("ImageType",                     "1",  "default", default=_IMAGE_TYPE, vm="4", enum=IMAGE_TYPES),
    row("CountsAccumulated",             "2",  "user",    default=""),
    row("ActualFrameDuration",           "1C", "user",    condition=is_static_or_whole_body),
    row("CorrectedImage",                "3",  "user",    enum=NM_CORRECTIONS),
    row("RealWorldValueMappingSequence", "3",  "series",  items=_REAL_WORLD_VALUE_MAPPING_ITEM, max_items=1),
)
# fmt: on


# -- NM Isotope (PS3.3 C.8.4.10) -------------------------------------------------------------------

# fmt: off
_ENERGY_WINDOW_RANGE_ITEM = module("NM Isotope",
    row("EnergyWindowLowerLimit", "3", "user"),  # keV
    row("EnergyWindowUpperLimit", "3", "user"),
)
_ENERGY_WINDOW_ITEM = module("NM Isotope",
    row("EnergyWindowRangeSequence", "3", "user", items=_ENERGY_WINDOW_RANGE_ITEM),
    row("EnergyWindowName",          "3", "user"),
)
# No half-life nor start date-time here (dciodvfy: not in the NM IOD): the isotope's code says it.
_RADIOPHARMACEUTICAL_ITEM = module("NM Isotope",
    row("RadionuclideCodeSequence",        "2", "user", items=code_item("NM Isotope"), max_items=1),
    row("AdministrationRouteCodeSequence", "3", "user", items=code_item("NM Isotope"), max_items=1),
    row("RadiopharmaceuticalStartTime",    "3", "user"),
    row("RadionuclideTotalDose",           "3", "user"),  # MBq here (Bq in the PET Isotope module)
    row("Radiopharmaceutical",             "3", "user"),
    row("RadiopharmaceuticalCodeSequence", "3", "user", items=code_item("NM Isotope"), max_items=1),
)
_NM_ISOTOPE = module("NM Isotope",
    row("EnergyWindowInformationSequence",        "2", "user", default=[], items=_ENERGY_WINDOW_ITEM),
    row("RadiopharmaceuticalInformationSequence", "2", "user", default=[], items=_RADIOPHARMACEUTICAL_ITEM),
)
# fmt: on


# -- NM Detector (PS3.3 C.8.4.11) ------------------------------------------------------------------

COLLIMATOR_TYPES = defined("PARA", "PINH", "FANB", "CONE", "SLNT", "ASTG", "DIVG", "NONE", "UNKN")

# For RECON TOMO the one item holds the geometry of the first frame (C.8.4.11.1, C.8.4.14).
# fmt: off
_DETECTOR_ITEM = module("NM Detector",
    row("CollimatorGridName",      "3", "user"),
    row("CollimatorType",          "2", "user", default="", enum=COLLIMATOR_TYPES),
    row("ImagePositionPatient",    "2", "series"),
    row("ImageOrientationPatient", "2", "series"),
)
_NM_DETECTOR = module("NM Detector",
    row("DetectorInformationSequence", "2", "user", items=_DETECTOR_ITEM),  # the writer adds the geometry
)
# fmt: on


# -- NM TOMO Acquisition and NM Reconstruction (PS3.3 C.8.4.12, C.8.4.14) ---------------------------

# fmt: off
_ROTATION_ITEM = module("NM TOMO Acquisition",
    row("StartAngle",               "1", "user"),  # degrees
    row("AngularStep",              "1", "user"),
    row("RotationDirection",        "1", "user", enum=enumerated("CW", "CC")),
    row("ScanArc",                  "1", "user"),
    row("ActualFrameDuration",      "1", "user"),  # ms per view
    row("RadialPosition",           "3", "user"),
    row("NumberOfFramesInRotation", "1", "user"),
)
_NM_TOMO_ACQUISITION = module("NM TOMO Acquisition",
    row("RotationInformationSequence", "2", "user", default=[], items=_ROTATION_ITEM),
)
_NM_RECONSTRUCTION = module("NM Reconstruction",
    row("SpacingBetweenSlices",   "2", "series"),
    row("ReconstructionDiameter", "3", "user"),
    row("ConvolutionKernel",      "3", "user"),
    row("SliceThickness",         "2", "series"),
)
# fmt: on


# -- checks and the IOD ----------------------------------------------------------------------------


def _counts_agree(sequence, count):
    def check(dataset):
        items, number = values_of(dataset.get(sequence)), dataset.get(count)
        if number is not None and number != "" and int(number) != len(items):
            return [(count, "error", f"{number} but {sequence} has {len(items)} item(s)")]
        return []

    return check


_NM_RULES = COMMON_RULES + (
    Rule("RadionuclideTotalDose is in megabecquerels", total_dose_in("MBq")),
    Rule("NumberOfEnergyWindows counts the energy windows",
         _counts_agree("EnergyWindowInformationSequence", "NumberOfEnergyWindows")),
    Rule("NumberOfRotations counts the rotations", _counts_agree("RotationInformationSequence", "NumberOfRotations")),
)  # fmt: skip

has_no_detector_orientation = Condition(
    "DetectorInformationSequence gives no ImageOrientationPatient",
    lambda dataset: not any(
        isinstance(item, dict) and "ImageOrientationPatient" in item
        for item in values_of(dataset.get("DetectorInformationSequence"))
    ),
)

# One file holds the volume: its SOP instance and number are the file's, not a slice's; the
# orientation is DetectorInformationSequence's.
# fmt: off
_ONE_FILE = module("General Image",
    row("InstanceNumber",     "2",  "series"),
    row("PatientOrientation", "2C", "user", condition=has_no_detector_orientation),
) + module("SOP Common",
    row("SOPInstanceUID", "1", "series"),
)
# fmt: on

_NM_ATTRIBUTES = specialise(
    PATIENT
    + GENERAL_STUDY
    + PATIENT_STUDY
    + GENERAL_SERIES
    + FRAME_OF_REFERENCE
    + GENERAL_EQUIPMENT
    + GENERAL_IMAGE
    + without(IMAGE_PIXEL, "SmallestImagePixelValue", "LargestImagePixelValue")
    + VOI_LUT
    + SOP_COMMON,
    identity("NM", NM_IMAGE_STORAGE)
    + _ONE_FILE
    + NM_PET_ORIENTATION
    + _NM_IMAGE_PIXEL
    + _MULTI_FRAME
    + _NM_MULTI_FRAME
    + _NM_IMAGE
    + _NM_ISOTOPE
    + _NM_DETECTOR
    + _NM_TOMO_ACQUISITION
    + _NM_RECONSTRUCTION,
)

NM_IMAGE = Description("NM Image", "NM", NM_IMAGE_STORAGE, _NM_ATTRIBUTES, _NM_RULES)
