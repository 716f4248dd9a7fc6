"""The model of an image description: the row types and the building blocks its tables are written with.

A description is a flat tuple of ``Attribute`` rows, grouped by module as
PS3.3 groups them. Each row says for one attribute:

- its type: "1" (present, with a value), "2" (present, may be empty), "3"
  (optional), "1C"/"2C" (as 1 or 2 when its ``condition`` holds);
- its module (the specialising module when two modules name it, e.g.
  SeriesDate is Type 1 in PET Series although Type 3 in General Series);
- where its value comes from (``source``):
    "default"  a fixed value dcmforge writes unless the user's metadata sets one
    "user"     the user's metadata (``default`` is used when they give none)
    "uid"      a UID dcmforge generates once per series (or study) unless given
    "clock"    the write time, unless the user's metadata gives one
    "series"   derived once per series from the volume and its geometry
    "slice"    derived for every slice (position, scaling, pixels, frame timing)
- allowed values per value position (``enum``): enumerated values (anything
  else is an error) or defined terms (anything else is a warning, as
  dciodvfy does);
- for sequences, the rows of one item (``items``).

Tables are written one row per line between ``# fmt: off`` and ``# fmt: on``,
columns aligned, so that they read as PS3.3's module tables do; enumerations
that several rows share are named once. Tags are not written here: they come
from the tag table (``dcmforge.dicom.tags``).
Cross-attribute checks (HighBit = BitsStored - 1, pixel data length, ...)
are ``Rule`` rows of the description.
"""

from collections.abc import Callable
from typing import NamedTuple

from ..dicom.values import text_value

SOURCES = ("default", "user", "uid", "clock", "series", "slice")
TYPES = ("1", "1C", "2", "2C", "3")


class Values(NamedTuple):
    """Allowed values at one value position (1-based), or at every position when ``position`` is None."""

    kind: str  # "enumerated" (others are errors) or "defined" (others are warnings)
    allowed: tuple
    position: int | None = None


def enumerated(*allowed, position=None):
    return Values("enumerated", allowed, position)


def defined(*allowed, position=None):
    return Values("defined", allowed, position)


class Condition(NamedTuple):
    """When a 1C/2C attribute is required: ``test(dataset)``; ``text`` says it in words.

    ``otherwise`` is "absent" when the standard (and dciodvfy) forbid the
    attribute while the condition does not hold, "may be present" if not.
    ``scope`` is what ``test`` looks at: "level", the dataset or item that
    holds the attribute, or "image", the whole image (for attributes inside a
    functional group item that depend on, say, ImageType).
    """

    text: str
    test: Callable[[dict], bool]
    otherwise: str = "absent"
    scope: str = "level"


class Attribute(NamedTuple):
    keyword: str
    type: str
    module: str
    source: str
    default: object = None
    enum: tuple = ()  # Values rows
    condition: Condition | None = None
    items: tuple = ()  # Attribute rows of one sequence item
    vm: str | None = None  # narrower than the tag table's VM, where a module says so
    max_items: int | None = None


class Rule(NamedTuple):
    """A check across attributes: ``check(dataset)`` yields (keyword, level, message)."""

    text: str
    check: Callable[[dict], list]


class Description(NamedTuple):
    name: str
    modality: str
    sop_class_uid: str
    attributes: tuple
    rules: tuple


# (id(table), derive, arguments) -> (table, what derive made of it). A description's tables are built once and
# kept, so what is derived from one is too; the table is kept with it, so a new one at a reused id is not taken
# for the old.
_derived = {}


def per_table(rows, derive, *arguments):
    """derive(rows, *arguments), made once per table (a description's attributes or a sequence's items)."""
    key = (id(rows), derive, arguments)
    known = _derived.get(key)
    if known is None or known[0] is not rows:
        if len(_derived) >= 1024:  # tables made on the fly (tests) do not pile up
            _derived.clear()
        known = _derived[key] = (rows, derive(rows, *arguments))
    return known[1]


def by_keyword(rows):
    """keyword -> row of a table, made once per table."""
    return per_table(rows, _keyword_map)


def _keyword_map(rows):
    return {row.keyword: row for row in rows}


# -- building blocks --------------------------------------------------------------


def module(name, *rows):
    """Rows written as (keyword, type, source, **details) with the module name filled in."""
    return tuple(Attribute(keyword, kind, name, source, **details) for keyword, kind, source, details in rows)


def row(keyword, kind, source, enum=(), **details):
    """One attribute of a table: keyword, type, source, then its details; ``enum`` is one ``Values`` or a tuple."""
    return (keyword, kind, source, {**details, "enum": (enum,) if isinstance(enum, Values) else enum})


def specialise(common, specific):
    """``common`` rows with the rows of ``specific`` put in place of those with the same keyword.

    This is how the standard specialises a module: PET Series makes SeriesDate
    Type 1, PET Image makes BitsAllocated enumerated 16, and so on.
    """
    replaced = {row.keyword for row in specific}
    return tuple(row for row in common if row.keyword not in replaced) + specific


def without(rows, *keywords):
    return tuple(row for row in rows if row.keyword not in keywords)


def says(keyword, word):
    return lambda dataset: text_value(dataset, keyword) == word


# Code Sequence Macro conditions (PS3.3 Table 8.8-1).
has_short_code_value = Condition(
    "LongCodeValue and URNCodeValue are absent",
    lambda item: "LongCodeValue" not in item and "URNCodeValue" not in item,
)
has_no_urn_code_value = Condition(
    "URNCodeValue is absent", lambda item: "URNCodeValue" not in item, otherwise="may be present"
)
has_context_identifier = Condition("ContextIdentifier is present", lambda item: "ContextIdentifier" in item)


def code_item(module_name, meaning_type="1"):
    """The rows of one Code Sequence Macro item (PS3.3 Table 8.8-1), as far as dcmforge writes them."""
    return module(
        module_name,
        row("CodeValue", "1C", "user", condition=has_short_code_value),
        row("CodingSchemeDesignator", "1C", "user", condition=has_no_urn_code_value),
        row("CodeMeaning", meaning_type, "user"),
        row("MappingResource", "1C", "user", condition=has_context_identifier),
        row("ContextGroupVersion", "1C", "user", condition=has_context_identifier),
    )
