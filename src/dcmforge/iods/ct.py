"""The CT Image IOD (PS3.3 A.3): the CT Image module over the common ones."""

from ..dicom.values import text_value
from .common import (
    COMMON_MODULES,
    COMMON_RULES,
    PATIENT_POSITIONS,
    has_no_orientation_codes,
    identity,
)
from .model import Condition, Description, defined, enumerated, module, row, specialise

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


# -- CT Image (PS3.3 C.8.2.1) ------------------------------------------------------------

IMAGE_TYPES = (
    enumerated("ORIGINAL", "DERIVED", position=1),
    enumerated("PRIMARY", "SECONDARY", position=2),
    defined("AXIAL", "LOCALIZER", position=3),
    defined(
        "VMI", "MAT_SPECIFIC", "MAT_REMOVED", "MAT_FRACTIONAL", "EFF_ATOMIC_NUM",
        "ELECTRON_DENSITY", "MAT_MODIFIED", "MAT_VALUE_BASED", position=4,
    ),
)  # fmt: skip

is_multienergy = Condition(
    "MultienergyCTAcquisition is YES",
    lambda dataset: text_value(dataset, "MultienergyCTAcquisition") == "YES",
    otherwise="may be present",
)

# vm="3-n": dciodvfy says "A value is required for value 3 in CT Images".
# fmt: off
_CT_IMAGE = module("CT Image",
    row("ImageType",                 "1",  "default", default=["DERIVED", "PRIMARY", "AXIAL"], vm="3-n", enum=IMAGE_TYPES),
    row("SamplesPerPixel",           "1",  "default", default=1, enum=enumerated(1)),
    row("PhotometricInterpretation", "1",  "default", default="MONOCHROME2", enum=enumerated("MONOCHROME1", "MONOCHROME2")),
    row("BitsAllocated",             "1",  "default", default=16, enum=enumerated(16)),
    row("BitsStored",                "1",  "default", default=16, enum=enumerated(12, 13, 14, 15, 16)),
    row("HighBit",                   "1",  "default", default=15),
    row("RescaleIntercept",          "1",  "slice"),
    row("RescaleSlope",              "1",  "slice"),
    row("RescaleType",               "1C", "default", default="HU", condition=is_multienergy, enum=defined("HU")),
    row("KVP",                       "2",  "user",    default=""),  # empty for simulated attenuation maps
    row("AcquisitionNumber",         "2",  "user",    default=1),
    row("DataCollectionDiameter",    "3",  "user"),
    row("ReconstructionDiameter",    "3",  "user"),
    row("ConvolutionKernel",         "3",  "user"),
)
# fmt: on

# CT keeps PatientPosition (PET carries it in code sequences) and writes HFS unless told.
# fmt: off
_CT_SERIES_POSITION = module("General Series",
    row("PatientPosition", "2C", "user", default="HFS", condition=has_no_orientation_codes, enum=PATIENT_POSITIONS),
)
# fmt: on

CT_IMAGE = Description(
    "CT Image",
    "CT",
    CT_IMAGE_STORAGE,
    specialise(COMMON_MODULES, identity("CT", CT_IMAGE_STORAGE) + _CT_SERIES_POSITION + _CT_IMAGE),
    COMMON_RULES,
)
