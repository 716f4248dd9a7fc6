"""The user's metadata file: TOML (with comments) or JSON, keyed by DICOM keywords.

Besides DICOM keywords (sequences as lists of tables), a file may use a few
friendly keys for what PET users know (``FRIENDLY_KEYS``). ``files`` reads a
file (J-PET converter sections flattened); ``friendly`` resolves it into DICOM
(``resolve_metadata``); ``statements`` takes units, corrections and the
modality only from what the input or the user says; ``check`` validates a file alone (``check_metadata``);
``template`` prints a commented starter file (``template_text``).
"""

from .check import check_metadata
from .files import metadata_mapping, read_metadata
from .friendly import FRIENDLY_KEYS, resolve_metadata
from .statements import modality_of, unstated
from .template import template_text

__all__ = [
    "FRIENDLY_KEYS", "check_metadata", "metadata_mapping", "modality_of", "read_metadata", "resolve_metadata",
    "template_text", "unstated",
]  # fmt: skip
