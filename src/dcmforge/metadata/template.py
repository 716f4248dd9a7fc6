"""The commented TOML starter file (``dcmforge template``): every attribute of a description, with its
type, condition, allowed values and an example.
"""

import json

from ..dicom import tags
from ..iods import description_for
from .friendly import FRIENDLY_KEYS, PET_ONLY_KEYS

# Example values for the template's commented-out lines.
_EXAMPLES = {
    "StudyDescription": "J-PET simulation: NEMA IEC body phantom",
    "PatientAge": "045Y",
    "PatientSize": 1.75,
    "PatientWeight": 70.0,
    "SeriesDescription": "OSEM, 3 iterations, 21 subsets",
    "BodyPartExamined": "WHOLEBODY",
    "InstitutionName": "Jagiellonian University",
    "ManufacturerModelName": "J-PET",
    "DeviceSerialNumber": "0",
    "ReconstructionMethod": "OSEM 3i21s",
    "AttenuationCorrectionMethod": "CT-based",
    "ScatterCorrectionMethod": "single scatter simulation",
    "RandomsCorrectionMethod": "DLYD",
    "ConvolutionKernel": "GAUSS 4MM",
    "DataCollectionDiameter": 500,
    "ReconstructionDiameter": 500,
}
_WINDOW_EXAMPLES = {"PT": (20000, 40000), "NM": (20000, 40000), "CT": (40, 400)}  # Bq/ml; Hounsfield units

_FRIENDLY_EXAMPLES = {
    "isotope": "F-18",
    "radiopharmaceutical": "Fluorodeoxyglucose",
    "injected_activity": 3.7e8,
    "injection_datetime": "2025-01-31T09:45:00",
    "acquisition_datetime": "2025-01-31T10:45:00",
    "half_life": 6586.2,
    "positron_fraction": 0.9673,
    "patient_position": "HFS",
    "frame_start": [0.0],
    "frame_duration": [600.0],
    "units": "BQML",
    "corrections": ["attenuation", "scatter", "randoms", "normalisation", "decay"],
}

# Attributes only the input or the user can state (metadata/statements.py): no value is printed for them.
_STATED_WORDS = {
    "Units": "say it with units = above; not stated: PROPCNTS (proportional to counts), not SUV-ready",
    "CorrectedImage": "say it with corrections = above; not stated: empty",
    "DecayCorrection": "START when corrections = lists decay (ADMIN: to the injection time); not stated: NONE",
}

# A SPECT image's examples where they differ from PET's, and the keys it does not take.
_NM_EXAMPLES = {
    "isotope": "Tc-99m",
    "radiopharmaceutical": "Technetium Tc-99m medronate",
    "injected_activity": 7.4e8,
    "half_life": 21654.0,
    "corrections": ["attenuation", "scatter", "decay"],
}
_NM_HIDDEN = ("positron_fraction", "frame_start", "frame_duration")

_SOURCE_WORDS = {
    "uid": "dcmforge generates a new UID unless you give one (give the same one to PET and CT of one scan)",
    "clock": "the time of writing unless you give it (acquisition_datetime sets SeriesDate/Time and StudyDate/Time)",
    "series": "derived from the volume and its geometry: not set here",
    "slice": "derived for every slice: not set here",
}


def template_text(modality):
    """A commented TOML starter file listing every attribute of the description (it parses and passes check)."""
    description = description_for(modality)
    pet = description.modality == "PT"
    emission = description.modality != "CT"  # PET or NM: a radiopharmaceutical, units, corrections
    users = {"PT": "PET", "NM": "SPECT"}.get(description.modality)
    # NM: static volumes (no frame timing), no positrons
    hidden = () if pet else _NM_HIDDEN if emission else PET_ONLY_KEYS + ("frame_start", "frame_duration")
    lines = [
        f"# dcmforge metadata for a {description.name} series (SOP class {description.sop_class_uid}).",
        "#",
        "# Keys are DICOM keywords (values as text, numbers or lists; sequences as arrays of tables),",
        "# or the friendly keys below. Lines with a value are what dcmforge writes by default: edit them.",
        "# Commented-out lines are examples: remove the '# ' to use them. Sequences written as",
        "# [[Keyword]] tables must come after every plain key; inline tables (Keyword = [{ ... }]) may go anywhere.",
        "# Type 1: required, with a value; 2: required, may be empty (\"\"); 3: optional;",
        "# 1C/2C: required as 1 or 2 when the condition holds.",
        "",
        f"# ---- What {users} users know; dcmforge turns these into DICOM ----" if users else "# ---- Friendly keys ----",
    ]
    for key, words in FRIENDLY_KEYS.items():
        if key not in hidden:
            examples = {**_FRIENDLY_EXAMPLES, **_NM_EXAMPLES} if description.modality == "NM" else _FRIENDLY_EXAMPLES
            example = description.modality if key == "modality" else examples[key]
            lines += [f"# {key}: {words}", f"# {key} = {_toml(example)}"]
    modules = {}
    for row in description.attributes:
        modules.setdefault(row.module, []).append(row)
    for module, rows in modules.items():
        lines += ["", f"# ---- {module} ----"]
        for row in rows:
            lines += _template_lines(row, description)
    return "\n".join(lines) + "\n"


def _template_lines(row, description):
    entry = tags.lookup(row.keyword)
    head = f"# {row.keyword} {tags.format_tag(entry.tag)} {entry.vr}, type {row.type}, {row.module}"
    if row.condition:
        head += f"; required when {row.condition.text}"
    lines = [head]
    fixed = _fixed_value(row)
    if fixed is not None:
        lines.append(f"#   fixed: {_toml(fixed)}")
        return lines
    if row.source in _SOURCE_WORDS:
        lines.append(f"#   {_SOURCE_WORDS[row.source]}")
    lines += [f"#   {_values_text(allowed)}" for allowed in row.enum]
    if entry.vr == "SQ":
        lines += _item_lines(row.items, "#   item: ")
        if row.default is not None:
            lines.append(f"#   default: {_toml(row.default)}")
        return lines
    if row.keyword in _STATED_WORDS and description.modality != "CT":
        lines.append(f"#   {_STATED_WORDS[row.keyword]}")
        return lines
    if row.keyword == "PatientPosition" and description.modality == "PT":
        lines.append("#   not written into PET images: patient_position fills the orientation code sequences")
        return lines
    example = _EXAMPLES.get(row.keyword)
    if row.keyword in ("WindowCenter", "WindowWidth"):
        example = _WINDOW_EXAMPLES[description.modality][row.keyword == "WindowWidth"]
    if row.source in ("default", "user") and row.default is not None:
        lines.append(f"{row.keyword} = {_toml(row.default)}")
    elif example is not None:
        lines.append(f"# {row.keyword} = {_toml(example)}")
    return lines


def _item_lines(rows, prefix):
    lines = []
    for row in rows:
        entry = tags.lookup(row.keyword)
        lines.append(f"{prefix}{row.keyword} {tags.format_tag(entry.tag)} {entry.vr}, type {row.type}")
        lines += _item_lines(row.items, "#     " + prefix[2:])
    return lines


def _fixed_value(row):
    """The single value an enumeration allows for every value of ``row``, or None."""
    if len(row.enum) == 1 and row.enum[0].kind == "enumerated" and row.enum[0].position is None:
        if len(row.enum[0].allowed) == 1:
            return row.enum[0].allowed[0]
    return None


def _values_text(allowed):
    which = f"value {allowed.position}: " if allowed.position else ""
    kind = "one of" if allowed.kind == "enumerated" else "defined terms"
    return f"{which}{kind} {', '.join(str(value) for value in allowed.allowed)}"


def _toml(value):
    """``value`` written as TOML (strings, numbers, lists, inline tables)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(single) for single in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(single)}" for key, single in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")
