"""The Enhanced PET Image IOD (PS3.3 A.56): a multi-frame image whose frames carry functional groups."""

from .. import __version__
from .common import (
    COMMON_RULES,
    FRAME_OF_REFERENCE,
    GENERAL_EQUIPMENT,
    GENERAL_SERIES,
    GENERAL_STUDY,
    IMAGE_PIXEL,
    PATIENT,
    PATIENT_POSITIONS,
    PATIENT_STUDY,
    SOP_COMMON,
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

ENHANCED_PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.130"


is_original_and_stationary = Condition(
    "ImageType value 1 is ORIGINAL and TypeOfDetectorMotion is STATIONARY",
    lambda dataset: says("ImageType", "ORIGINAL")(dataset) and says("TypeOfDetectorMotion", "STATIONARY")(dataset),
    "may be present",
)


is_randoms_corrected = Condition("RandomsCorrected is YES", says("RandomsCorrected", "YES"), "may be present")
is_scatter_corrected = Condition("ScatterCorrected is YES", says("ScatterCorrected", "YES"), "may be present")
is_attenuation_corrected = Condition(
    "AttenuationCorrected is YES", says("AttenuationCorrected", "YES"), "may be present"
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
    condition = Condition(f"{condition_keyword} is {word}", says(condition_keyword, word), "may be present")
    return row(keyword, "1C", "user", condition=condition)


_ENHANCED_GENERAL_SERIES = module(
    "General Series",
    row("Laterality", "2C", "user", condition=has_no_frame_laterality, enum=(enumerated("R", "L"),)),
    # Not required (Enhanced PET is not among the CT/MR classes), but the only place left for
    # the patient position once the NM/PET orientation code sequences are gone.
    row("PatientPosition", "3", "user", enum=(defined(*PATIENT_POSITIONS),)),
)

_ENHANCED_PET_SERIES = module(
    "Enhanced PET Series",
    row(
        "RelatedSeriesSequence",
        "1C",
        "user",
        condition=used_another_series,
        items=module(
            "Enhanced PET Series",
            row("StudyInstanceUID", "1", "user"),
            row("SeriesInstanceUID", "1", "user"),
            row("PurposeOfReferenceCodeSequence", "2", "user", items=code_item("Enhanced PET Series")),
        ),
    ),
)

# Type 1 here; the defaults say "not known" rather than make a scanner up.
_ENHANCED_GENERAL_EQUIPMENT = module(
    "Enhanced General Equipment",
    row("Manufacturer", "1", "default", default="dcmforge"),
    row("ManufacturerModelName", "1", "user", default="unknown"),
    row("DeviceSerialNumber", "1", "user", default="unknown"),
    row("SoftwareVersions", "1", "default", default=f"dcmforge {__version__}"),
)

_ENHANCED_PET_IMAGE_MODULE = module(
    "Enhanced PET Image",
    row(
        "ImageType",
        "1",
        "default",
        default=["DERIVED", "PRIMARY", "VOLUME", "NONE"],
        vm="4",
        enum=(enumerated("ORIGINAL", "DERIVED", "MIXED", position=1), enumerated("PRIMARY", position=2)),
    ),
    row("PixelPresentation", "1", "default", default="MONOCHROME", enum=(enumerated("MONOCHROME", "MIXED"),)),
    row(
        "VolumetricProperties",
        "1",
        "default",
        default="VOLUME",
        enum=(enumerated("VOLUME", "SAMPLED", "DISTORTED", "MIXED"),),
    ),
    row("VolumeBasedCalculationTechnique", "1", "default", default="NONE"),
    row("AcquisitionDateTime", "1C", "series", condition=is_original),  # the first frame's start
    row("AcquisitionDuration", "1C", "series", condition=is_original),  # s, first frame start to last frame end
    row("SamplesPerPixel", "1", "default", default=1, enum=(enumerated(1),)),
    row("PhotometricInterpretation", "1", "default", default="MONOCHROME2", enum=(enumerated("MONOCHROME2"),)),
    row("BitsAllocated", "1", "default", default=16, enum=(enumerated(16),)),
    row("BitsStored", "1", "default", default=16, enum=(enumerated(16),)),
    row("HighBit", "1", "default", default=15, enum=(enumerated(15),)),
    row(
        "ContentQualification",
        "1",
        "user",
        default="RESEARCH",
        enum=(enumerated("PRODUCT", "RESEARCH", "SERVICE"),),
    ),
    row(
        "BurnedInAnnotation",
        "1C",
        "default",
        default="NO",
        condition=is_not_legacy_converted,
        enum=(enumerated("YES", "NO"),),
    ),
    row(
        "LossyImageCompression",
        "1C",
        "default",
        default="00",
        condition=is_not_legacy_converted,
        enum=(enumerated("00", "01"),),
    ),
    row("PresentationLUTShape", "1", "default", default="IDENTITY", enum=(enumerated("IDENTITY"),)),
)

_ENHANCED_RADIOPHARMACEUTICAL_ITEM = module(
    "Enhanced PET Isotope",
    row("RadiopharmaceuticalAgentNumber", "1", "series"),  # 1, 2, ... the item's number
    row("RadionuclideCodeSequence", "1", "user", items=code_item("Enhanced PET Isotope"), max_items=1),
    row("AdministrationRouteCodeSequence", "1", "user", items=code_item("Enhanced PET Isotope"), max_items=1),
    row("RadiopharmaceuticalStartDateTime", "1", "user"),
    row("RadionuclideTotalDose", "2", "user"),  # MBq here (Bq in the PET Isotope module)
    row("RadionuclideHalfLife", "1", "user"),  # s
    row("RadionuclidePositronFraction", "1", "user"),
    row("RadiopharmaceuticalCodeSequence", "1", "user", items=code_item("Enhanced PET Isotope"), max_items=1),
)

_ENHANCED_PET_ISOTOPE = module(
    "Enhanced PET Isotope",
    row("RadiopharmaceuticalInformationSequence", "1", "user", items=_ENHANCED_RADIOPHARMACEUTICAL_ITEM),
)

_AXIAL_VIEW = [{"CodeValue": "399348003", "CodingSchemeDesignator": "SCT", "CodeMeaning": "axial"}]

_ENHANCED_PET_ACQUISITION = module(
    "Enhanced PET Acquisition",
    row(
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
    row(
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
    row(
        "TypeOfDetectorMotion",
        "1C",
        "user",
        condition=is_original,
        enum=(defined("STATIONARY", "STEP AND SHOOT", "CONTINUOUS", "WOBBLE", "CLAMSHELL"),),
    ),
    row(
        "DetectorGeometry",
        "1C",
        "user",
        condition=is_original_and_stationary,
        enum=(defined("CYLINDRICAL_RING", "CYL_RING_PARTIAL", "MULTIPLE_PLANAR", "MUL_PLAN_PARTIAL"),),
    ),
    row("TransverseDetectorSeparation", "1C", "user", condition=is_original),  # mm
    row("AxialDetectorDimension", "1C", "user", condition=is_original),  # mm
    # As in the PET Series module; written only when required (conditional defaults are).
    row("CollimatorType", "1C", "user", default="NONE", condition=is_original, enum=(defined("NONE", "RING"),)),
    row("CoincidenceWindowWidth", "1C", "user", condition=is_original),  # ns
    row(
        "EnergyWindowRangeSequence",
        "1C",
        "user",
        condition=is_original,
        items=module(
            "Enhanced PET Acquisition",
            row("EnergyWindowLowerLimit", "1", "user"),  # keV
            row("EnergyWindowUpperLimit", "1", "user"),
        ),
    ),
    row("TableMotion", "1", "user", default="STATIC", enum=(enumerated("STATIC", "DYNAMIC"),)),
    # Whether the reconstruction used time of flight: only the caller knows; dcmforge does not claim it.
    row("TimeOfFlightInformationUsed", "1", "user", default="FALSE", enum=(enumerated("TRUE", "FALSE"),)),
    row(
        "ViewCodeSequence",
        "1",
        "user",
        default=_AXIAL_VIEW,
        items=code_item("Enhanced PET Acquisition")
        + module(
            "Enhanced PET Acquisition",
            row("ViewModifierCodeSequence", "3", "user", items=code_item("Enhanced PET Acquisition")),
        ),
        max_items=1,
    ),
)

_ENHANCED_PET_CORRECTIONS = module(
    "Enhanced PET Corrections",
    row("CountsSource", "1", "user", default="EMISSION", enum=(enumerated("EMISSION", "TRANSMISSION"),)),
    *(
        row(keyword, "1", "series", enum=(enumerated("YES", "NO"),))
        for keyword in (
            "DecayCorrected", "AttenuationCorrected", "ScatterCorrected", "DeadTimeCorrected",
            "GantryMotionCorrected", "PatientMotionCorrected", "CountLossNormalizationCorrected",
            "RandomsCorrected", "NonUniformRadialSamplingCorrected", "SensitivityCalibrated",
            "DetectorNormalizationCorrection",
        )
    ),  # fmt: skip
    row(
        "RandomsCorrectionMethod",
        "1C",
        "user",
        condition=is_randoms_corrected,
        enum=(defined("NONE", "DLYD", "SING", "PDDL"),),
    ),
    # The defaults are what a PET/CT has (the spec's reference file says the same).
    row(
        "AttenuationCorrectionSource",
        "1C",
        "user",
        default="CT",
        condition=is_attenuation_corrected,
        enum=(defined("CT", "MR", "POSITRON SOURCE", "SINGLE PHOTON"),),
    ),
    row(
        "AttenuationCorrectionTemporalRelationship",
        "1C",
        "user",
        default="CONCURRENT",
        condition=is_attenuation_corrected,
        enum=(defined("CONCURRENT", "SEPARATE", "SIMULTANEOUS"),),
    ),
    row("ScatterCorrectionMethod", "1C", "user", condition=is_scatter_corrected),
    row("DecayCorrectionDateTime", "1C", "series", condition=is_decay_corrected_enhanced),
)

_ACQUISITION_CONTEXT = module(
    "Acquisition Context", row("AcquisitionContextSequence", "2", "default", default=[])
)


_MULTIFRAME_FUNCTIONAL_GROUPS = module(
    "Multi-frame Functional Groups",
    row("SharedFunctionalGroupsSequence", "1", "series", items=group_rows("series", False), max_items=1),
    row("PerFrameFunctionalGroupsSequence", "1", "slice", items=group_rows("slice", True)),
    row("InstanceNumber", "1", "series"),
    row("ContentDate", "1", "clock"),
    row("ContentTime", "1", "clock"),
    row("NumberOfFrames", "1", "series"),
)

_MULTIFRAME_DIMENSION = module(
    "Multi-frame Dimension",
    row(
        "DimensionOrganizationSequence",
        "1",
        "series",
        items=module("Multi-frame Dimension", row("DimensionOrganizationUID", "1", "series")),
    ),
    # 1C: required when the frames have dimension indices, which dcmforge always gives.
    row(
        "DimensionIndexSequence",
        "1",
        "series",
        items=module(
            "Multi-frame Dimension",
            row("DimensionIndexPointer", "1", "series"),
            row("FunctionalGroupPointer", "1", "series"),  # 1C: the index is inside a functional group
            row("DimensionOrganizationUID", "1", "series"),
            row("DimensionDescriptionLabel", "3", "series"),
        ),
    ),
    row("DimensionOrganizationType", "3", "series", enum=(defined("3D", "3D_TEMPORAL"),)),
)

_ENHANCED_SOP_INSTANCE = module("SOP Common", row("SOPInstanceUID", "1", "series"))


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
