"""Metadata of Interfile images: what a header says about the study, patient, tracer and frames.

metadata_from_header returns a dict of DICOM keywords (StudyDate, PatientName,
Units, DecayCorrection, ...) and dcmforge's friendly keys (isotope,
injected_activity, injection_datetime, modality, corrections, frame_start,
frame_duration, ...), plus
half_life and positron_fraction. A part that cannot be read is a warning, not
an error: the image is still usable. :mod:`dcmforge.readers.interfile` calls it while
reading; :mod:`dcmforge.readers.interfile.writer` writes the same keys back.
"""

import datetime as dt
import os
import re

from ...errors import InterfileError
from ...iods.codes import CORRECTIONS, correction_term, units_term
from .grammar import normalise_key, parse_date, parse_list, parse_time
from .numbers import entry_number, loose_number

# imaging modality -> DICOM Modality. Interfile 3.3's "nucmed" names none: PET and SPECT are both
# nuclear medicine, so a section (!SPECT STUDY, !PET STUDY) or the isotope decides (metadata/statements.py).
MODALITIES = {"pet": "PT", "pt": "PT", "nm": "NM", "spect": "NM", "ct": "CT"}
# Keys that say whether one correction was applied: a method ("measured", "DLYD") or "none" (Siemens,
# Interfile 3.3's "method of ... correction"), or Y/N (Interfile 3.3's "... corrected").
CORRECTION_KEYS = {"method of attenuation correction": "ATTN", "method of scatter correction": "SCAT",
                   "method of random correction": "RAN", "attenuation corrected": "ATTN",
                   "scatter corrected": "SCAT", "decay corrected": "DECY"}  # fmt: skip
NOT_APPLIED = ("none", "no", "n", "off", "false", "0")
# Siemens %decay correction -> DecayCorrection (0054,1102)
DECAY_REFERENCES = {"none": "NONE", "start": "START", "admin": "ADMIN"}
ACTIVITY_UNITS = {"bq": 1.0, "kbq": 1e3, "mbq": 1e6, "gbq": 1e9, "uci": 3.7e4, "mci": 3.7e7, "ci": 3.7e10}
SEXES = {"m": "M", "male": "M", "f": "F", "female": "F", "o": "O", "other": "O"}


# What the warning says when the study's date and time are the data file's (convert drops it when --meta gives them).
STUDY_TIME_GUESSED = "StudyDate/StudyTime taken from the modification time"

def metadata_from_header(header, dialect, header_path, data_path, frames, warnings):
    """The metadata dict; a part that cannot be read becomes a warning and the other parts are still read."""
    meta = {}
    readers = (_study_datetime, _patient, _tracer, _modality_and_units, _corrections, _frame_times)
    for read in readers:
        try:
            read(header, dialect, header_path, data_path, frames, meta, warnings)
        except InterfileError as exc:
            warnings.append(f"{exc}; ignored")
    return meta


def _study_datetime(header, dialect, header_path, data_path, frames, meta, warnings):
    date_entry = header.find_prefixed("study date")
    date = None
    if date_entry is not None and date_entry.value.strip():
        try:
            date = parse_date(header, date_entry)
        except InterfileError as exc:
            warnings.append(f"{exc}; ignored")
    if date is not None:
        meta["StudyDate"] = date
        time_entry = header.find_prefixed("study time")
        if time_entry is None or not time_entry.value.strip():
            warnings.append(f"{header.source}: no study time in the header")
            return
        meta["StudyTime"], zone = parse_time(header, time_entry)
        if zone:
            meta["TimezoneOffsetFromUTC"] = zone
        return
    try:
        stamp = dt.datetime.fromtimestamp(os.stat(data_path).st_mtime).astimezone()
    except (OSError, ValueError, OverflowError):
        return
    meta["StudyDate"] = stamp.strftime("%Y%m%d")
    meta["StudyTime"] = stamp.strftime("%H%M%S")
    meta["TimezoneOffsetFromUTC"] = stamp.strftime("%z")
    warnings.append(f"no usable study date in {header.source}: {STUDY_TIME_GUESSED} of {data_path}")


def _patient(header, dialect, header_path, data_path, frames, meta, warnings):
    for keyword, key in (("PatientName", "patient name"), ("PatientID", "patient id"), ("StudyID", "study id"),
                         ("ManufacturerModelName", "originating system")):  # fmt: skip
        value = header.text(key, default="").strip()
        if value and value.lower() != "unknown":
            meta[keyword] = value
    name = meta.get("PatientName", "").lower()
    if dialect == "castor" and name in (header_path.stem.lower(), data_path.stem.lower()):
        del meta["PatientName"]  # CASToR writes the file name there
        warnings.append(f"{header.source}: patient name := {name} is CASToR's file name: ignored")
    sex = SEXES.get(header.text("patient sex", default="").strip().lower())
    if sex:
        meta["PatientSex"] = sex
    birth = header.find_prefixed("patient dob")
    if birth is not None and birth.value.strip():
        meta["PatientBirthDate"] = parse_date(header, birth)
    weight = header.find_prefixed("patient weight")
    if weight is not None and weight.value.strip():
        kilograms = entry_number(header, weight)
        if kilograms < 0:
            raise header.fail(weight, "a weight is 0 kg or more")
        if kilograms > 0:  # 0 is how scanners write "not known"
            meta["PatientWeight"] = kilograms


def _tracer(header, dialect, header_path, data_path, frames, meta, warnings):
    isotope = header.text("radionuclide name", 1) or header.text("radionuclide name") or header.text("isotope name")
    if isotope and isotope.strip():
        meta["isotope"] = isotope.strip()
    drug = header.text("radiopharmaceutical", default="").strip()
    if drug:
        meta["radiopharmaceutical"] = drug
    candidates = {  # STIR's radionuclide keys first, then Siemens' isotope keys
        "half_life": (header.get("radionuclide halflife (sec)", 1), header.get("radionuclide halflife (sec)"),
                      header.find_prefixed("isotope gamma halflife"), header.find_prefixed("isotope halflife")),
        "positron_fraction": (header.get("radionuclide branching factor", 1),
                             header.get("radionuclide branching factor"),
                             header.find_prefixed("isotope branching factor")),
    }  # fmt: skip
    for name, entries in candidates.items():
        entry = next((e for e in entries if e is not None and e.value.strip()), None)
        if entry is not None:
            meta[name] = entry_number(header, entry)
    activity = header.find_prefixed("tracer activity at time of injection")
    if activity is not None and activity.value.strip():
        unit = re.search(r"\(([a-z]+)\)$", activity.key)
        scale = ACTIVITY_UNITS.get(unit[1] if unit else "bq")
        if scale is None:
            raise header.fail(activity, "unknown activity unit")
        bq = entry_number(header, activity) * scale
        if bq > 0:
            meta["injected_activity"] = bq
        else:
            warnings.append(f"{header.source}: injected activity {bq:g} Bq read as not recorded")
    _injection_datetime(header, meta, warnings)


def _injection_datetime(header, meta, warnings):
    date_entry = header.find_prefixed("tracer injection date")
    time_entry = header.find_prefixed("tracer injection time")
    if time_entry is None or not time_entry.value.strip():
        return
    if date_entry is not None and date_entry.value.strip():
        date = parse_date(header, date_entry)
    elif "StudyDate" in meta:
        date = meta["StudyDate"]
        warnings.append(f"{header.source}: tracer injection date missing: assumed the study date")
    else:
        return
    time, zone = parse_time(header, time_entry)
    text = f"{date[:4]}-{date[4:6]}-{date[6:]}T{time[:2]}:{time[2:4]}:{time[4:]}"
    meta["injection_datetime"] = text + (f"{zone[:3]}:{zone[3:]}" if zone else "")


def _modality_and_units(header, dialect, header_path, data_path, frames, meta, warnings):
    modality = MODALITIES.get(normalise_key(header.text("imaging modality", default="")))
    sections = {entry.key.split("study", 1)[0] for entry in header.entries if "study(" in entry.key}
    pet_type_of_data = normalise_key(header.text("type of data", default="")) == "pet"
    if modality is None and "spect" in sections:
        modality = "NM"
    if modality is None and (pet_type_of_data or header.has("PET data type") or "pet" in sections):
        modality = "PT"
    if modality:
        meta["modality"] = modality
    unit = header.text("quantification units", default="").strip()
    if unit and loose_number(unit) is None:  # STIR and CASToR write a number there: a scale, not a unit
        if units_term(unit):
            meta["Units"] = units_term(unit)
        else:
            warnings.append(f"{header.source}: quantification units := {unit} has no DICOM Units term")


def _corrections(header, dialect, header_path, data_path, frames, meta, warnings):
    """corrections (CorrectedImage terms) and DecayCorrection, where the header says which were applied.

    A header that says none were (``method of scatter correction := none``)
    states an empty list; one that says nothing states nothing.
    """
    applied, stated = set(), False
    listed = header.find_prefixed("applied corrections")
    if listed is not None and listed.value.strip() not in ("", "{}"):
        stated = True
        for name in parse_list(header, listed) if listed.value.startswith("{") else [listed.value]:
            term = correction_term(name)
            if term:
                applied.add(term)
            elif name:
                warnings.append(f"{header.source}: applied corrections: {name!r} is no CorrectedImage term; not listed")
    for key, term in CORRECTION_KEYS.items():
        entry = header.find_prefixed(key)
        if entry is not None and entry.value.strip():
            stated = True
            if entry.value.strip().lower() not in NOT_APPLIED:
                applied.add(term)
    decay = header.find_prefixed("decay correction")
    if decay is not None and decay.value.strip():
        reference = DECAY_REFERENCES.get(decay.value.strip().lower())
        if reference is None:
            raise header.fail(decay, f"expected one of {', '.join(DECAY_REFERENCES)}")
        meta["DecayCorrection"], stated = reference, True
        if reference != "NONE":
            applied.add("DECY")
    if stated:
        meta["corrections"] = [term for term in CORRECTIONS if term in applied]


def _frame_times(header, dialect, header_path, data_path, frames, meta, warnings):
    """frame_start and frame_duration (s): STIR vectorised keys, or one per frame block (CASToR)."""
    durations = _frame_values(header, ("image duration (sec)",), frames)
    starts = _frame_values(header, ("image relative start time (sec)", "image start time (sec)"), frames)
    if durations is None and starts is None:
        return
    if durations is not None and starts is None:
        pauses = _frame_values(header, ("pause between frame groups (sec)",), frames) or [0.0] * frames
        starts = [float(sum(durations[:f]) + sum(pauses[:f])) for f in range(frames)]
        warnings.append(f"{header.source}: no frame start times: frames assumed back to back from 0 s")
    meta["frame_start"] = starts
    if durations is not None:
        meta["frame_duration"] = durations


def _frame_values(header, keys, frames):
    for key in keys:
        indexed = header.indexed(key)
        if indexed:
            if sorted(indexed) != list(range(1, frames + 1)):
                raise InterfileError(f"{header.source}: '{key} [f]' is not given for frames 1 to {frames}")
            return [entry_number(header, indexed[f]) for f in range(1, frames + 1)]
        entries = [e for e in header.all(key) if e.value.strip()]
        if entries:
            if len(entries) != frames:
                raise InterfileError(f"{header.source}: '{key}' given {len(entries)} times for {frames} frame(s)")
            return [entry_number(header, e) for e in entries]
    return None
