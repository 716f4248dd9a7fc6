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
    name: str  # "F-18", "Tc-99m": symbol, hyphen, mass number (m: metastable)
    element: str  # "Fluorine"
    code: Code
    retired_value: str  # the SNOMED-RT code value (SRT) that old files carry, "" for none
    half_life: float  # seconds
    positron_fraction: float
    photopeaks: tuple = ()  # keV: the gamma or x-ray lines a single-photon camera's energy windows centre on

    @property
    def emits_positrons(self):
        """Whether PET images it: any positron branch (Y-90's internal pair production included)."""
        return self.positron_fraction > 0


# Codes: PS3.16 CID 4020 "PET Radionuclide" (all of it) and the SPECT and therapy isotopes of
# CID 18 "Radiopharmaceutical Isotope" that are imaged; SCT codes where the standard has one,
# else its DCM (or, for Ho-166, NCIt) code. Retired SNOMED-RT values as the 2020 edition lists
# them ("" where it has none). Half-lives and positron fractions are nuclear data, not DICOM:
# the first eleven rows keep the typical vendor values of docs/iods.md 4; the others are from
# ICRP Publication 107 (2008). Ge-68 decays by electron capture; its positrons come from its
# Ga-68 daughter, hence Ga-68's fraction. Y-90's positrons are internal pair production
# (3.186e-5 per decay, Selwyn et al. 2007); ICRP 107 lists none.
# Photopeaks are the lines single-photon imaging uses (a positron emitter's 511 keV annihilation
# photons are not listed), from NNDC NuDat 3 (ENSDF), to 0.1 keV. Tl-201's main peak is the
# mercury K x-rays (68.9-80.3 keV), given at K-alpha1; Y-90 has only a bremsstrahlung continuum.
# fmt: off
RADIONUCLIDES = (
    Radionuclide("F-18",   "Fluorine",   Code("77004003",  "SCT", "^18^Fluorine"),    "C-111A1", 6586.2,    0.9673),
    Radionuclide("Ga-68",  "Gallium",    Code("35337001",  "SCT", "^68^Gallium"),     "C-131A3", 4062.6,    0.8911),
    Radionuclide("C-11",   "Carbon",     Code("40565003",  "SCT", "^11^Carbon"),      "C-105A1", 1221.8,    0.9976),
    Radionuclide("O-15",   "Oxygen",     Code("129504001", "SCT", "^15^Oxygen"),      "C-B1038", 122.24,    0.9990),
    Radionuclide("N-13",   "Nitrogen",   Code("21576001",  "SCT", "^13^Nitrogen"),    "C-107A1", 597.9,     0.9982),
    Radionuclide("Zr-89",  "Zirconium",  Code("63360001",  "SCT", "^89^Zirconium"),   "C-168A4", 282240.0,  0.2274),
    Radionuclide("Na-22",  "Sodium",     Code("71633006",  "SCT", "^22^Sodium"),      "C-155A1", 8.2108e7,  0.9030),
    Radionuclide("Ge-68",  "Germanium",  Code("53315004",  "SCT", "^68^Germanium"),   "C-128A2", 2.341e7,   0.8911),
    Radionuclide("Cu-64",  "Copper",     Code("3932008",   "SCT", "^64^Copper"),      "C-127A2", 45720.0,   0.1752),
    Radionuclide("Rb-82",  "Rubidium",   Code("79197006",  "SCT", "^82^Rubidium"),    "C-159A2", 76.38,     0.9545),
    Radionuclide("I-124",  "Iodine",     Code("40937006",  "SCT", "^124^Iodine"),     "C-114A5", 360806.0,  0.2280),
    # the rest of CID 4020
    Radionuclide("O-14",   "Oxygen",     Code("424875009", "SCT", "^14^Oxygen"),      "C-1018C", 70.606,    0.9988),
    Radionuclide("K-38",   "Potassium",  Code("423764008", "SCT", "^38^Potassium"),   "C-135A4", 458.16,    0.9947),
    Radionuclide("Sc-43",  "Scandium",   Code("126605",    "DCM", "^43^Scandium"),    "",        14007.6,   0.8802),
    Radionuclide("Sc-44",  "Scandium",   Code("126600",    "DCM", "^44^Scandium"),    "",        14292.0,   0.9435),
    Radionuclide("Ti-45",  "Titanium",   Code("75696008",  "SCT", "^45^Titanium"),    "C-166A2", 11088.0,   0.8482),
    Radionuclide("Mn-51",  "Manganese",  Code("126601",    "DCM", "^51^Manganese"),   "",        2772.0,    0.9709),
    Radionuclide("Fe-52",  "Iron",       Code("69089000",  "SCT", "^52^Iron"),        "C-130A1", 29790.0,   0.5547),
    Radionuclide("Mn-52",  "Manganese",  Code("37225000",  "SCT", "^52^Manganese"),   "C-149A1", 483062.0,  0.2966),
    Radionuclide("Mn-52m", "Manganese",  Code("126607",    "DCM", "^52m^Manganese"),  "",        1266.0,    0.9658),
    Radionuclide("Cu-60",  "Copper",     Code("425364008", "SCT", "^60^Copper"),      "C-127A4", 1422.0,    0.9216),
    Radionuclide("Cu-61",  "Copper",     Code("71425003",  "SCT", "^61^Copper"),      "C-127A1", 11998.8,   0.6144),
    Radionuclide("Cu-62",  "Copper",     Code("422934004", "SCT", "^62^Copper"),      "C-127A5", 580.38,    0.9781),
    Radionuclide("Zn-62",  "Zinc",       Code("65054007",  "SCT", "^62^Zinc"),        "C-141A1", 33069.6,   0.08388),
    Radionuclide("Ga-66",  "Gallium",    Code("79477007",  "SCT", "^66^Gallium"),     "C-131A1", 34164.0,   0.5526),
    Radionuclide("As-70",  "Arsenic",    Code("126602",    "DCM", "^70^Arsenic"),     "",        3156.0,    0.9013),
    Radionuclide("As-72",  "Arsenic",    Code("2705002",   "SCT", "^72^Arsenic"),     "C-115A2", 93600.0,   0.8790),
    Radionuclide("Se-73",  "Selenium",   Code("87437000",  "SCT", "^73^Selenium"),    "C-116A2", 25740.0,   0.6540),
    Radionuclide("Br-75",  "Bromine",    Code("17910003",  "SCT", "^75^Bromine"),     "C-113A1", 5802.0,    0.7295),
    Radionuclide("Br-76",  "Bromine",    Code("79523006",  "SCT", "^76^Bromine"),     "C-113A2", 58320.0,   0.5505),
    Radionuclide("Br-77",  "Bromine",    Code("86521004",  "SCT", "^77^Bromine"),     "C-113A3", 205330.0,  0.00741),
    Radionuclide("Y-86",   "Yttrium",    Code("10738001",  "SCT", "^86^Yttrium"),     "C-162A3", 53064.0,   0.3189),
    Radionuclide("Nb-90",  "Niobium",    Code("126603",    "DCM", "^90^Niobium"),     "",        52560.0,   0.5373),
    Radionuclide("Y-90",   "Yttrium",    Code("14691008",  "SCT", "^90^Yttrium"),     "C-162A7", 230760.0,  3.186e-5),
    Radionuclide("Tc-94m", "Technetium", Code("424079002", "SCT", "^94m^Technetium"), "C-163AA", 3120.0,    0.7015),
    Radionuclide("Tb-152", "Terbium",    Code("126606",    "DCM", "^152^Terbium"),    "",        63000.0,   0.1958),
    # imaged isotopes of CID 18 (SPECT, planar, therapy): no positrons
    Radionuclide("Tc-99m", "Technetium", Code("72454006",  "SCT", "^99m^Technetium"), "C-163A8", 21654.0,   0.0, (140.5,)),
    Radionuclide("I-123",  "Iodine",     Code("21572004",  "SCT", "^123^Iodine"),     "C-114A4", 47772.0,   0.0, (159.0,)),
    Radionuclide("I-125",  "Iodine",     Code("68630002",  "SCT", "^125^Iodine"),     "C-114A6", 5.13216e6, 0.0, (35.5,)),
    Radionuclide("I-131",  "Iodine",     Code("1368003",   "SCT", "^131^Iodine"),     "C-114B1", 692988.0,  0.0, (364.5,)),
    Radionuclide("In-111", "Indium",     Code("56609000",  "SCT", "^111^Indium"),     "C-145A4", 242326.0,  0.0, (171.3, 245.4)),
    Radionuclide("In-113m", "Indium",    Code("48895003",  "SCT", "^113m^Indium"),    "C-145A5", 5968.44,   0.0, (391.7,)),
    Radionuclide("Ga-67",  "Gallium",    Code("2008008",   "SCT", "^67^Gallium"),     "C-131A2", 281768.0,  0.0, (93.3, 184.6, 300.2)),
    Radionuclide("Tl-201", "Thallium",   Code("60057003",  "SCT", "^201^Thallium"),   "C-138A9", 262483.0,  0.0, (70.8, 167.4)),
    Radionuclide("Xe-127", "Xenon",      Code("27081007",  "SCT", "^127^Xenon"),      "C-172A5", 3.14496e6, 0.0, (172.1, 203.0, 375.0)),
    Radionuclide("Xe-133", "Xenon",      Code("80751004",  "SCT", "^133^Xenon"),      "C-172A8", 452995.0,  0.0, (81.0,)),
    Radionuclide("Kr-81m", "Krypton",    Code("61716009",  "SCT", "^81m^Krypton"),    "C-173A5", 13.1,      0.0, (190.5,)),
    Radionuclide("Co-57",  "Cobalt",     Code("27054007",  "SCT", "^57^Cobalt"),      "C-144A3", 2.34783e7, 0.0, (122.1,)),
    Radionuclide("Cr-51",  "Chromium",   Code("52745005",  "SCT", "^51^Chromium"),    "C-129A2", 2.3935e6,  0.0, (320.1,)),
    Radionuclide("Se-75",  "Selenium",   Code("43239002",  "SCT", "^75^Selenium"),    "C-116A3", 1.03489e7, 0.0, (136.0, 264.7)),
    Radionuclide("Lu-177", "Lutetium",   Code("447553000", "SCT", "^177^Lutetium"),   "C-101ED", 574301.0,  0.0, (112.9, 208.4)),
    Radionuclide("Sm-153", "Samarium",   Code("419804008", "SCT", "^153^Samarium"),   "C-B1134", 167400.0,  0.0, (103.2,)),
    Radionuclide("Ho-166", "Holmium",    Code("C1943",     "NCIt", "^166^Holmium"),   "",        96480.0,   0.0, (80.6,)),
    Radionuclide("Re-186", "Rhenium",    Code("395865006", "SCT", "^186^Rhenium"),    "C-11906", 321261.0,  0.0, (137.2,)),
    Radionuclide("Re-188", "Rhenium",    Code("423578007", "SCT", "^188^Rhenium"),    "C-1018D", 61214.4,   0.0, (155.0,)),
    Radionuclide("Ra-223", "Radium",     Code("24853006",  "SCT", "^223^Radium"),     "C-136A2", 987552.0,  0.0, (269.5,)),
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
        if nuclide.retired_value and value == nuclide.retired_value and scheme in RETIRED_SCHEMES:
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


# Other spellings of a unit that people and headers write (lower case, no blanks); the terms, their
# UCUM codes and meanings above are accepted as they are.
_UNITS_SPELLINGS = {"bq/cc": "BQML", "bq/cm3": "BQML", "counts": "CNTS", "counts/s": "CPS", "percent": "PCNT",
                    "unitless": "NONE"}  # fmt: skip


def _fold_unit(text):
    return "".join(text.casefold().split())


_UNITS_BY_SPELLING = {
    **{_fold_unit(spelling): term for term, names in PET_UNITS.items() for spelling in (term, *names)},
    **_UNITS_SPELLINGS,
}

# What an image's values are when neither the input nor the user says (docs/iods.md 2): every
# emission reconstruction's values are at least proportional to the counts detected.
UNSTATED_UNITS = "PROPCNTS"


def units_term(text):
    """The Units (0054,1001) defined term ``text`` names ("BQML", "Bq/ml", "bq/cc", "counts", ...), or None."""
    return _UNITS_BY_SPELLING.get(_fold_unit(text)) if isinstance(text, str) else None


# -- corrections (CorrectedImage, PS3.3 C.8.9.1.1.3 for PET, C.8.4.9.1.3 for NM) ----------------

# Defined term -> the words that name it (folded, matched inside a longer name such as
# "measured attenuation correction"); the more specific words first.
# fmt: off
CORRECTIONS = {
    "DECY": ("decay",),
    "ATTN": ("attenuation", "attn"),
    "SCAT": ("scatter",),
    "RAN":  ("randoms", "random"),
    "NORM": ("normalisation", "normalization", "detectornormalization", "norm"),
    "DTIM": ("deadtime",),
    "PMOT": ("patientmotion",),
    "MOTN": ("gantrymotion",),
    "CLN":  ("countloss",),
    "RADL": ("radialsampling", "arccorrect"),
    "DCAL": ("sensitivitycalibrat", "calibrat"),
    "UNIF": ("uniformity", "flood"),
    "COR":  ("centreofrotation", "centerofrotation"),
    "NCO":  ("noncircularorbit",),
    "NRGY": ("energy",),
    "LIN":  ("linearity",),
}
# fmt: on


def correction_term(name):
    """The CorrectedImage term a correction's name says ("ATTN", "attenuation", "3D scatter correction"), or None."""
    if not isinstance(name, str):
        return None
    term = name.strip().upper()
    if term in CORRECTIONS:
        return term
    folded = _fold(name)
    for term, words in CORRECTIONS.items():
        if any(word in folded for word in words):
            return term
    return None


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
_RETIRED.update({nuclide.retired_value: nuclide.code for nuclide in RADIONUCLIDES if nuclide.retired_value})
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
