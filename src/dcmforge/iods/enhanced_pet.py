"""The Enhanced PET Image IOD (PS3.3 A.56): a multi-frame image whose frames carry functional groups."""

from .common import (
    COMMON_RULES,
    DCMFORGE_VERSION,
    FRAME_OF_REFERENCE,
    GENERAL_EQUIPMENT,
    GENERAL_SERIES,
    GENERAL_STUDY,
    IMAGE_PIXEL,
    LATERALITY,
    LOSSY,
    MONOCHROME_16_BIT,
    PATIENT,
    PATIENT_POSITIONS,
    PATIENT_STUDY,
    SOP_COMMON,
    YES_NO,
    identity,
    total_dose_in,
)
from .functional_groups import (
    functional_group_items,
    functional_group_placement,
    group_rows,
    is_decay_corrected_enhanced,
    is_original,
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
    says,
    specialise,
    without,
)
from .pet import COLLIMATOR_TYPES, COUNTS_SOURCES, RANDOMS_CORRECTION_METHODS

ENHANCED_PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.130"


# -- General Series and Enhanced PET Series (PS3.3 C.7.3.1, C.8.22.1) -------------------

has_no_frame_laterality = Condition(
    "FrameLaterality is absent (Frame Anatomy functional group)",
    lambda dataset: (
        not any("FrameLaterality" in item for item in functional_group_items(dataset, "FrameAnatomySequence"))
    ),
)

# PatientPosition: not required (Enhanced PET is not among the CT/MR classes), but the only place
# left for the patient position once the NM/PET orientation code sequences are gone.
# fmt: off
_ENHANCED_GENERAL_SERIES = module("General Series",
    row("Laterality",      "2C", "user", condition=has_no_frame_laterality, enum=LATERALITY),
    row("PatientPosition", "3",  "user", enum=PATIENT_POSITIONS),
)
# fmt: on

# Only the caller knows whether another series (a CT) gave the attenuation map.
used_another_series = Condition(
    "another series was used for attenuation correction", lambda dataset: False, "may be present"
)

# fmt: off
_RELATED_SERIES_ITEM = module("Enhanced PET Series",
    row("StudyInstanceUID",               "1", "user"),
    row("SeriesInstanceUID",              "1", "user"),
    row("PurposeOfReferenceCodeSequence", "2", "user", items=code_item("Enhanced PET Series")),
)
_ENHANCED_PET_SERIES = module("Enhanced PET Series",
    row("RelatedSeriesSequence", "1C", "user", condition=used_another_series, items=_RELATED_SERIES_ITEM),
)
# fmt: on


# -- Enhanced General Equipment (PS3.3 C.7.5.2) ------------------------------------------

# Type 1 here; the defaults say "not known" rather than make a scanner up.
# fmt: off
_ENHANCED_GENERAL_EQUIPMENT = module("Enhanced General Equipment",
    row("Manufacturer",          "1", "default", default="dcmforge"),
    row("ManufacturerModelName", "1", "user",    default="unknown"),
    row("DeviceSerialNumber",    "1", "user",    default="unknown"),
    row("SoftwareVersions",      "1", "default", default=DCMFORGE_VERSION),
)
# fmt: on


# -- Enhanced PET Image (PS3.3 C.8.22.3) ---------------------------------------------------

# dcmforge writes images from volumes, never by converting legacy single-frame images.
is_not_legacy_converted = Condition("the image is not converted from legacy single-frame images", lambda dataset: True)

IMAGE_TYPES = (enumerated("ORIGINAL", "DERIVED", "MIXED", position=1), enumerated("PRIMARY", position=2))
PIXEL_PRESENTATIONS = enumerated("MONOCHROME", "MIXED")
VOLUMETRIC_PROPERTIES = enumerated("VOLUME", "SAMPLED", "DISTORTED", "MIXED")
CONTENT_QUALIFICATIONS = enumerated("PRODUCT", "RESEARCH", "SERVICE")
_IMAGE_TYPE = ["DERIVED", "PRIMARY", "VOLUME", "NONE"]

# AcquisitionDateTime is the first time frame's start; AcquisitionDuration (s) runs from it to the last one's end.
# fmt: off
_ENHANCED_PET_IMAGE_MODULE = module("Enhanced PET Image",
    row("ImageType",                       "1",  "default", default=_IMAGE_TYPE, vm="4", enum=IMAGE_TYPES),
    row("PixelPresentation",               "1",  "default", default="MONOCHROME", enum=PIXEL_PRESENTATIONS),
    row("VolumetricProperties",            "1",  "default", default="VOLUME", enum=VOLUMETRIC_PROPERTIES),
    row("VolumeBasedCalculationTechnique", "1",  "default", default="NONE"),
    row("AcquisitionDateTime",             "1C", "series",  condition=is_original),
    row("AcquisitionDuration",             "1C", "series",  condition=is_original),
    *MONOCHROME_16_BIT,
    row("ContentQualification",            "1",  "user",    default="RESEARCH", enum=CONTENT_QUALIFICATIONS),
    row("BurnedInAnnotation",              "1C", "default", default="NO", enum=YES_NO, condition=is_not_legacy_converted),
    row("LossyImageCompression",           "1C", "default", default="00", enum=LOSSY, condition=is_not_legacy_converted),
    row("PresentationLUTShape",            "1",  "default", default="IDENTITY", enum=enumerated("IDENTITY")),
)
# fmt: on


# -- Enhanced PET Isotope (PS3.3 C.8.22.4) -------------------------------------------------

# fmt: off
_ENHANCED_RADIOPHARMACEUTICAL_ITEM = module("Enhanced PET Isotope",
    row("RadiopharmaceuticalAgentNumber",   "1", "series"),  # 1, 2, ... the item's number
    row("RadionuclideCodeSequence",         "1", "user", items=code_item("Enhanced PET Isotope"), max_items=1),
    row("AdministrationRouteCodeSequence",  "1", "user", items=code_item("Enhanced PET Isotope"), max_items=1),
    row("RadiopharmaceuticalStartDateTime", "1", "user"),
    row("RadionuclideTotalDose",            "2", "user"),  # MBq here (Bq in the PET Isotope module)
    row("RadionuclideHalfLife",             "1", "user"),  # s
    row("RadionuclidePositronFraction",     "1", "user"),
    row("RadiopharmaceuticalCodeSequence",  "1", "user", items=code_item("Enhanced PET Isotope"), max_items=1),
)
_ENHANCED_PET_ISOTOPE = module("Enhanced PET Isotope",
    row("RadiopharmaceuticalInformationSequence", "1", "user", items=_ENHANCED_RADIOPHARMACEUTICAL_ITEM),
)
# fmt: on


# -- Enhanced PET Acquisition (PS3.3 C.8.22.2) ---------------------------------------------

is_original_and_stationary = Condition(
    "ImageType value 1 is ORIGINAL and TypeOfDetectorMotion is STATIONARY",
    lambda dataset: says("ImageType", "ORIGINAL")(dataset) and says("TypeOfDetectorMotion", "STATIONARY")(dataset),
    "may be present",
)


def _threshold(keyword, condition_keyword, word):
    """A Start/Termination threshold: required when its condition names it."""
    condition = Condition(f"{condition_keyword} is {word}", says(condition_keyword, word), "may be present")
    return row(keyword, "1C", "user", condition=condition)


START_CONDITIONS = defined("DENS", "RDD", "MANU", "AUTO", "CARD_TRIG", "RESP_TRIG")
TERMINATION_CONDITIONS = defined("CNTS", "DENS", "RDD", "MANU", "OVFL", "TIME", "CARD_TRIG", "RESP_TRIG")
DETECTOR_MOTIONS = defined("STATIONARY", "STEP AND SHOOT", "CONTINUOUS", "WOBBLE", "CLAMSHELL")
DETECTOR_GEOMETRIES = defined("CYLINDRICAL_RING", "CYL_RING_PARTIAL", "MULTIPLE_PLANAR", "MUL_PLAN_PARTIAL")

_AXIAL_VIEW = [{"CodeValue": "399348003", "CodingSchemeDesignator": "SCT", "CodeMeaning": "axial"}]

# fmt: off
_ENERGY_WINDOW_ITEM = module("Enhanced PET Acquisition",
    row("EnergyWindowLowerLimit", "1", "user"),  # keV
    row("EnergyWindowUpperLimit", "1", "user"),
)
_VIEW_ITEM = code_item("Enhanced PET Acquisition") + module("Enhanced PET Acquisition",
    row("ViewModifierCodeSequence", "3", "user", items=code_item("Enhanced PET Acquisition")),
)
# CollimatorType as in PET Series; written only when required (conditional defaults are).
# TimeOfFlightInformationUsed: only the caller knows; dcmforge does not claim it.
_ENHANCED_PET_ACQUISITION = module("Enhanced PET Acquisition",
    row("AcquisitionStartCondition",       "1C", "user", condition=is_original, enum=START_CONDITIONS),
    _threshold("StartDensityThreshold",                       "AcquisitionStartCondition",       "DENS"),
    _threshold("StartRelativeDensityDifferenceThreshold",     "AcquisitionStartCondition",       "RDD"),
    _threshold("StartCardiacTriggerCountThreshold",           "AcquisitionStartCondition",       "CARD_TRIG"),
    _threshold("StartRespiratoryTriggerCountThreshold",       "AcquisitionStartCondition",       "RESP_TRIG"),
    row("AcquisitionTerminationCondition", "1C", "user", condition=is_original, enum=TERMINATION_CONDITIONS),
    _threshold("TerminationCountsThreshold",                  "AcquisitionTerminationCondition", "CNTS"),
    _threshold("TerminationDensityThreshold",                 "AcquisitionTerminationCondition", "DENS"),
    _threshold("TerminationRelativeDensityThreshold",         "AcquisitionTerminationCondition", "RDD"),
    _threshold("TerminationTimeThreshold",                    "AcquisitionTerminationCondition", "TIME"),
    _threshold("TerminationCardiacTriggerCountThreshold",     "AcquisitionTerminationCondition", "CARD_TRIG"),
    _threshold("TerminationRespiratoryTriggerCountThreshold", "AcquisitionTerminationCondition", "RESP_TRIG"),
    row("TypeOfDetectorMotion",            "1C", "user", condition=is_original, enum=DETECTOR_MOTIONS),
    row("DetectorGeometry",                "1C", "user", condition=is_original_and_stationary, enum=DETECTOR_GEOMETRIES),
    row("TransverseDetectorSeparation",    "1C", "user", condition=is_original),  # mm
    row("AxialDetectorDimension",          "1C", "user", condition=is_original),  # mm
    row("CollimatorType",                  "1C", "user", default="NONE", condition=is_original, enum=COLLIMATOR_TYPES),
    row("CoincidenceWindowWidth",          "1C", "user", condition=is_original),  # ns
    row("EnergyWindowRangeSequence",       "1C", "user", condition=is_original, items=_ENERGY_WINDOW_ITEM),
    row("TableMotion",                     "1",  "user", default="STATIC", enum=enumerated("STATIC", "DYNAMIC")),
    row("TimeOfFlightInformationUsed",     "1",  "user", default="FALSE", enum=enumerated("TRUE", "FALSE")),
    row("ViewCodeSequence",                "1",  "user", default=_AXIAL_VIEW, items=_VIEW_ITEM, max_items=1),
)
# fmt: on


# -- Enhanced PET Corrections (PS3.3 C.8.22.6) ---------------------------------------------

is_randoms_corrected = Condition("RandomsCorrected is YES", says("RandomsCorrected", "YES"), "may be present")
is_scatter_corrected = Condition("ScatterCorrected is YES", says("ScatterCorrected", "YES"), "may be present")
is_attenuation_corrected = Condition(
    "AttenuationCorrected is YES", says("AttenuationCorrected", "YES"), "may be present"
)

ATTENUATION_SOURCES = defined("CT", "MR", "POSITRON SOURCE", "SINGLE PHOTON")
TEMPORAL_RELATIONSHIPS = defined("CONCURRENT", "SEPARATE", "SIMULTANEOUS")

# The attenuation defaults are what a PET/CT has (docs/iods.md 5).
# fmt: off
_ENHANCED_PET_CORRECTIONS = module("Enhanced PET Corrections",
    row("CountsSource",                              "1",  "user",   default="EMISSION", enum=COUNTS_SOURCES),
    row("DecayCorrected",                            "1",  "series", enum=YES_NO),
    row("AttenuationCorrected",                      "1",  "series", enum=YES_NO),
    row("ScatterCorrected",                          "1",  "series", enum=YES_NO),
    row("DeadTimeCorrected",                         "1",  "series", enum=YES_NO),
    row("GantryMotionCorrected",                     "1",  "series", enum=YES_NO),
    row("PatientMotionCorrected",                    "1",  "series", enum=YES_NO),
    row("CountLossNormalizationCorrected",           "1",  "series", enum=YES_NO),
    row("RandomsCorrected",                          "1",  "series", enum=YES_NO),
    row("NonUniformRadialSamplingCorrected",         "1",  "series", enum=YES_NO),
    row("SensitivityCalibrated",                     "1",  "series", enum=YES_NO),
    row("DetectorNormalizationCorrection",           "1",  "series", enum=YES_NO),
    row("RandomsCorrectionMethod",                   "1C", "user",   condition=is_randoms_corrected,
        enum=RANDOMS_CORRECTION_METHODS),
    row("AttenuationCorrectionSource",               "1C", "user",   default="CT", condition=is_attenuation_corrected,
        enum=ATTENUATION_SOURCES),
    row("AttenuationCorrectionTemporalRelationship", "1C", "user",   default="CONCURRENT",
        condition=is_attenuation_corrected, enum=TEMPORAL_RELATIONSHIPS),
    row("ScatterCorrectionMethod",                   "1C", "user",   condition=is_scatter_corrected),
    row("DecayCorrectionDateTime",                   "1C", "series", condition=is_decay_corrected_enhanced),
)
# fmt: on


# -- Acquisition Context, Multi-frame Functional Groups and Dimension (PS3.3 C.7.6.14, 16, 17) --

# fmt: off
_ACQUISITION_CONTEXT = module("Acquisition Context",
    row("AcquisitionContextSequence", "2", "default", default=[]),
)
_MULTIFRAME_FUNCTIONAL_GROUPS = module("Multi-frame Functional Groups",
    row("SharedFunctionalGroupsSequence",   "1", "series", items=group_rows("series", False), max_items=1),
    row("PerFrameFunctionalGroupsSequence", "1", "slice",  items=group_rows("slice", True)),
    row("InstanceNumber",                   "1", "series"),
    row("ContentDate",                      "1", "clock"),
    row("ContentTime",                      "1", "clock"),
    row("NumberOfFrames",                   "1", "series"),
)
# fmt: on

# DimensionIndexSequence is 1C: required when the frames have dimension indices, which dcmforge
# always gives; FunctionalGroupPointer is 1C: the index is inside a functional group.
# fmt: off
_DIMENSION_ORGANIZATION_ITEM = module("Multi-frame Dimension",
    row("DimensionOrganizationUID", "1", "series"),
)
_DIMENSION_INDEX_ITEM = module("Multi-frame Dimension",
    row("DimensionIndexPointer",     "1", "series"),
    row("FunctionalGroupPointer",    "1", "series"),
    row("DimensionOrganizationUID",  "1", "series"),
    row("DimensionDescriptionLabel", "3", "series"),
)
_MULTIFRAME_DIMENSION = module("Multi-frame Dimension",
    row("DimensionOrganizationSequence", "1", "series", items=_DIMENSION_ORGANIZATION_ITEM),
    row("DimensionIndexSequence",        "1", "series", items=_DIMENSION_INDEX_ITEM),
    row("DimensionOrganizationType",     "3", "series", enum=defined("3D", "3D_TEMPORAL")),
)
_ENHANCED_SOP_INSTANCE = module("SOP Common",
    row("SOPInstanceUID", "1", "series"),
)
# fmt: on


# -- the IOD ---------------------------------------------------------------------------------

# The Image Pixel module's smallest/largest values would have to hold for every frame at once.
_ENHANCED_PET_ATTRIBUTES = specialise(
    PATIENT
    + GENERAL_STUDY
    + PATIENT_STUDY
    + GENERAL_SERIES
    + FRAME_OF_REFERENCE
    + GENERAL_EQUIPMENT
    + without(IMAGE_PIXEL, "SmallestImagePixelValue", "LargestImagePixelValue")
    + SOP_COMMON,
    identity("PT", ENHANCED_PET_IMAGE_STORAGE)
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


_ENHANCED_PET_RULES = COMMON_RULES + (
    Rule("each functional group is shared or in every frame; the required ones are there", functional_group_placement),
    Rule("RadionuclideTotalDose is in megabecquerels", total_dose_in("MBq")),
)

ENHANCED_PET_IMAGE = Description(
    "Enhanced PET Image", "PT", ENHANCED_PET_IMAGE_STORAGE, _ENHANCED_PET_ATTRIBUTES, _ENHANCED_PET_RULES
)
