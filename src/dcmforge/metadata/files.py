"""Reading a metadata file: TOML (with comments) or JSON, keyed by DICOM keywords or friendly keys.

The metadata files of the earlier J-PET converter are read as they are: their
sections (``patient``, ``petSeries``, ``petIsotope``, ``petPatientOrientation``)
are flattened into the top level.
"""

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from ..errors import MetadataError
from ..paths import path_argument, read_regular_file

JPET_SECTIONS = ("patient", "petSeries", "petIsotope", "petPatientOrientation")
# Tables and lists, the top-level table counting as one: 15 levels of sequence (a list of tables each).
# Real DICOM sequences nest a handful of levels.
MAX_DEPTH = 32
# Python's own bound on an integer read from or written as text (sys.int_max_str_digits' default); no DICOM
# value holds more than 20 digits, so a longer one is a mistake to name, not a number to read.
MAX_INTEGER_DIGITS = 4300
_LONG_INTEGER = re.compile(rf"(?<![\w.])-?\d{{{MAX_INTEGER_DIGITS + 1},}}")
# The key a value follows: "Key": or Key = (quotes optional), at the end of the text before the value.
_KEY_BEFORE = re.compile(r"[\"']?([\w.-]+)[\"']?\s*[:=]\s*\[?\s*$")


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a TOML or JSON file as a dict (J-PET converter sections flattened)."""
    path = path_argument(path, "read_metadata's path", MetadataError)
    try:
        text = read_regular_file(path).decode("utf-8")
    except (OSError, ValueError) as error:  # ValueError: a NUL in the name, or not UTF-8
        raise MetadataError(f"{path}: cannot read metadata: {error}") from None
    _check_integer_lengths(text, path)
    try:
        if path.suffix.lower() == ".json" or (path.suffix.lower() != ".toml" and text.lstrip().startswith("{")):
            data = _parse_json(text, path)
        else:
            data = _parse_toml(text, path)
    except RecursionError:  # the parsers recurse per level
        raise MetadataError(f"{path}: nested too deeply to parse (dcmforge reads at most {MAX_DEPTH} levels)") from None
    if not isinstance(data, dict):
        raise MetadataError(f"{path}: metadata must be a table of keyword = value, not {type(data).__name__}")
    check_nesting(data, path)
    return flatten_sections(data, path)


def metadata_mapping(metadata):
    """The writers' ``metadata`` argument as a dict: a mapping, a metadata file's path, or None."""
    if metadata is None:
        return {}
    if isinstance(metadata, (str, os.PathLike)):
        return read_metadata(metadata)
    if isinstance(metadata, Mapping):
        return dict(metadata)
    raise MetadataError(
        f"metadata must be a mapping of keyword -> value or the path of a metadata file, not {type(metadata).__name__}"
    )


def _check_integer_lengths(text, path):
    """MetadataError naming the line and key of an integer longer than MAX_INTEGER_DIGITS (the parsers would
    raise Python's own ValueError, which names neither)."""
    found = _LONG_INTEGER.search(text)
    if found is None:
        return
    before = text[: found.start()]
    key = _KEY_BEFORE.search(before[-200:])
    where = f"{path}, line {before.count(chr(10)) + 1}" + (f": {key.group(1)}" if key else "")
    digits = len(found.group().lstrip("-"))
    raise MetadataError(f"{where}: an integer of {digits} digits; dcmforge reads integers of at most {MAX_INTEGER_DIGITS} digits")


def _digit_count(value):
    """The decimal digits of an int too long to write as text (log10 reads any int)."""
    return int(math.log10(abs(value))) + 1


def check_nesting(data, source="metadata"):
    """MetadataError naming ``source``, the depth and the key path when ``data`` nests deeper than MAX_DEPTH,
    or holds an integer of more than MAX_INTEGER_DIGITS digits (which Python cannot even write as text).

    The resolver, the validator and the encoder walk sequences recursively:
    this bound, checked first and by a loop, turns what would be a
    RecursionError (or a table that holds itself) into one line.
    """
    stack = [(data, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, Mapping):
            children = [(item, f"{where}.{key}" if where else str(key)) for key, item in value.items()]
        elif isinstance(value, (list, tuple)):
            children = [(item, f"{where}[{number}]") for number, item in enumerate(value, 1)]
        elif isinstance(value, int) and abs(value) >= 10**MAX_INTEGER_DIGITS:
            raise MetadataError(
                f"{source}: {where}: an integer of {_digit_count(value)} digits; "
                f"dcmforge reads integers of at most {MAX_INTEGER_DIGITS} digits"
            )
        else:
            continue
        if depth > MAX_DEPTH:
            shown = where if len(where) <= 100 else where[:60] + "..." + where[-37:]
            raise MetadataError(
                f"{source}: tables and lists nest more than {MAX_DEPTH} levels deep (level {depth} at {shown}); "
                f"dcmforge reads at most {MAX_DEPTH}"
            )
        stack.extend((item, depth + 1, path) for item, path in children)


def _parse_json(text, path):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{path}, line {error.lineno}, column {error.colno}: not valid JSON: {error.msg}") from None


def _parse_toml(text, path):
    import tomllib  # Python 3.11+; only needed for TOML files

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MetadataError(f"{path}: not valid TOML: {error}") from None


def flatten_sections(data, source="metadata"):
    """The J-PET converter's sections (patient, petSeries, ...) merged into the top level."""
    flat = {key: value for key, value in data.items() if key not in JPET_SECTIONS}
    for section in JPET_SECTIONS:
        if section not in data:
            continue
        content = data[section]
        if not isinstance(content, dict):
            raise MetadataError(f"{source}: section {section!r} must hold keyword: value pairs")
        for key, value in content.items():
            if key in flat and flat[key] != value:
                raise MetadataError(f"{source}: {key} is given twice with different values (once in {section!r})")
            flat[key] = value
    return flat
