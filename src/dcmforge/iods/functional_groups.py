"""The functional group macros of Enhanced PET (PS3.3 Table A.56-2; C.7.6.16.2 and C.8.22.5 onwards).

Each group is one sequence of one item, either in the shared functional groups
item or in every per-frame item.
"""

from typing import NamedTuple

from ..dicom.values import values_of
from .common import IMAGE_LATERALITY, YES_NO
from .model import Attribute, Condition, code_item, defined, module, row, says


def functional_group_items(dataset, macro):
    """Every item of the functional group ``macro`` in an image: the shared one's and the per-frame ones'."""
    found = []
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in values_of(dataset.get(group)):
            if isinstance(item, dict):
                found += [inner for inner in values_of(item.get(macro)) if isinstance(inner, dict)]
    return found


# Conditions on the image as a whole, shared with the Enhanced PET modules.
is_original = Condition("ImageType value 1 is ORIGINAL", says("ImageType", "ORIGINAL"), "may be present")
is_original_image = is_original._replace(scope="image")
is_original_and_moving = Condition(
    "ImageType value 1 is ORIGINAL and TypeOfDetectorMotion is not STATIONARY",
    lambda dataset: says("ImageType", "ORIGINAL")(dataset) and not says("TypeOfDetectorMotion", "STATIONARY")(dataset),
    "may be present",
)
is_original_and_table_moving = Condition(
    "ImageType value 1 is ORIGINAL and TableMotion is DYNAMIC",
    lambda dataset: says("ImageType", "ORIGINAL")(dataset) and says("TableMotion", "DYNAMIC")(dataset),
    "may be present",
)
# dciodvfy reports DecayCorrectionDateTime as an error when DecayCorrected is NO (docs/iods.md 5).
is_decay_corrected_enhanced = Condition("DecayCorrected is YES", says("DecayCorrected", "YES"))
is_iterative = Condition(
    "IterativeReconstructionMethod is YES", says("IterativeReconstructionMethod", "YES"), "may be present"
)
has_no_reconstruction_field_of_view = Condition(
    "ReconstructionFieldOfView is absent", lambda item: "ReconstructionFieldOfView" not in item, "may be present"
)
has_no_reconstruction_diameter = Condition(
    "ReconstructionDiameter is absent", lambda item: "ReconstructionDiameter" not in item, "may be present"
)


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
    return FunctionalGroup(keyword, name, module(name, *rows), required, per_frame_only)


_ENTIRE_BODY = [{"CodeValue": "38266002", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Entire body"}]
RECONSTRUCTION_TYPES = defined("2D", "3D", "3D_REBINNED")
RECONSTRUCTION_ALGORITHMS = defined("FILTER_BACK_PROJ", "REPROJECTION", "RAMLA", "MLEM")
is_decay_corrected_image = is_decay_corrected_enhanced._replace(scope="image")

# Frame Content: StackID, InStackPositionNumber, TemporalPositionIndex and DimensionIndexValues are
# 1C in the macro, always required in Enhanced PET (docs/iods.md 5).
# PET Frame Correction Factors: 1C in PS3.3; dciodvfy requires all but DecayFactor whenever the group is present.
# Pixel Value Transformation: RescaleType US (unspecified): the units are in Real World Value Mapping.
# fmt: off
FUNCTIONAL_GROUPS = (
    _group("PixelMeasuresSequence", "Pixel Measures",
        row("PixelSpacing",         "1", "series"),
        row("SliceThickness",       "1", "series"),
        row("SpacingBetweenSlices", "3", "series"),
    ),
    _group("FrameContentSequence", "Frame Content",
        row("FrameAcquisitionNumber",   "3",  "user"),
        row("FrameReferenceDateTime",   "1C", "slice", condition=is_original_image),
        row("FrameAcquisitionDateTime", "1C", "slice", condition=is_original_image),
        row("FrameAcquisitionDuration", "1C", "slice", condition=is_original_image),  # ms
        row("StackID",                  "1",  "slice"),
        row("InStackPositionNumber",    "1",  "slice"),
        row("TemporalPositionIndex",    "1",  "slice"),
        row("DimensionIndexValues",     "1",  "slice"),
        per_frame_only=True,
    ),
    _group("PlanePositionSequence", "Plane Position (Patient)",
        row("ImagePositionPatient", "1", "slice"),
    ),
    _group("PlaneOrientationSequence", "Plane Orientation (Patient)",
        row("ImageOrientationPatient", "1", "series"),
    ),
    _group("FrameAnatomySequence", "Frame Anatomy",
        row("AnatomicRegionSequence", "1", "user", default=_ENTIRE_BODY, items=code_item("Frame Anatomy")),
        row("FrameLaterality",        "1", "user", default="U", enum=IMAGE_LATERALITY),
    ),
    _group("PixelValueTransformationSequence", "Pixel Value Transformation",
        row("RescaleIntercept", "1", "slice"),
        row("RescaleSlope",     "1", "slice"),
        row("RescaleType",      "1", "default", default="US"),
    ),
    _group("FrameVOILUTSequence", "Frame VOI LUT",
        row("WindowCenter",                 "1", "user"),
        row("WindowWidth",                  "1", "user"),
        row("WindowCenterWidthExplanation", "3", "user"),
    ),
    _group("RealWorldValueMappingSequence", "Real World Value Mapping",
        row("RealWorldValueFirstValueMapped", "1", "series"),
        row("RealWorldValueLastValueMapped",  "1", "series"),
        row("RealWorldValueIntercept",        "1", "slice"),
        row("RealWorldValueSlope",            "1", "slice"),
        row("LUTExplanation",                 "1", "series"),
        row("LUTLabel",                       "1", "series"),
        row("MeasurementUnitsCodeSequence",   "1", "series", items=code_item("Real World Value Mapping"), max_items=1),
    ),
    _group("RadiopharmaceuticalUsageSequence", "Radiopharmaceutical Usage",
        row("RadiopharmaceuticalAgentNumber", "1", "default", default=1),
    ),
    _group("PETFrameTypeSequence", "PET Frame Type",
        row("FrameType",                       "1", "series", vm="4"),
        row("PixelPresentation",               "1", "series"),
        row("VolumetricProperties",            "1", "series"),
        row("VolumeBasedCalculationTechnique", "1", "series"),
    ),
    _group("PETFrameAcquisitionSequence", "PET Frame Acquisition",
        row("TableHeight",            "1", "user"),
        row("GantryDetectorTilt",     "1", "user"),
        row("GantryDetectorSlew",     "1", "user"),
        row("DataCollectionDiameter", "1", "user"),
        required=is_original,
    ),
    _group("PETDetectorMotionDetailsSequence", "PET Detector Motion Details",
        required=is_original_and_moving,
    ),
    _group("PETPositionSequence", "PET Position",
        row("TablePosition",                     "1", "user"),
        row("DataCollectionCenterPatient",       "1", "user"),
        row("ReconstructionTargetCenterPatient", "1", "user"),
        required=is_original,
    ),
    _group("PETFrameCorrectionFactorsSequence", "PET Frame Correction Factors",
        row("PrimaryPromptsCountsAccumulated", "1",  "user"),
        row("SliceSensitivityFactor",          "1",  "user"),
        row("DecayFactor",                     "1C", "slice", condition=is_decay_corrected_image),
        row("ScatterFractionFactor",           "1",  "user"),
        row("DeadTimeFactor",                  "1",  "user"),
        required=is_original,
    ),
    _group("PETReconstructionSequence", "PET Reconstruction",
        row("ReconstructionType",            "1",  "user", enum=RECONSTRUCTION_TYPES),
        row("ReconstructionAlgorithm",       "1",  "user", enum=RECONSTRUCTION_ALGORITHMS),
        row("IterativeReconstructionMethod", "1",  "user", enum=YES_NO),
        row("NumberOfIterations",            "1C", "user", condition=is_iterative),
        row("NumberOfSubsets",               "1C", "user", condition=is_iterative),
        row("ReconstructionDiameter",        "1C", "user", condition=has_no_reconstruction_field_of_view),
        row("ReconstructionFieldOfView",     "1C", "user", condition=has_no_reconstruction_diameter),
        required=is_original,
    ),
    _group("PETTableDynamicsSequence", "PET Table Dynamics",
        required=is_original_and_table_moving,
    ),
)
# fmt: on


def group_rows(source, per_frame):
    """The functional groups as rows of a Shared (or Per-frame) item; where each must be is a rule."""
    return tuple(
        Attribute(group.keyword, "3", group.name, source, items=group.items, max_items=1)
        for group in FUNCTIONAL_GROUPS
        if per_frame or not group.per_frame_only
    )


def functional_group_placement(dataset):
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
