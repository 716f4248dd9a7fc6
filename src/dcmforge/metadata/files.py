"""Reading a metadata file: TOML (with comments) or JSON, keyed by DICOM keywords or friendly keys.

The metadata files of the earlier J-PET converter are read as they are: their
sections (``patient``, ``petSeries``, ``petIsotope``, ``petPatientOrientation``)
are flattened into the top level.
"""

import json
from pathlib import Path

from ..errors import MetadataError

JPET_SECTIONS = ("patient", "petSeries", "petIsotope", "petPatientOrientation")


def read_metadata(path):
    """The metadata of a TOML or JSON file as a dict (J-PET converter sections flattened)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MetadataError(f"{path}: cannot read metadata: {error}") from None
    if path.suffix.lower() == ".json" or (path.suffix.lower() != ".toml" and text.lstrip().startswith("{")):
        data = _parse_json(text, path)
    else:
        data = _parse_toml(text, path)
    if not isinstance(data, dict):
        raise MetadataError(f"{path}: metadata must be a table of keyword = value, not {type(data).__name__}")
    return flatten_sections(data, path)


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
