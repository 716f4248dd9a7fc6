"""Minimal image descriptions (IODs) as data: what a PET or CT image must hold.

Each description is a flat tuple of ``Attribute`` rows (see ``model``), written
module by module as PS3.3 writes them: ``common`` (modules every image has),
``pet`` (PET Image, A.21), ``ct`` (CT Image, A.3), ``enhanced_pet`` (Enhanced
PET Image, A.56) with its ``functional_groups``, ``nm`` (NM Image, A.5: one
multi-frame file by design, whatever ``multiframe`` says). ``codes`` holds the coded
concepts users name in words; ``validate`` checks a dataset against a description.
This module chooses a description and answers questions about it.
"""

from importlib import import_module

from ..dicom.values import plain_copy
from ..errors import DcmforgeError
from .model import SOURCES, TYPES, by_keyword, per_table

__all__ = [
    "DESCRIPTIONS", "MODALITY_SPELLINGS", "SOURCES", "TYPES", "attribute", "defaults", "defaults_of",
    "description_for", "keywords_from",
]  # fmt: skip

# -- choosing a description ----------------------------------------------------------

# (modality, multiframe) -> (module, name) of its description; a module is imported when its description is
# first asked for, so a PET conversion does not build the CT and Enhanced PET tables.
DESCRIPTIONS = {
    ("PT", False): ("pet", "PET_IMAGE"),
    ("CT", False): ("ct", "CT_IMAGE"),
    ("PT", True): ("enhanced_pet", "ENHANCED_PET_IMAGE"),
    ("NM", False): ("nm", "NM_IMAGE"),
    ("NM", True): ("nm", "NM_IMAGE"),
}

# How a modality may be spelt (upper case) -> its DICOM Modality code.
MODALITY_SPELLINGS = {"PT": "PT", "PET": "PT", "CT": "CT", "NM": "NM", "SPECT": "NM"}


def description_for(modality, multiframe=False):
    """The description of the image dcmforge writes for ``modality`` ("PT", "CT" or "NM")."""
    code = MODALITY_SPELLINGS.get(modality.strip().upper()) if isinstance(modality, str) else None
    if code is None:
        raise DcmforgeError(f"modality {modality!r}: dcmforge describes PT (or PET), CT and NM (or SPECT) images")
    where = DESCRIPTIONS.get((code, bool(multiframe)))
    if where is None:
        raise DcmforgeError(
            f"multi-frame {code} images are not described (only Enhanced PET is); write single-frame images"
        )
    module, name = where
    return getattr(import_module(f"{__name__}.{module}"), name)


def defaults(description):
    """keyword -> value for every attribute with a default (a fresh copy: callers may change it)."""
    return defaults_of(description.attributes)


def defaults_of(rows):
    """keyword -> value for every row with a default, e.g. the rows of a functional group's item."""
    return {row.keyword: plain_copy(row.default) for row in rows if row.default is not None}


def attribute(description, keyword):
    """The row of ``keyword`` in ``description``, or None."""
    return by_keyword(description.attributes).get(keyword)


def keywords_from(description, *sources):
    """The keywords whose value comes from one of ``sources`` (e.g. "slice"), in description order."""
    return per_table(description.attributes, _keywords_from, sources)  # asked for every series


def _keywords_from(rows, sources):
    return tuple(row.keyword for row in rows if row.source in sources)
