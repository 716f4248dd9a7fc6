"""Volumes to one Enhanced PET Image file (PS3.3 A.56): every slice a frame, the pixels streamed.

A static volume [z, y, x] becomes one file of nz frames; a dynamic one
[t, z, y, x] one file of t x nz frames, time-major. The metadata is the
single-frame PET series' (the same keys, friendly ones included), said the
Enhanced PET way by ``enhanced_metadata``: CorrectedImage becomes the YES/NO
corrections, Units the Real World Value Mapping, the orientation codes
PatientPosition, the total dose megabecquerels. Geometry, frame timing,
decay come from the same plan as the single-frame series' (plan.py), and
the pixel scaling from pixels.py, so both forms of one input say the same thing.

Data flows one way: volume -> extrema of every frame (a NaN is found, and
every frame's slope known, before a byte is written) -> the dataset with its
functional groups, validated -> the header (per-frame items encoded from
templates: only what differs per frame is encoded per frame) -> the PixelData
header with its total length -> the frames, packed a chunk at a time into one
reused buffer and written straight into a temporary file, renamed when whole.
"""

import datetime
import logging
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import iods, pixels, timing
from ..dicom.values import dicom_datetime, values_of
from ..iods import validate
from ..iods.enhanced_pet import ENHANCED_PET_IMAGE
from ..iods.functional_groups import FUNCTIONAL_GROUPS
from ..iods.pet import PET_IMAGE
from ..iods.codes import PET_UNITS, Code, position_of_sequences, radiopharmaceutical_code
from .axes import volume_in_zyx
from .commit import SeriesFolder, abort_on_interrupt, refuse_existing
from .plan import (
    chunks,
    draw_preview,
    folder_options,
    options_from,
    pet_window,
    plan_series,
    projections_for,
    release_pages,
    set_derived,
    software_versions,
    uid_and_clock_values,
    volume_extrema,
)
from ..dicom.encode import (
    Explicit,
    HeaderTemplate,
    concrete_vr,
    element_header,
    encode_elements,
    item_bytes,
    sequence_bytes,
    with_character_set,
)
from ..dicom.part10 import file_meta, write_all
from ..dicom.tags import lookup
from ..dicom.uids import new_uid
from ..errors import DcmforgeError, MetadataError, VolumeError

log = logging.getLogger("dcmforge")

# A defined length is 32 bits and 0xFFFFFFFF means "undefined": the largest even length left.
MAX_PIXEL_DATA_BYTES = 0xFFFFFFFE

_PIXEL_DATA_TAG = 0x7FE00010
_PER_FRAME_TAG = lookup("PerFrameFunctionalGroupsSequence").tag

# CorrectedImage term (PET Series) -> the Enhanced PET Corrections flag that says the same.
# DECY is not here: DecayCorrected follows DecayCorrection, which decides the decay factors.
CORRECTION_FLAGS = {
    "ATTN": "AttenuationCorrected",
    "SCAT": "ScatterCorrected",
    "DTIM": "DeadTimeCorrected",
    "MOTN": "GantryMotionCorrected",
    "PMOT": "PatientMotionCorrected",
    "CLN": "CountLossNormalizationCorrected",
    "RAN": "RandomsCorrected",
    "RADL": "NonUniformRadialSamplingCorrected",
    "DCAL": "SensitivityCalibrated",
    "NORM": "DetectorNormalizationCorrection",
}

# Type 1 in Enhanced PET Isotope, optional in PET Isotope: the usual route.
INTRAVENOUS_ROUTE = Code("47625008", "SCT", "Intravenous route")

# PET-series keywords said differently here (enhanced_metadata); all others an Enhanced PET
# image lacks are reported and left out.
_SAID_OTHERWISE = frozenset({
    "ImageType", "CorrectedImage", "DecayCorrection", "Units", "ImageLaterality", "WindowCenter", "WindowWidth",
    "PatientOrientationCodeSequence", "PatientGantryRelationshipCodeSequence",
    "RadiopharmaceuticalInformationSequence",
    "SeriesType",  # STATIC or DYNAMIC: the frames' temporal dimension says it
})  # fmt: skip
_GROUPS = {group.keyword: group for group in FUNCTIONAL_GROUPS}

# scaling=: one rescale for the whole file, in the shared functional groups, which every
# reader applies; or one per slice (each DICOM frame), more precise, which only some readers apply (README).
SCALINGS = ("volume", "slice")


def pixel_data_length(shape):
    """Bytes of PixelData for a [z, y, x] or [t, z, y, x] volume; VolumeError past MAX_PIXEL_DATA_BYTES."""
    length = math.prod(shape) * 2
    if length > MAX_PIXEL_DATA_BYTES:
        frames = math.prod(shape[:-2])
        raise VolumeError(
            f"{frames} frames of {shape[-2]} x {shape[-1]} pixels are {length} bytes of pixel data; one "
            f"multi-frame file holds at most {MAX_PIXEL_DATA_BYTES} (4 GiB - 2: PixelData has a 32-bit length). "
            "Write the single-frame series instead (write_series without multiframe, "
            "dcmforge convert without --multiframe)"
        )
    return length


def write_multiframe(volume, out_dir, **options):
    """Write ``volume`` ([z, y, x], or [t, z, y, x] for dynamic PET) as one Enhanced PET Image file.

    The options are write_series' (``WriteOptions``; write_series calls this
    with ``multiframe=True``). ``scaling`` "volume" (the default) gives every
    slice the volume's one rescale; "slice" each slice its own (see SCALINGS).
    Returns [path] of the one file, ``out_dir``/PT_multiframe.dcm. ``out_dir``
    is committed as a whole (``dcmforge.write.commit``): a failure leaves no
    file behind (nor a folder this call made).
    """
    volume, options = volume_in_zyx(volume, options)
    options = options_from(options, "write_series")
    choice = check_scaling(options.scaling)
    plan = plan_series(volume.shape, options, multiframe=True)
    description, shape, geometry, user, pet = plan.description, plan.shape, plan.geometry, plan.user, plan.values
    pixel_data_length(shape)  # before anything is read or written
    clock = frame_clock(plan.reference, plan.frames, plan.half_life, plan.decay)
    image, groups = enhanced_metadata(user, pet, plan.reference)

    path = Path(out_dir) / f"{description.modality}_multiframe.dcm"
    refuse_existing(out_dir, options.overwrite)  # before any voxel is read
    backend = pixels.select_backend(volume.size, options.backend)
    with abort_on_interrupt(), SeriesFolder(out_dir, **folder_options(options)) as folder:
        mins, maxs = volume_extrema(volume, backend)
        scaling = file_scaling(mins, maxs, volume.dtype, choice)

        dataset = {**iods.defaults(description), **image}
        set_derived(dataset, user, _image_values(plan, scaling, clock))
        dataset["SoftwareVersions"] = software_versions(user.get("SoftwareVersions"))
        _drop_defaults_not_required(dataset, user, description)
        frames = _frame_groups(dataset, groups, shape, geometry, scaling, clock, pet["Units"], (mins, maxs))
        dataset["SharedFunctionalGroupsSequence"] = [_take_shared(frames)]
        # Every per-frame item holds the same elements: the first stands for all in the checks
        # (and one frame of pixels for the PixelData length rule; pixel_data_length checked them all).
        dataset, codec = with_character_set({**dataset, "PerFrameFunctionalGroupsSequence": frames[:1]})
        for warning in validate.check({**dataset, "PixelData": np.zeros(shape[-2:], np.uint16)}, description):
            log.warning("%s", warning)
        del dataset["PerFrameFunctionalGroupsSequence"]

        header = b"".join((
            file_meta(dataset["SOPClassUID"], dataset["SOPInstanceUID"]),
            _encode_dataset(dataset, _encode_per_frame(frames, codec, dataset["PixelRepresentation"]), codec),
            element_header(_PIXEL_DATA_TAG, "OW", pixel_data_length(shape)),
        ))  # fmt: skip
        projections = projections_for(shape) if options.preview else None
        write_streamed(folder, path.name, header, volume, scaling, backend, projections)
        folder.commit()
    if projections is not None:
        draw_preview(out_dir, projections, geometry, description.modality)
    return [path]


# -- pixels ------------------------------------------------------------------------


def check_scaling(scaling):
    """scaling as write_multiframe takes it (None: the default, "volume"); DcmforgeError for another value."""
    if scaling is None:
        return "volume"
    if scaling not in SCALINGS:
        raise DcmforgeError(f"scaling={scaling!r}: one of {', '.join(map(repr, SCALINGS))}")
    return scaling


def file_scaling(mins, maxs, dtype, choice="volume"):
    """Every slice's rescale: the volume's one (choice "volume") or each slice's own ("slice").

    Per frame, the frames still share one PixelRepresentation: signed for all if
    any needs it (pixels.plan_series_scaling).
    """
    if choice == "volume":
        return pixels.plan_volume_scaling(mins, maxs, dtype, "PT")
    return pixels.plan_series_scaling(mins, maxs, dtype, "PT")


def write_streamed(folder, name, header, volume, scaling, backend, projections=None):
    """The header, then the frames packed a chunk at a time into one buffer, into a new file of the folder.

    ``projections`` (a preview's ProjectionAccumulator, or None) takes each chunk as it passes.
    """
    fd = folder.open(name)
    try:
        write_all(fd, [header])
        buffer = None
        for part, index in chunks(volume.shape):
            chunk = volume[index]
            if projections is not None:
                projections.add(chunk, index[-1].start, index[0] if len(index) == 2 else 0)
            if buffer is None or len(buffer) < len(chunk):
                buffer = np.empty(chunk.shape, np.uint16)
            per_frame = (values[part] for values in scaling)
            write_all(fd, [pixels.pack_slices(chunk, *per_frame, buffer[: len(chunk)], backend)])
            release_pages(chunk)
    except OSError as exc:
        exc.add_note(f"writing {folder.path(name)}")
        raise
    finally:
        folder.close_file(fd)


# -- metadata, said the Enhanced PET way ---------------------------------------------


def enhanced_metadata(user, pet, reference):
    """(image-level values, functional groups the user gave) from the resolved PET metadata.

    ``user`` is what the metadata said (resolved as for a PET series), ``pet``
    the same over the PET Image defaults, decay settled: what the single-frame
    series says. Units, corrections, orientation and the radiopharmaceutical
    are read from it, so both forms of one input agree.
    """
    if str(pet["Units"]).strip() not in PET_UNITS:
        known = ", ".join(PET_UNITS)
        raise MetadataError(f"Units (0054,1001) {pet['Units']!r}: an Enhanced PET image needs one of {known}")
    values, groups = {}, {}
    for keyword, value in user.items():
        if keyword in _GROUPS:
            groups[keyword] = value
        elif keyword in _SAID_OTHERWISE:
            continue
        elif iods.attribute(ENHANCED_PET_IMAGE, keyword) is None and iods.attribute(PET_IMAGE, keyword):
            log.warning("%s: a PET series attribute an Enhanced PET image does not have; not written", keyword)
        else:
            values[keyword] = value
    image_type = list(values_of(pet["ImageType"]))
    default_type = iods.defaults(ENHANCED_PET_IMAGE)["ImageType"]
    values["ImageType"] = image_type + default_type[len(image_type) :]  # a PET series' two values, then VOLUME\NONE

    decay_correction = str(pet["DecayCorrection"]).strip()
    values["DecayCorrected"] = "NO" if decay_correction == "NONE" else "YES"
    corrected = set(values_of(pet.get("CorrectedImage")))
    values.update((flag, "YES" if term in corrected else "NO") for term, flag in CORRECTION_FLAGS.items())
    items = values_of(pet.get("RadiopharmaceuticalInformationSequence"))
    items = [item for item in items if isinstance(item, dict)]
    if not items:
        raise MetadataError(
            "an Enhanced PET image must name its radiopharmaceutical (RadiopharmaceuticalInformationSequence, "
            "Type 1): give isotope, injection_datetime and injected_activity (and radiopharmaceutical) in the metadata"
        )
    radiopharmaceuticals = [_radiopharmaceutical(n, item, pet.get("SeriesDate")) for n, item in enumerate(items, 1)]
    values["RadiopharmaceuticalInformationSequence"] = radiopharmaceuticals
    if decay_correction == "START":
        values["DecayCorrectionDateTime"] = dicom_datetime(reference)
    elif decay_correction == "ADMIN":
        values["DecayCorrectionDateTime"] = radiopharmaceuticals[0].get("RadiopharmaceuticalStartDateTime", "")
    position = position_of_sequences(pet)
    if position is not None:
        values.setdefault("PatientPosition", position)

    anatomy = iods.defaults_of(_GROUPS["FrameAnatomySequence"].items)
    anatomy["FrameLaterality"] = pet.get("ImageLaterality") or anatomy["FrameLaterality"]
    groups.setdefault("FrameAnatomySequence", [anatomy])
    if "WindowCenter" in user or "WindowWidth" in user:
        window = {"WindowCenter": user.get("WindowCenter"), "WindowWidth": user.get("WindowWidth")}
        groups.setdefault("FrameVOILUTSequence", [window])
    return values, groups


def _radiopharmaceutical(number, item, series_date):
    """One PET Isotope item as an Enhanced PET Isotope item: dose in MBq, agent number, route and code."""
    rows = iods.attribute(ENHANCED_PET_IMAGE, "RadiopharmaceuticalInformationSequence").items
    allowed = {row.keyword for row in rows}
    enhanced = {keyword: value for keyword, value in item.items() if keyword in allowed}
    for keyword in sorted(set(item) - allowed - {"Radiopharmaceutical", "RadiopharmaceuticalStartTime"}):
        log.warning("RadiopharmaceuticalInformationSequence[%d].%s: not part of an Enhanced PET image", number, keyword)
    enhanced["RadiopharmaceuticalAgentNumber"] = number
    dose = item.get("RadionuclideTotalDose")
    enhanced["RadionuclideTotalDose"] = "" if dose in (None, "") else float(dose) / 1e6  # Bq -> MBq
    if "RadiopharmaceuticalStartDateTime" not in item and item.get("RadiopharmaceuticalStartTime") and series_date:
        enhanced["RadiopharmaceuticalStartDateTime"] = f"{series_date}{item['RadiopharmaceuticalStartTime']}"
    enhanced.setdefault("AdministrationRouteCodeSequence", [INTRAVENOUS_ROUTE.item()])
    if "RadiopharmaceuticalCodeSequence" not in enhanced:
        given = item.get("Radiopharmaceutical")
        code = radiopharmaceutical_code(given)
        if code is None:
            known = "" if given is None else f"{given!r} is not one dcmforge knows a code for; "
            raise MetadataError(
                f"RadiopharmaceuticalInformationSequence[{number}].RadiopharmaceuticalCodeSequence (0054,0304) is "
                f"Type 1 in an Enhanced PET image: {known}give radiopharmaceutical = \"Fluorodeoxyglucose\" "
                "(FDG) or the code itself (RadiopharmaceuticalCodeSequence, SNOMED CT, PS3.16 CID 4021)"
            )
        enhanced["RadiopharmaceuticalCodeSequence"] = [code.item()]
    return enhanced


def _drop_defaults_not_required(dataset, user, description):
    """A conditional attribute's default is written only while its condition holds (or the user gave it)."""
    for row in description.attributes:
        if row.condition and row.default is not None and row.keyword not in user and not row.condition.test(dataset):
            dataset.pop(row.keyword, None)


# -- values derived from the volume, its geometry and the clock -----------------------


class FrameClock(NamedTuple):
    """Per time frame, as DICOM values: start and the moment the pixel values represent (DT), duration, decay."""

    starts: list
    references: list
    durations: list  # ms, None where unknown
    decay_factors: list  # None when not decay corrected
    total_duration: float | None  # s from the first start to the last end


def frame_clock(reference, timings, half_life, decay_factors):
    """The FrameClock of frames timed from the series reference time (timing.frame_timings)."""

    def moment(seconds):
        return dicom_datetime(reference + datetime.timedelta(seconds=seconds))

    ends = [t.start + t.duration for t in timings if t.duration is not None]
    return FrameClock(
        [moment(t.start) for t in timings],
        [moment(timing.reference_time(t, half_life)) for t in timings],
        [None if t.duration is None else 1000.0 * t.duration for t in timings],
        decay_factors,
        ends[-1] - timings[0].start if len(ends) == len(timings) else None,
    )


def _image_values(plan, scaling, clock):
    """What the volume, geometry, UIDs and clock decide at the image level."""
    shape = plan.shape
    dynamic = len(shape) == 4
    values = uid_and_clock_values(plan, "PT multiframe")
    seed = plan.options.seed
    organization = new_uid(seed, values["SeriesInstanceUID"], "dimension organization")
    # Slowest-varying first, as the frames are stored (readers such as dcm2niix sort by them in this order).
    indices = (("TemporalPositionIndex",) if dynamic else ()) + ("StackID", "InStackPositionNumber")
    values.update({
        "SOPInstanceUID": new_uid(seed, values["SeriesInstanceUID"], 0),
        "InstanceNumber": 1,
        "Rows": shape[-2],
        "Columns": shape[-1],
        "NumberOfFrames": math.prod(shape[:-2]),
        "PixelRepresentation": int(scaling.signed[0]),
        "DimensionOrganizationSequence": [{"DimensionOrganizationUID": organization}],
        "DimensionIndexSequence": [
            {
                "DimensionIndexPointer": index,
                "FunctionalGroupPointer": "FrameContentSequence",
                "DimensionOrganizationUID": organization,
            }
            for index in indices
        ],
        "DimensionOrganizationType": "3D_TEMPORAL" if dynamic else "3D",
        "AcquisitionDateTime": clock.starts[0],
    })  # fmt: skip
    if clock.total_duration is not None:
        values["AcquisitionDuration"] = clock.total_duration
    return values


def _frame_groups(dataset, groups, shape, geometry, scaling, clock, units, extrema):
    """Every frame's functional groups: keyword -> [item]; groups the same in every frame are one object."""
    slices = shape[-3]
    positions = geometry.image_positions(slices).round(6)
    low, high = pixels.SIGNED_RANGE if dataset["PixelRepresentation"] else pixels.UNSIGNED_RANGE
    code, meaning = PET_UNITS[str(units).strip()]
    common = {
        "PixelMeasuresSequence": [{
            "PixelSpacing": [round(v, 6) for v in geometry.pixel_spacing],
            "SliceThickness": round(geometry.slice_thickness, 6),
            "SpacingBetweenSlices": round(geometry.slice_thickness, 6),
        }],
        "PlaneOrientationSequence": [{"ImageOrientationPatient": geometry.image_orientation}],
        # In real-world values (the window applies after rescaling), as the single-frame series has it.
        "FrameVOILUTSequence": [dict(zip(("WindowCenter", "WindowWidth"), pet_window(extrema[1])))],
        "RadiopharmaceuticalUsageSequence": [iods.defaults_of(_GROUPS["RadiopharmaceuticalUsageSequence"].items)],
        "PETFrameTypeSequence": [{
            "FrameType": dataset["ImageType"],
            **{k: dataset[k] for k in ("PixelPresentation", "VolumetricProperties", "VolumeBasedCalculationTechnique")},
        }],
        **groups,
    }  # fmt: skip
    rescale_type = iods.defaults_of(_GROUPS["PixelValueTransformationSequence"].items)["RescaleType"]
    units_item = {"CodeValue": code, "CodingSchemeDesignator": "UCUM", "CodeMeaning": meaning}
    corrections = groups.get("PETFrameCorrectionFactorsSequence")
    frames = []
    for n in range(math.prod(shape[:-2])):
        time, z = divmod(n, slices)
        slope, intercept = float(scaling.slopes[n]), float(scaling.intercepts[n])
        content = {
            "FrameAcquisitionDateTime": clock.starts[time],
            "FrameReferenceDateTime": clock.references[time],
            "StackID": "1",
            "InStackPositionNumber": z + 1,
            "TemporalPositionIndex": time + 1,
            "DimensionIndexValues": [time + 1, 1, z + 1] if len(shape) == 4 else [1, z + 1],
        }
        if clock.durations[time] is not None:
            content["FrameAcquisitionDuration"] = clock.durations[time]
        frame = {
            **common,
            "FrameContentSequence": [content],
            "PlanePositionSequence": [{"ImagePositionPatient": positions[z].tolist()}],
            "PixelValueTransformationSequence": [
                {"RescaleIntercept": intercept, "RescaleSlope": slope, "RescaleType": rescale_type}
            ],
            "RealWorldValueMappingSequence": [{
                "RealWorldValueFirstValueMapped": low,
                "RealWorldValueLastValueMapped": high,
                "RealWorldValueIntercept": intercept,
                "RealWorldValueSlope": slope,
                "LUTExplanation": meaning,
                "LUTLabel": str(units).strip(),
                "MeasurementUnitsCodeSequence": [units_item],
            }],
        }  # fmt: skip
        if corrections and clock.decay_factors[time] is not None:
            frame["PETFrameCorrectionFactorsSequence"] = [{**corrections[0], "DecayFactor": clock.decay_factors[time]}]
        frames.append(frame)
    return frames


def _take_shared(frames):
    """Move the groups that are the same in every frame out of the frames: the shared item."""
    shared = {}
    for keyword in list(frames[0]):
        first = frames[0][keyword]
        if not _GROUPS[keyword].per_frame_only and all(frame[keyword] == first for frame in frames):
            shared[keyword] = first
            for frame in frames:
                del frame[keyword]
    return shared


# -- encoding ------------------------------------------------------------------------


def _encode_dataset(dataset, per_frame, codec):
    """The dataset's bytes with the already encoded PerFrameFunctionalGroupsSequence in its place."""
    pieces = encode_elements(dataset, codec) + [(_PER_FRAME_TAG, per_frame)]
    pieces.sort(key=lambda piece: piece[0])
    return b"".join(data for _, data in pieces)


def _encode_per_frame(frames, codec, pixel_representation):
    """PerFrameFunctionalGroupsSequence: per group, what is the same in every frame is encoded once.

    Each group's item is a HeaderTemplate whose slots are the elements that
    differ between frames; a frame costs one render per group.
    """
    plans = []
    for keyword in sorted(frames[0], key=lambda k: lookup(k).tag):
        items = [frame[keyword][0] for frame in frames]
        varying = [key for key in items[0] if any(item[key] != items[0][key] for item in items)]
        constant = {key: _pinned_vr(key, value, pixel_representation) for key, value in items[0].items()}
        constant = {key: value for key, value in constant.items() if key not in varying}
        plans.append((keyword, lookup(keyword).tag, HeaderTemplate(constant, varying, codec)))
    encoded = []
    for frame in frames:
        groups = [sequence_bytes(tag, item_bytes(b"".join(plan.render(frame[keyword][0])))) for keyword, tag, plan in plans]
        encoded.append(item_bytes(b"".join(groups)))
    return sequence_bytes(_PER_FRAME_TAG, b"".join(encoded))


def _pinned_vr(keyword, value, pixel_representation):
    """A value whose VR depends on PixelRepresentation (US or SS), pinned: a template's item cannot see it."""
    vr = lookup(keyword).vr
    if " or " not in vr:
        return value
    return Explicit(concrete_vr(vr, {"PixelRepresentation": pixel_representation}), value)
