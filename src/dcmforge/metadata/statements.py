"""What only an image's maker knows, taken only where the input or the user says it: modality, units, corrections.

An emission image that nobody describes is written with the weakest true
statements (docs/iods.md 2): Units PROPCNTS, CorrectedImage empty,
DecayCorrection NONE, and a warning that names the key to set. The modality
comes from the user, the header, or the isotope; failing those, PET with a
warning (``modality_of``).
"""

from ..dicom.values import text_value, values_of
from ..iods import MODALITY_SPELLINGS
from ..iods.codes import CORRECTIONS, UNSTATED_UNITS, correction_term, radionuclide, radionuclide_for_code, units_term
from ..iods.validate import problem

# The friendly keys of this module (friendly.FRIENDLY_KEYS lists them for users).
UNITS_KEY = "units"
CORRECTIONS_KEY = "corrections"
CORRECTION_NAMES = "attenuation, scatter, randoms, normalisation, decay, dead time, ... or the terms ATTN, SCAT, RAN"

# What an emission image's metadata leaves unsaid: (the key to set, what is written instead).
UNSTATED = (
    (UNITS_KEY, "Units",
     f"not in the input or the metadata: Units {UNSTATED_UNITS} (proportional to counts), not SUV-ready; "
     'set units = "BQML" if the values are activity concentrations in Bq/ml'),
    (CORRECTIONS_KEY, "CorrectedImage",
     "not in the input or the metadata: CorrectedImage lists none (a PET's DecayCorrection NONE); "
     'set corrections = ["attenuation", "scatter", "decay", ...] to list those applied'),
)  # fmt: skip


def apply_units(value, resolved, problems):
    """units = "BQML" (or "Bq/ml", "counts", ...) -> Units; it must agree with a Units given as well."""
    term = units_term(value)
    if term is None:
        problems.append(problem(UNITS_KEY, f"{value!r} is no unit dcmforge knows; write a Units term such as BQML, "
                                           "CNTS, CPS or PROPCNTS, or its UCUM code (Bq/ml, {counts})"))  # fmt: skip
    elif resolved.get("Units") not in (None, term):
        problems.append(problem(UNITS_KEY, f"{value!r} disagrees with Units {resolved['Units']!r} given as well"))
    else:
        resolved["Units"] = term


def apply_corrections(value, resolved, problems):
    """corrections = ["attenuation", "scatter", ...] -> CorrectedImage terms; an unknown name is an error."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        problems.append(problem(CORRECTIONS_KEY, f"needs a list of corrections ({CORRECTION_NAMES}), not {value!r}"))
        return
    terms = set()
    for name in names:
        term = correction_term(name)
        if term is None:
            known = ", ".join(CORRECTIONS)
            problems.append(problem(CORRECTIONS_KEY, f"{name!r} names no correction; use {CORRECTION_NAMES} ({known})"))
            return
        terms.add(term)
    ordered = [term for term in CORRECTIONS if term in terms]
    given = resolved.get("CorrectedImage")
    if given is not None and set(values_of(given)) != terms:
        problems.append(problem(CORRECTIONS_KEY, f"{ordered} disagrees with CorrectedImage {given!r} given as well"))
        return
    resolved["CorrectedImage"] = ordered


def settle_decay_correction(resolved, problems):
    """DECY listed and DecayCorrection said are one fact: each given alone brings the other.

    Decay correction stated without its reference event means the usual one,
    the acquisition start (START); DecayCorrection START or ADMIN lists DECY.
    """
    corrections = [term for term in values_of(resolved.get("CorrectedImage")) if isinstance(term, str)]
    decay = text_value(resolved, "DecayCorrection")
    if "DECY" in corrections and decay is None:
        resolved["DecayCorrection"] = "START"
        message = "START: decay correction stated, to the acquisition start"
        problems.append(problem("DecayCorrection", message, level="note"))
    elif decay in ("START", "ADMIN") and "CorrectedImage" not in resolved:
        resolved["CorrectedImage"] = ["DECY"]


def unstated(resolved):
    """[(key to set, warning)] for what an emission image's resolved metadata leaves unsaid (units, corrections)."""
    said = set(resolved) | ({"CorrectedImage"} if "DecayCorrection" in resolved else set())
    return [(key, text) for key, keyword, text in UNSTATED if keyword not in said]


def modality_of(meta, source):
    """(modality, warning or None) for an input whose metadata (the header's under the user's) is ``meta``.

    The metadata's ``modality`` decides (the header's or the user's); else the
    isotope: a positron emitter is PET, a single-photon one NM. An input that
    says neither is written as PET with a warning naming the assumption and
    the flag. ``source`` names the input in that warning.
    """
    said = meta.get("modality")
    if isinstance(said, str) and MODALITY_SPELLINGS.get(said.strip().upper()):
        return MODALITY_SPELLINGS[said.strip().upper()], None
    nuclide = _nuclide(meta)
    if nuclide is not None:
        return ("PT" if nuclide.emits_positrons else "NM"), None
    warning = (
        f"{source}: neither its header nor the metadata says PET or NM (no modality, no isotope): "
        "written as PET (PT); say --modality NM or PT (modality = in the metadata) if that is wrong"
    )
    return "PT", warning


def _nuclide(meta):
    """The radionuclide the metadata names (isotope, or the code in RadiopharmaceuticalInformationSequence), or None."""
    if "isotope" in meta:
        try:
            return radionuclide(meta["isotope"])
        except ValueError:  # an unknown name is reported when the metadata is resolved
            return None
    for item in values_of(meta.get("RadiopharmaceuticalInformationSequence")):
        codes = values_of(item.get("RadionuclideCodeSequence")) if isinstance(item, dict) else []
        code = codes[0] if codes and isinstance(codes[0], dict) else {}
        nuclide = radionuclide_for_code(code.get("CodeValue"), code.get("CodingSchemeDesignator"))
        if nuclide is not None:
            return nuclide
    return None
