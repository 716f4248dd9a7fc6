"""Check a dataset against its image description before a byte is written.

``validate`` returns every problem at once, each naming module, keyword, tag
and type; ``check`` raises ``ValidationError`` when any of them is an error.
Levels follow dciodvfy: a missing or empty required attribute, a value
outside its enumerated values, a wrong value count or a value its VR cannot
hold is an "error"; a value that is not one of the defined terms (and a few
plausibility checks, such as a patient size that looks like centimetres) is a
"warning". Resolving a metadata file adds a third level, "note": what dcmforge
did with a value and why (a retired code replaced, a meaning filled in).

Keywords inside sequences are written as paths with 1-based item numbers:
``RadiopharmaceuticalInformationSequence[1].RadionuclideCodeSequence[1].CodeValue``.
"""

import functools
from typing import NamedTuple

from ..dicom import tags
from ..dicom.encode import encode_element, entry_for_key, with_character_set
from ..dicom.values import is_empty, values_of
from ..dicom.vr import vrs_of_kind
from ..errors import EncodingError, ValidationError
from .model import by_keyword, per_table

# VRs whose value is one stream (VM is always 1) or a sequence: no value count to check.
_UNCOUNTED_VRS = vrs_of_kind("words", "bytes", "sequence") | {"OB or OW", "US or OW"}


# The levels a Problem has, most serious first; only "error" stops a write.
LEVELS = ("error", "warning", "note")


class Problem(NamedTuple):
    module: str | None
    keyword: str
    tag: int | None
    type: str | None
    message: str
    level: str = "error"  # one of LEVELS

    def __str__(self):
        where = self.keyword
        if self.tag is not None:
            where += f" {tags.format_tag(self.tag)}"
        details = [f"type {self.type}"] if self.type else []
        if self.module:
            details.append(self.module)
        if details:
            where += f" ({', '.join(details)})"
        return f"{self.level}: {where}: {self.message}"


def problem(keyword, message, row=None, level="error"):
    """A Problem about ``keyword`` (a path is allowed); module and type come from its description row."""
    leaf = keyword.rsplit(".", 1)[-1]
    try:
        tag = tags.tag_of(leaf)
    except EncodingError:
        tag = None
    return Problem(row.module if row else None, keyword, tag, row.type if row else None, message, level)


def validate(dataset, description, encoded=frozenset()):
    """Every problem of ``dataset`` (one image's keyword -> value dict) against ``description``.

    encoded: top-level keys whose values the caller has encoded already (a HeaderTemplate's shared
    elements): their encoding is not tried again, every other check is made.
    """
    effective, codec, problems = _as_encoded(dataset, description.attributes)
    problems += _level_problems(effective, description.attributes, "", codec, effective, encoded, _SETTLED)
    for rule in description.rules:
        for keyword, level, message in rule.check(effective):
            problems.append(problem(keyword, message, _row_at(description.attributes, keyword), level))
    return problems


def check(dataset, description, encoded=frozenset()):
    """Raise ValidationError (errors first, then the rest) if ``dataset`` has an error; else return the rest.

    encoded: as for validate."""
    problems = sorted(validate(dataset, description, encoded), key=lambda found: LEVELS.index(found.level))
    if problems and problems[0].level == "error":
        raise ValidationError(problems)
    return problems


def element_problems(dataset):
    """Value-level problems only (VR, value count, person-name form), for data not yet merged into an image."""
    effective, codec, problems = _as_encoded(dataset, ())
    return problems + _elements(effective, (), "", codec, effective)


# What _as_encoded settles: it adds SpecificCharacterSet whenever a text needs it, so where it is absent its
# condition (a text outside ASCII) does not hold; not asked again (a walk of the whole image).
_SETTLED = frozenset({"SpecificCharacterSet"})


def _as_encoded(dataset, rows):
    """(dataset as the encoder writes it, its text codec, problems): SpecificCharacterSet added when needed."""
    try:
        effective, codec = with_character_set(dataset)
    except EncodingError as error:
        return dataset, "utf-8", [problem("SpecificCharacterSet", error.reason, _row_of(rows, "SpecificCharacterSet"))]
    return effective, codec, []


def _row_of(rows, keyword):
    for row in rows:
        if row.keyword == keyword:
            return row
    return None


def _row_at(rows, path):
    """The description row of a keyword path such as "A[1].B", or None."""
    row = None
    for step in path.split("."):
        row = _row_of(rows, step.split("[", 1)[0])
        if row is None:
            return None
        rows = row.items
    return row


def _level_problems(container, rows, path, codec, context, encoded=frozenset(), settled=frozenset()):
    """Problems of one dataset level: its description rows, then every element it holds.

    encoded: the keys of ``container`` whose values (items included) are known to encode; settled: those
    whose absence is known to be right."""
    found = []
    quiet = per_table(rows, _quiet_keywords)
    for row in rows:
        if row.keyword in container:
            if row.keyword not in quiet:
                found += _row_problems(container, row, path, context)
        elif row.type != "3" and row.keyword not in settled:  # an absent Type 3 attribute is never a problem
            found += _row_problems(container, row, path, context)
    found += _elements(container, rows, path, codec, context, encoded)
    return found


def _quiet_keywords(rows):
    """The keywords whose row no present value can fail: Type 2 or 3, no condition, no enumeration, no item limit."""
    return frozenset(
        row.keyword
        for row in rows
        if row.type in ("2", "3") and row.condition is None and not row.enum and row.max_items is None
    )


def _row_problems(container, row, path, context):
    condition = row.condition
    if row.keyword not in container:
        if row.type in ("1", "2") or (row.type in ("1C", "2C") and _holds(condition, container, context)):
            because = f" (required when {condition.text})" if condition else ""
            return [problem(path + row.keyword, f"missing{because}", row)]
        return ()
    if condition is not None and condition.otherwise == "absent" and not _holds(condition, container, context):
        return [problem(path + row.keyword, f"must not be present: it is allowed only when {condition.text}", row)]
    value = container[row.keyword]
    if is_empty(value):
        if row.type in ("1", "1C"):
            return [problem(path + row.keyword, f"empty; Type {row.type} needs a value", row)]
        return ()
    if not row.enum and row.max_items is None:
        return ()
    return _value_problems(value, row, path + row.keyword)


def _holds(condition, container, context):
    """True when the row's condition holds (a row without one always does); asked only when it matters."""
    return condition is None or condition.test(context if condition.scope == "image" else container)


def _value_problems(value, row, name):
    singles = values_of(value)
    found = []
    for allowed in row.enum:
        positions = [allowed.position] if allowed.position else range(1, len(singles) + 1)
        for position in positions:
            if position > len(singles) or _is_allowed(singles[position - 1], allowed.allowed):
                continue
            shown = ", ".join(str(a) for a in allowed.allowed)
            which = f"value {position} " if len(singles) > 1 or allowed.position else ""
            if allowed.kind == "enumerated":
                found.append(problem(name, f"{which}{singles[position - 1]!r} is not one of {shown}", row))
            else:
                message = f"{which}{singles[position - 1]!r} is not a defined term ({shown})"
                found.append(problem(name, message, row, "warning"))
    if row.max_items is not None and len(singles) > row.max_items:
        found.append(problem(name, f"holds {len(singles)} items; at most {row.max_items} allowed", row))
    return found


def _is_allowed(single, allowed):
    if _all_text(allowed):
        return isinstance(single, str) and single.strip() in allowed
    try:
        return float(single) in allowed
    except (TypeError, ValueError, OverflowError):
        return False


@functools.lru_cache(maxsize=1024)
def _all_text(allowed):
    return all(isinstance(a, str) for a in allowed)


def _elements(container, rows, path, codec, context, encoded=frozenset()):
    """VR, value count and sequence shape of every element of one level (``rows`` its description rows);
    items are checked in turn."""
    found = []
    by_name, one_fits = by_keyword(rows), per_table(rows, _one_value_fits)
    for key, value in container.items():
        kind = type(value)
        if key in one_fits and key in encoded and (kind is int or kind is float or (kind is str and value)):
            continue  # one plain value the encoder took, where one is allowed: nothing left to check
        keyword, entry = _entry(key)
        row = by_name.get(keyword)
        if entry is not None and entry.vr != "SQ":
            # In an item known to encode, an ambiguous VR is still tried: the image's values choose it here.
            encode = key not in encoded or (encoded is container and " or " in entry.vr)
            found += _single_element_problems(key, value, entry, row, path + str(keyword), codec, context, encode)
        elif entry is None:
            found.append(problem(path + str(keyword), "not a DICOM keyword or tag dcmforge knows", row))
        else:
            found += _sequence_problems(value, row, path + str(keyword), codec, context, key in encoded)
    return found


def _one_value_fits(rows):
    """The keywords of a table whose one plain value (a number, a text) has only its count to check once it
    encodes, and whose count may be 1: not a sequence, not PN (a name's form is checked), and of one VR (an
    ambiguous one is chosen by the image's values)."""
    fits = set()
    for row in rows:
        entry = _entry(row.keyword)[1]
        if entry is not None and entry.vr not in ("SQ", "PN") and " or " not in entry.vr:
            if vm_allows(row.vm or entry.vm, 1):
                fits.add(row.keyword)
    return frozenset(fits)


def _entry(key):
    """(keyword, dictionary entry or None) of a dataset key, by the encoder's lookup."""
    try:
        entry = entry_for_key(key)[1]
    except EncodingError:
        return key, None
    return (entry.keyword if entry else key), entry


def _sequence_problems(value, row, name, codec, context, encoded=False):
    """encoded: the whole sequence is known to encode, so every element of its items does."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        return [problem(name, f"a sequence needs a list of items (mappings), not {type(value).__name__}", row)]
    found = []
    for number, item in enumerate(value, 1):
        if not isinstance(item, dict):
            found.append(problem(name, f"item {number} is a {type(item).__name__}, not a mapping", row))
            continue
        rows = row.items if row else ()
        found += _level_problems(item, rows, f"{name}[{number}].", codec, {**context, **item}, item if encoded else ())
    return found


def _single_element_problems(key, value, entry, row, name, codec, context, encode=True):
    if encode:
        try:
            encode_element(key, value, codec, context)
        except EncodingError as error:
            return [problem(name, error.reason, row)]
    found = []
    vm = row.vm if row and row.vm else entry.vm
    count = 0 if entry.vr in _UNCOUNTED_VRS else len(values_of(value))  # a byte stream is one value
    if count and not vm_allows(vm, count):
        found.append(problem(name, f"holds {count} value(s); VM {vm} allowed", row))
    if entry.vr == "PN":
        for single in values_of(value):
            if isinstance(single, str) and single and "^" not in single and "=" not in single:
                message = f"{single!r} has no ^ between family and given names (read as the retired name form)"
                found.append(problem(name, message, row, "warning"))
    return found


@functools.lru_cache(maxsize=1024)
def vm_allows(vm, count):
    """True if ``count`` values fit the value multiplicity ``vm`` ("1", "2-n", "1-3", "3-3n", ...)."""
    low, _, high = vm.partition("-")
    if not high:
        return count == int(low)
    if high == "n":
        return count >= int(low)
    if high.endswith("n"):
        return count >= int(low) and count % int(high[:-1]) == 0
    return int(low) <= count <= int(high)
