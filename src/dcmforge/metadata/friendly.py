"""Metadata into DICOM: friendly keys (what PET users know) become attributes, values are checked against their VR.

What no longer applies (keys of the earlier J-PET converter, attributes the
writer derives, attributes of the other modality) is explained in the notes
rather than silently applied.
"""

import datetime
import math

from ..dicom import tags
from ..dicom.values import dicom_date, dicom_datetime, dicom_time, plain_copy, plain_key, text_value, values_of
from ..dicom.vr import vrs_of_kind
from ..errors import EncodingError, MetadataError
from ..iods import MODALITY_SPELLINGS, attribute, description_for
from ..iods.codes import (
    RETIRED_SCHEMES,
    current_code,
    orientation_sequences,
    position_of_sequences,
    radionuclide,
    radionuclide_for_code,
    radiopharmaceutical_code,
)
from ..iods.validate import element_problems, problem
from .files import check_nesting, flatten_sections
from .statements import CORRECTION_NAMES, apply_corrections, apply_units, settle_decay_correction

# Friendly key -> what it fills (shown in the template and in "did you mean" hints).
FRIENDLY_KEYS = {
    "isotope": "radionuclide by name (F-18, Ga-68, ...): RadionuclideCodeSequence, half-life, positron fraction",
    "radiopharmaceutical": "free text, e.g. Fluorodeoxyglucose: Radiopharmaceutical",
    "injected_activity": "activity at injection time, in Bq: RadionuclideTotalDose",
    "injection_datetime": "ISO 8601 date and time: RadiopharmaceuticalStartDateTime and StartTime",
    "acquisition_datetime": "ISO 8601, the series reference time: SeriesDate and SeriesTime",
    "half_life": "radionuclide half-life in seconds, for one not in dcmforge's table: RadionuclideHalfLife",
    "positron_fraction": "positron branching fraction, 0 to 1: RadionuclidePositronFraction",
    "patient_position": "HFS, HFP, FFS or FFP: PET orientation code sequences, CT PatientPosition",
    "frame_start": "seconds from the acquisition start, one per frame",
    "frame_duration": "seconds, one per frame",
    "modality": "PT, NM or CT: must match the image being written",
    "units": "what the values are: BQML (activity concentration, Bq/ml), CNTS (counts), ...: Units",
    "corrections": f"the corrections applied ({CORRECTION_NAMES}): CorrectedImage",
}
PET_ONLY_KEYS = (
    "isotope", "radiopharmaceutical", "injected_activity", "injection_datetime", "half_life", "positron_fraction",
    "units", "corrections",
)

# Keys of the earlier converter's files that dcmforge reads but does not use.
LEGACY_KEYS = {
    "patientCenter": "ignored: the geometry (image position) now comes from the image header",
}


_BINARY_NUMBER_VRS = vrs_of_kind("number")

# Why a value the user gave for a derived attribute is not used: by keyword, else by source.
_FRAME_TIMING = "dcmforge computes it for every frame from frame_start, frame_duration and the half-life"
_SCALING = "dcmforge scales every slice into 16-bit integers and writes the slope and intercept it used"
_DERIVED_REASONS = {
    "FrameReferenceTime": _FRAME_TIMING,
    "DecayFactor": _FRAME_TIMING,
    "ActualFrameDuration": _FRAME_TIMING,
    "AcquisitionDate": _FRAME_TIMING,
    "AcquisitionTime": _FRAME_TIMING,
    "RescaleSlope": _SCALING,
    "RescaleIntercept": _SCALING,
    "PixelRepresentation": "dcmforge picks signed or unsigned pixels from the volume's values",
    "series": "dcmforge derives it from the volume and its geometry (the image header)",
    "slice": "dcmforge derives it for every slice from the volume",
}
_MODALITY_NAMES = {"PT": "PET", "CT": "CT", "NM": "NM"}
# Emission images: a radiopharmaceutical, and the patient position in the NM/PET orientation codes.
_EMISSION = ("PT", "NM")


def resolve_metadata(meta, modality):
    """(DICOM keyword -> value, notes): friendly keys turned into DICOM, values checked against their VR.

    ``frame_start`` and ``frame_duration`` pass through (validated, as lists
    of seconds) for the series writer. Raises MetadataError naming every
    problem when any is an error; warnings and explanations come back as notes.
    """
    key = (modality, plain_key(meta)) if isinstance(modality, str) else None
    if key is not None and key[1] is not None and key in _resolved_before:
        resolved, notes = _resolved_before[key]
        return plain_copy(resolved), list(notes)
    resolved, problems = resolve(meta, description_for(modality))
    errors = [str(found) for found in problems if found.level == "error"]
    if errors:
        raise MetadataError(f"{len(errors)} problem(s) with the metadata:\n  " + "\n  ".join(errors))
    notes = [str(found) for found in problems]
    if key is not None and key[1] is not None:
        if len(_resolved_before) >= 64:
            _resolved_before.clear()
        _resolved_before[key] = plain_copy(resolved), tuple(notes)
    return resolved, notes


# (modality, metadata as a plain key) -> (resolved, notes): a process writing many series of one metadata
# resolves it once. Resolving is a function of these alone; metadata with errors is refused every time.
_resolved_before = {}


def resolve(meta, description):
    """(resolved, problems); resolved holds what could be resolved even when there are errors."""
    if not isinstance(meta, dict):
        raise MetadataError(f"metadata must be a table of keyword = value, not {type(meta).__name__}")
    check_nesting(meta)
    meta = flatten_sections(meta)
    problems = []
    resolved = {}
    friendly = {}
    for key, value in meta.items():
        if key in FRIENDLY_KEYS:
            friendly[key] = value
        elif key in LEGACY_KEYS:
            problems.append(problem(key, LEGACY_KEYS[key], level="warning"))
        elif _is_keyword(key):
            resolved[key] = _convert(key, value, key, problems)
        else:
            problems.append(problem(str(key), _unknown_key_message(key, description)))
    _drop_bad_values(resolved, problems)
    _drop_negative_measures(resolved, problems)
    _update_codes(resolved, "", problems)
    _apply_friendly(friendly, resolved, description, problems)
    if description.modality == "PT":  # DecayCorrection is PET's (NM says decay in CorrectedImage alone)
        settle_decay_correction(resolved, problems)
    _fill_radionuclide_data(resolved, problems)
    _settle_patient_position(resolved, description, problems)
    _drop_foreign_and_derived(resolved, description, problems)
    return resolved, problems


def _is_keyword(key):
    try:
        tags.lookup(key)
    except EncodingError:
        return False
    return True


def _unknown_key_message(key, description):
    import difflib  # only for a key nobody knows: a run without one does not load it

    candidates = list(FRIENDLY_KEYS) + list(LEGACY_KEYS) + [row.keyword for row in description.attributes]
    by_folded = {candidate.casefold(): candidate for candidate in candidates}
    close = difflib.get_close_matches(str(key).casefold(), by_folded, n=1, cutoff=0.7)
    if close:
        hint = f"did you mean {by_folded[close[0]]}?"
    else:
        try:
            tags.lookup(key)
            hint = ""
        except EncodingError as error:
            hint = error.reason
    return f"neither a DICOM keyword nor a dcmforge key ({', '.join(FRIENDLY_KEYS)}); {hint}".rstrip("; ")


def _convert(keyword, value, path, problems):
    """``value`` in the form the encoder takes: sequences as lists of dicts, numbers from text for binary VRs."""
    vr = tags.lookup(keyword).vr
    if value is None:
        return None
    if vr == "SQ":
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            problems.append(problem(path, "a sequence needs a list of tables (keyword = value items)"))
            return None
        return [_convert_item(item, f"{path}[{number}]", problems) for number, item in enumerate(items, 1)]
    if isinstance(value, list):
        return [_convert_single(vr, single, path, problems) for single in value]
    return _convert_single(vr, value, path, problems)


def _convert_item(item, path, problems):
    converted = {}
    for key, value in item.items():
        if _is_keyword(key):
            converted[key] = _convert(key, value, f"{path}.{key}", problems)
        else:
            problems.append(problem(f"{path}.{key}", "not a DICOM keyword; " + _keyword_hint(key)))
    return converted


def _keyword_hint(key):
    try:
        tags.lookup(key)
    except EncodingError as error:
        return error.reason
    return ""


def _convert_single(vr, value, path, problems):
    if isinstance(value, bool):
        problems.append(problem(path, f"true/false is not a {vr} value; write the DICOM text (YES/NO, Y/N, ...)"))
        return None
    if isinstance(value, dict):
        problems.append(problem(path, f"a table is not a {vr} value"))
        return None
    if vr in _BINARY_NUMBER_VRS and isinstance(value, str):
        try:
            return float(value) if vr in ("FL", "FD") else int(value)
        except ValueError:
            kind = "a number" if vr in ("FL", "FD") else "an integer"
            problems.append(problem(path, f"{value!r} is not {kind} ({vr})"))
            return None
    return value


def _drop_bad_values(resolved, problems):
    """Check every value against its VR and value count; keep only the good ones."""
    for found in element_problems(resolved):
        if found.level == "error":  # warnings come again when the merged image is validated
            problems.append(found)
            resolved.pop(found.keyword.split("[", 1)[0].split(".", 1)[0], None)


# A patient's measures (PS3.3 C.7.2.2): a sign typed by mistake would skew every SUV computed from them.
_NOT_NEGATIVE = {"PatientWeight": ("weight", "kg"), "PatientSize": ("size", "m")}


def _drop_negative_measures(resolved, problems):
    for keyword, (noun, unit) in _NOT_NEGATIVE.items():
        value = resolved.get(keyword)
        try:
            negative = value is not None and float(value) < 0
        except (TypeError, ValueError):  # not a number: its VR check has said so
            continue
        if negative:
            problems.append(problem(keyword, f"{value!r} is negative: a {noun} is 0 {unit} or more"))
            resolved.pop(keyword)


def _update_codes(dataset, path, problems):
    """Map retired SNOMED-RT codes to SCT, fill known meanings, drop stale mapping details, in every sequence."""
    for key, value in dataset.items():
        if not isinstance(value, list):
            continue
        for number, item in enumerate(value, 1):
            if isinstance(item, dict):
                where = f"{path}{key}[{number}]"
                _update_code_item(item, where, problems)
                _update_codes(item, where + ".", problems)


def _update_code_item(item, where, problems):
    value, scheme = item.get("CodeValue"), item.get("CodingSchemeDesignator")
    if value is None or scheme is None:
        return
    current = current_code(value, scheme)
    if current is not None and (value, scheme) != current[:2]:
        item.update(current.item())
        message = f"retired code {value} ({scheme}) replaced by {current.value} ({current.scheme}) {current.meaning!r}"
        problems.append(problem(where, message, level="note"))
    elif current is not None and not item.get("CodeMeaning"):
        item["CodeMeaning"] = current.meaning
    elif scheme in RETIRED_SCHEMES:
        message = f"{value} ({scheme}): the {scheme} designator is retired; give the current SCT code"
        problems.append(problem(where, message, level="warning"))
    stale = [key for key in ("MappingResource", "ContextGroupVersion") if key in item]
    if stale and "ContextIdentifier" not in item:
        for key in stale:
            del item[key]
        message = f"{' and '.join(stale)} dropped: allowed only with ContextIdentifier"
        problems.append(problem(where, message, level="note"))


def _first_radiopharmaceutical(resolved):
    """Item 1 of RadiopharmaceuticalInformationSequence, created if needed."""
    items = resolved.get("RadiopharmaceuticalInformationSequence") or []
    if not items:
        items.append({})
        resolved["RadiopharmaceuticalInformationSequence"] = items
    return items[0]


def _apply_friendly(friendly, resolved, description, problems):
    pet = description.modality in _EMISSION
    for key in PET_ONLY_KEYS:
        if key in friendly and not pet:
            problems.append(problem(key, "PET only; not used for a CT image", level="note"))
            del friendly[key]
    if "modality" in friendly:
        given = friendly["modality"]
        if not isinstance(given, str) or MODALITY_SPELLINGS.get(given.strip().upper()) != description.modality:
            problems.append(problem("modality", f"{given!r}, but a {description.modality} image is being written"))
    # Given numbers first: the isotope's table values only fill what is still missing.
    for key, keyword in (("half_life", "RadionuclideHalfLife"), ("positron_fraction", "RadionuclidePositronFraction")):
        if key in friendly:
            number = _positive_number(friendly[key], key, problems)
            if number is not None:
                _set_in_item(resolved, keyword, number, key, problems)
    if "isotope" in friendly:
        _apply_isotope(friendly["isotope"], resolved, problems)
    if "units" in friendly:
        apply_units(friendly["units"], resolved, problems)
    if "corrections" in friendly:
        apply_corrections(friendly["corrections"], resolved, problems)
    if "radiopharmaceutical" in friendly:
        text = friendly["radiopharmaceutical"]
        if isinstance(text, str):
            _set_in_item(resolved, "Radiopharmaceutical", text, "radiopharmaceutical", problems)
            code = radiopharmaceutical_code(text)
            if code is not None:  # a known name also gets its code, which viewers read
                _first_radiopharmaceutical(resolved).setdefault("RadiopharmaceuticalCodeSequence", [code.item()])
        else:
            problems.append(problem("radiopharmaceutical", f"needs text, not {text!r}"))
    if "injected_activity" in friendly:
        activity = _positive_number(friendly["injected_activity"], "injected_activity", problems)
        if activity is not None:
            _set_in_item(resolved, "RadionuclideTotalDose", activity, "injected_activity", problems)
    _apply_times(friendly, resolved, problems)
    if "patient_position" in friendly:
        _apply_patient_position(friendly["patient_position"], resolved, pet, problems)
    _apply_frames(friendly, resolved, problems)


def _set_in_item(resolved, keyword, value, key, problems):
    item = _first_radiopharmaceutical(resolved)
    if keyword in item and item[keyword] != value:
        problems.append(problem(key, f"{value!r} disagrees with {keyword} {item[keyword]!r} given as well"))
    else:
        item[keyword] = value


def _apply_isotope(name, resolved, problems):
    try:
        nuclide = radionuclide(name)
    except MetadataError as error:
        problems.append(problem("isotope", str(error)))
        return
    item = _first_radiopharmaceutical(resolved)
    given = item.get("RadionuclideCodeSequence")
    if given:
        code = given[0] if isinstance(given[0], dict) else {}
        known = radionuclide_for_code(code.get("CodeValue"), code.get("CodingSchemeDesignator"))
        if known != nuclide:
            problems.append(problem("isotope", f"{nuclide.name} disagrees with RadionuclideCodeSequence given as well"))
            return
    item["RadionuclideCodeSequence"] = [nuclide.code.item()]
    item.setdefault("RadionuclideHalfLife", nuclide.half_life)
    item.setdefault("RadionuclidePositronFraction", nuclide.positron_fraction)


def _fill_radionuclide_data(resolved, problems):
    """Half-life and positron fraction of a known radionuclide, where the metadata leaves them out."""
    for number, item in enumerate(values_of(resolved.get("RadiopharmaceuticalInformationSequence")), 1):
        codes = values_of(item.get("RadionuclideCodeSequence")) if isinstance(item, dict) else []
        code = codes[0] if codes and isinstance(codes[0], dict) else {}
        nuclide = radionuclide_for_code(code.get("CodeValue"), code.get("CodingSchemeDesignator"))
        if nuclide is None:
            continue
        filled = []
        for keyword, value in (
            ("RadionuclideHalfLife", nuclide.half_life),
            ("RadionuclidePositronFraction", nuclide.positron_fraction),
        ):
            if keyword not in item:
                item[keyword] = value
                filled.append(f"{keyword} {value:g}")
        if filled:
            message = f"{nuclide.name}: {', '.join(filled)} filled in"
            problems.append(problem(f"RadiopharmaceuticalInformationSequence[{number}]", message, level="note"))


def _positive_number(value, key, problems):
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        problems.append(problem(key, f"needs a positive number, not {value!r}"))
        return None
    return number


def _parse_datetime(value, key, problems):
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None and ("T" in value or " " in value.strip()):
            return parsed
    problems.append(problem(key, f"needs an ISO 8601 date and time such as 2025-01-31T09:45:00, not {value!r}"))
    return None


def _apply_times(friendly, resolved, problems):
    """acquisition_datetime -> SeriesDate/Time (and Study's if not given); injection_datetime -> the item.

    Times are written as local times; an offset from UTC, if given, goes to
    TimezoneOffsetFromUTC, and the injection time is moved to the
    acquisition's offset so both read on one clock.
    """
    acquisition = injection = None
    if "acquisition_datetime" in friendly:
        acquisition = _parse_datetime(friendly["acquisition_datetime"], "acquisition_datetime", problems)
    if "injection_datetime" in friendly:
        injection = _parse_datetime(friendly["injection_datetime"], "injection_datetime", problems)
    given = [moment for moment in (acquisition, injection) if moment is not None]
    if len({moment.utcoffset() is None for moment in given}) > 1:
        problems.append(problem("injection_datetime", "give both date-times with an offset from UTC, or neither"))
        return
    if given and given[0].utcoffset() is not None:
        resolved.setdefault("TimezoneOffsetFromUTC", given[0].strftime("%z"))
        if injection is not None:
            injection = injection.astimezone(given[0].tzinfo)
    if acquisition is not None:
        resolved["SeriesDate"], resolved["SeriesTime"] = dicom_date(acquisition), dicom_time(acquisition)
        resolved.setdefault("StudyDate", resolved["SeriesDate"])
        resolved.setdefault("StudyTime", resolved["SeriesTime"])
    if injection is not None:
        _set_in_item(resolved, "RadiopharmaceuticalStartDateTime", dicom_datetime(injection), "injection_datetime", problems)
        _set_in_item(resolved, "RadiopharmaceuticalStartTime", dicom_time(injection), "injection_datetime", problems)
        if acquisition is not None and injection > acquisition:
            message = "after acquisition_datetime: decay and SUV would count backwards"
            problems.append(problem("injection_datetime", message, level="warning"))


def _apply_patient_position(position, resolved, pet, problems):
    if not isinstance(position, str):
        problems.append(problem("patient_position", f"needs text such as HFS, not {position!r}"))
        return
    position = position.strip().upper()
    given = resolved.get("PatientPosition")
    if given is not None and given != position:
        problems.append(problem("patient_position", f"{position} disagrees with PatientPosition {given} given as well"))
        return
    if not pet:
        resolved["PatientPosition"] = position
        return
    try:
        codes = orientation_sequences(position)
    except MetadataError as error:
        problems.append(problem("patient_position", str(error)))
        return
    _merge_orientation(codes, position, "patient_position", resolved, problems)


def _merge_orientation(codes, position, key, resolved, problems):
    """Take the orientation code sequences of ``position`` unless the metadata gives them (then they must agree)."""
    if "PatientOrientationCodeSequence" in resolved or "PatientGantryRelationshipCodeSequence" in resolved:
        said = position_of_sequences(resolved)
        if said != position:
            message = f"{position} disagrees with the orientation code sequences given as well (they say {said})"
            problems.append(problem(key, message))
        return
    resolved.update(codes)


def _settle_patient_position(resolved, description, problems):
    """PET carries the patient position in code sequences: PatientPosition becomes them and is not written."""
    position = resolved.get("PatientPosition")
    if description.modality not in _EMISSION or position is None:
        return
    del resolved["PatientPosition"]
    try:
        codes = orientation_sequences(position)
    except MetadataError as error:
        problems.append(problem("PatientPosition", str(error)))
        return
    _merge_orientation(codes, position.strip().upper(), "PatientPosition", resolved, problems)
    message = (
        f"{position} is not written into a {_MODALITY_NAMES[description.modality]} image: "
        "PatientOrientationCodeSequence and "
        "PatientGantryRelationshipCodeSequence carry it"
    )
    problems.append(problem("PatientPosition", message, level="note"))


def _apply_frames(friendly, resolved, problems):
    """frame_start/frame_duration: lists of seconds, checked; several frames make the series DYNAMIC."""
    starts = _seconds(friendly, "frame_start", problems)
    durations = _seconds(friendly, "frame_duration", problems)
    if starts is None and durations is None:
        return
    if durations is None:
        problems.append(problem("frame_start", "needs frame_duration too"))
        return
    if starts is None:  # back-to-back frames from the acquisition start
        starts = [math.fsum(durations[:number]) for number in range(len(durations))]
    if len(starts) != len(durations):
        problems.append(problem("frame_duration", f"{len(durations)} value(s) for {len(starts)} frame start(s)"))
        return
    bad = [f"frame {n}" for n, (start, length) in enumerate(zip(starts, durations), 1) if start < 0 or length <= 0]
    bad += [
        f"frame {n + 1} starts before frame {n} ends"
        for n in range(1, len(starts))
        if starts[n] < starts[n - 1] + durations[n - 1]
    ]
    if bad:
        rule = "frames need start >= 0, duration > 0, in order without overlap"
        problems.append(problem("frame_start", f"{rule}: {', '.join(bad)}"))
        return
    resolved["frame_start"], resolved["frame_duration"] = starts, durations
    if len(starts) > 1:
        series_type = text_value(resolved, "SeriesType")
        if series_type is None:
            resolved["SeriesType"] = ["DYNAMIC", "IMAGE"]
        elif series_type != "DYNAMIC":
            problems.append(problem("SeriesType", f"{series_type}, but {len(starts)} frames make a DYNAMIC series"))


def _seconds(friendly, key, problems):
    if key not in friendly:
        return None
    given = friendly[key]
    singles = given if isinstance(given, list) else [given]
    numbers = []
    for single in singles:
        try:
            number = float(single) if not isinstance(single, (bool, str)) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            problems.append(problem(key, f"needs numbers of seconds, not {given!r}"))
            return None
        numbers.append(number)
    if not numbers:
        problems.append(problem(key, "needs at least one frame"))
        return None
    return numbers


def _drop_foreign_and_derived(resolved, description, problems):
    """Explain and drop what the other modality's image holds, and what the writer derives."""
    # NM keeps PET's emission facts (Units, corrections) for its writer to say the NM way.
    other = None  # asked for only when a keyword is not this image's: a PET run then never imports the CT tables
    this_name = _MODALITY_NAMES[description.modality]
    for keyword in [key for key in resolved if key not in ("frame_start", "frame_duration")]:
        row = attribute(description, keyword)
        if row is None:
            other = other or description_for("PT" if description.modality == "CT" else "CT")
            if attribute(other, keyword) is not None:
                del resolved[keyword]
                message = f"belongs to {_MODALITY_NAMES[other.modality]} images; not written into a {this_name} image"
                problems.append(problem(keyword, message, level="warning"))
        elif row.source in ("series", "slice"):
            value = resolved.pop(keyword)
            reason = _DERIVED_REASONS.get(keyword, _DERIVED_REASONS[row.source])
            problems.append(problem(keyword, f"{value!r} not used: {reason}", row, "warning"))
