"""The user's metadata file: TOML (with comments) or JSON, keyed by DICOM keywords.

Besides DICOM keywords (sequences as lists of tables), a file may use a few
friendly keys for what PET users know (``FRIENDLY_KEYS``). ``files`` reads a
file (J-PET converter sections flattened); ``friendly`` resolves it into DICOM
(``resolve_metadata``); ``statements`` takes units, corrections and the
modality only from what the input or the user says. The two commands' modules are imported by
them alone, not here, so that a conversion does not load them: ``check`` validates a file alone
(``check_metadata``), ``template`` prints a commented starter file (``template_text``).
"""

from .files import metadata_mapping, read_metadata
from .friendly import FRIENDLY_KEYS, resolve_metadata
from .statements import modality_of, unstated

__all__ = ["FRIENDLY_KEYS", "metadata_mapping", "modality_of", "read_metadata", "resolve_metadata", "unstated"]
