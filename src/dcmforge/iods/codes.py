"""Coded facts PET users name in words: radionuclides, radiopharmaceuticals, PET units and patient orientation.

Tables are data (``docs/iods.md`` sections 3 and 4, codes from
PS3.16 CID 4020, 4021, 84, 19, 20 and 21). Code values are the current SNOMED CT
(``SCT``) ones; the retired SNOMED-RT codes (designators ``SRT`` and the
older ``99SDM``) are kept only to read old metadata and are mapped to the
current codes, because dciodvfy flags ``SRT`` as deprecated.
"""

from typing import NamedTuple

from ..errors import MetadataError


class Code(NamedTuple):
    """One coded concept, written as a Code Sequence item (PS3.3 8.8)."""

    value: str
    scheme: str
    meaning: str

    def item(self):
        """The code as a dataset item: CodeValue, CodingSchemeDesignator, CodeMeaning."""
        return {"CodeValue": self.value, "CodingSchemeDesignator": self.scheme, "CodeMeaning": self.meaning}


class Radionuclide(NamedTuple):
    name: str  # "F-18": symbol, hyphen, mass number
    element: str  # "Fluorine"
    code: Code
    retired_value: str  # the SNOMED-RT code value (SRT) that old files carry
    half_life: float  # seconds
    positron_fraction: float


# Half-lives and positron fractions are nuclear data (docs/iods.md 4: the typical values used by
# vendors), not DICOM codes. Ge-68 decays by electron capture; its positrons come from its
# Ga-68 daughter, hence Ga-68's fraction.
# fmt: off
RADIONUCLIDES = (
    Radionuclide("F-18",  "Fluorine",  Code("77004003",  "SCT", "^18^Fluorine"),  "C-111A1", 6586.2,    0.9673),
    Radionuclide("Ga-68", "Gallium",   Code("35337001",  "SCT", "^68^Gallium"),   "C-131A3", 4062.6,    0.8911),
    Radionuclide("C-11",  "Carbon",    Code("40565003",  "SCT", "^11^Carbon"),    "C-105A1", 1221.8,    0.9976),
    Radionuclide("O-15",  "Oxygen",    Code("129504001", "SCT", "^15^Oxygen"),    "C-B1038", 122.24,    0.9990),
    Radionuclide("N-13",  "Nitrogen",  Code("21576001",  "SCT", "^13^Nitrogen"),  "C-107A1", 597.9,     0.9982),
    Radionuclide("Zr-89", "Zirconium", Code("63360001",  "SCT", "^89^Zirconium"), "C-168A4", 282240.0,  0.2274),
    Radionuclide("Na-22", "Sodium",    Code("71633006",  "SCT", "^22^Sodium"),    "C-155A1", 8.2108e7,  0.9030),
    Radionuclide("Ge-68", "Germanium", Code("53315004",  "SCT", "^68^Germanium"), "C-128A2", 2.341e7,   0.8911),
    Radionuclide("Cu-64", "Copper",    Code("3932008",   "SCT", "^64^Copper"),    "C-127A",  45720.0,   0.1752),
    Radionuclide("Rb-82", "Rubidium",  Code("79197006",  "SCT", "^82^Rubidium"),  "C-159A2", 76.38,     0.9545),
    Radionuclide("I-124", "Iodine",    Code("40937006",  "SCT", "^124^Iodine"),   "C-114A5", 360806.0,  0.2280),
)
# fmt: on


def _spellings(nuclide):
    """Every accepted spelling of a nuclide, folded: F-18, F18, 18F, 18-F, Fluorine-18, ^18^Fluorine."""
    symbol, mass = nuclide.name.split("-")
    element = nuclide.element
    return {_fold(text) for text in (symbol + mass, mass + symbol, element + mass, mass + element)}


def _fold(text):
    return "".join(ch for ch in text.casefold() if ch.isalnum())


_BY_SPELLING = {spelling: nuclide for nuclide in RADIONUCLIDES for spelling in _spellings(nuclide)}


def radionuclide(name):
    """The radionuclide called ``name`` ("F-18", "f18", "18F", "Fluorine-18", "^18^Fluorine", ...)."""
    found = _BY_SPELLING.get(_fold(name)) if isinstance(name, str) else None
    if found is None:
        known = ", ".join(nuclide.name for nuclide in RADIONUCLIDES)
        raise MetadataError(f"isotope {name!r} is not known; dcmforge knows {known}")
    return found


def radionuclide_for_code(value, scheme):
    """The radionuclide with this code (current SCT or retired SRT), or None."""
    for nuclide in RADIONUCLIDES:
        if (value, scheme) == (nuclide.code.value, nuclide.code.scheme):
            return nuclide
        if value == nuclide.retired_value and scheme in RETIRED_SCHEMES:
            return nuclide
    return None


# -- PET units (PS3.16 CID 84) ----------------------------------------------------

# Units (PET Series; its defined terms) -> the MeasurementUnitsCodeSequence item's UCUM code and meaning.
PET_UNITS = {
    "CNTS": ("{counts}", "Counts"),
    "NONE": ("1", "no units"),
    "CM2": ("cm2", "Centimeter**2"),
    "CM2ML": ("cm2/ml", "Centimeter**2/milliliter"),
    "PCNT": ("%", "Percent"),
    "CPS": ("{counts}/s", "Counts per second"),
    "BQML": ("Bq/ml", "Becquerels/milliliter"),
    "MGMINML": ("mg/min/ml", "Milligrams/minute/milliliter"),
    "UMOLMINML": ("umol/min/ml", "Micromole/minute/milliliter"),
    "MLMING": ("ml/min/g", "Milliliter/minute/gram"),
    "MLG": ("ml/g", "Milliliter/gram"),
    "1CM": ("/cm", "/Centimeter"),
    "UMOLML": ("umol/ml", "Micromole/milliliter"),
    "PROPCNTS": ("{propcounts}", "Proportional to counts"),
    "PROPCPS": ("{propcounts}/s", "Proportional to counts per second"),
    "MLMINML": ("ml/min/ml", "Milliliter/minute/milliliter"),
    "MLML": ("ml/ml", "Milliliter/milliliter"),
    "GML": ("g/ml", "Grams/milliliter"),
    "STDDEV": ("{SD}", "Standard Deviations"),
}


# -- radiopharmaceuticals (PS3.16 CID 4021) ------------------------------------

_FDG = Code("35321007", "SCT", "Fluorodeoxyglucose F^18^")
# Folded free-text names -> code; what a user writes as "radiopharmaceutical".
RADIOPHARMACEUTICAL_CODES = {"fluorodeoxyglucose": _FDG, "fdg": _FDG, "18ffdg": _FDG, "f18fdg": _FDG}


def radiopharmaceutical_code(name):
    """The code of a radiopharmaceutical named in free text ("FDG", "Fluorodeoxyglucose"), or None."""
    return RADIOPHARMACEUTICAL_CODES.get(_fold(name)) if isinstance(name, str) else None


# -- patient orientation (NM/PET Patient Orientation, docs/iods.md 3) --

# Designators of retired SNOMED-RT codes; the J-PET converter used 99SDM for the same code values.
RETIRED_SCHEMES = ("SRT", "99SDM", "SNM3")

# concept -> (current code, retired SNOMED-RT code value)
ORIENTATION_CODES = {
    "recumbent": (Code("102538003", "SCT", "recumbent"), "F-10450"),
    "erect": (Code("C86043", "NCIt", "erect"), "F-10440"),
    "semi-erect": (Code("102539006", "SCT", "semi-erect"), "F-10460"),
    "supine": (Code("40199007", "SCT", "supine"), "F-10340"),
    "prone": (Code("1240000", "SCT", "prone"), "F-10310"),
    "headfirst": (Code("102540008", "SCT", "headfirst"), "F-10470"),
    "feet-first": (Code("102541007", "SCT", "feet-first"), "F-10480"),
}

# Retired code value -> the current code; the current codes map to themselves so a
# code's meaning can be filled in when a file gives only value and designator.
_RETIRED = {retired: code for code, retired in ORIENTATION_CODES.values()}
_RETIRED.update({nuclide.retired_value: nuclide.code for nuclide in RADIONUCLIDES})
_CURRENT = {(code.value, code.scheme): code for code, _ in ORIENTATION_CODES.values()}
_CURRENT.update({(nuclide.code.value, nuclide.code.scheme): nuclide.code for nuclide in RADIONUCLIDES})


def current_code(value, scheme):
    """The current code for a code value and designator dcmforge knows, else None.

    Retired SNOMED-RT codes (SRT, 99SDM) map to their SCT (or NCIt) successor.
    """
    if not isinstance(value, str) or not isinstance(scheme, str):
        return None
    if scheme in RETIRED_SCHEMES:
        return _RETIRED.get(value)
    return _CURRENT.get((value, scheme))


# PatientPosition -> (orientation, modifier, gantry relationship), docs/iods.md 3.
PATIENT_POSITIONS = {
    "HFS": ("recumbent", "supine", "headfirst"),
    "HFP": ("recumbent", "prone", "headfirst"),
    "FFS": ("recumbent", "supine", "feet-first"),
    "FFP": ("recumbent", "prone", "feet-first"),
}


def orientation_sequences(position):
    """PatientOrientationCodeSequence and PatientGantryRelationshipCodeSequence for HFS, HFP, FFS or FFP."""
    concepts = PATIENT_POSITIONS.get(position.strip().upper()) if isinstance(position, str) else None
    if concepts is None:
        raise MetadataError(
            f"patient position {position!r} cannot be written as PET orientation codes; "
            f"use one of {', '.join(PATIENT_POSITIONS)} or give PatientOrientationCodeSequence "
            "and PatientGantryRelationshipCodeSequence yourself"
        )
    orientation, modifier, gantry = (ORIENTATION_CODES[concept][0] for concept in concepts)
    return {
        "PatientOrientationCodeSequence": [
            {**orientation.item(), "PatientOrientationModifierCodeSequence": [modifier.item()]}
        ],
        "PatientGantryRelationshipCodeSequence": [gantry.item()],
    }


def position_of_sequences(dataset):
    """The PatientPosition (HFS, HFP, FFS, FFP) the orientation code sequences of ``dataset`` say, or None."""
    orientation = _first_item(dataset.get("PatientOrientationCodeSequence"))
    said = (
        _concept(orientation),
        _concept(_first_item(orientation.get("PatientOrientationModifierCodeSequence"))),
        _concept(_first_item(dataset.get("PatientGantryRelationshipCodeSequence"))),
    )
    for position, concepts in PATIENT_POSITIONS.items():
        if said == concepts:
            return position
    return None


def _first_item(sequence):
    return sequence[0] if isinstance(sequence, list) and sequence and isinstance(sequence[0], dict) else {}


def _concept(item):
    """The orientation concept ("supine", ...) a code item names, or None."""
    code = current_code(item.get("CodeValue"), item.get("CodingSchemeDesignator"))
    for name, (known, _) in ORIENTATION_CODES.items():
        if code == known:
            return name
    return None
