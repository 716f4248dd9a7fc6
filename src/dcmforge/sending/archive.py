"""One way to send for both protocols: the archive is a URL, and its scheme says which client goes.

``http://`` and ``https://`` are a DICOMweb base (STOW-RS, dicomweb.py);
``dicom://CALLED_AE@HOST:PORT`` is a DICOM port (C-STORE, dimse.py), and
``dicoms://`` the same over TLS. Each
client is imported only when its URL is used.
"""

import os
import urllib.parse
from collections.abc import Iterable
from typing import Any

from ..errors import SendError
from .report import SendReport

DICOMWEB = "DICOMweb"
DIMSE = "DIMSE"
_SCHEMES = {"http": DICOMWEB, "https": DICOMWEB, "dicom": DIMSE, "dicoms": DIMSE}


def protocol_of(url):
    """DICOMWEB or DIMSE for an archive URL; SendError for any other."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise SendError(
            f"{url}: an archive URL starts with http:// or https:// (DICOMweb) or dicom:// (DIMSE: dicom://CALLED_AE@HOST:PORT)"
        )
    return _SCHEMES[scheme]


def send(paths: Iterable[str | os.PathLike], url: str, **options: Any) -> SendReport:
    """Send the DICOM files in ``paths`` to the archive at ``url``; returns a SendReport.

    ``options`` are those of the protocol's client: dicomweb.send for
    ``http(s)://`` (batch_instances, batch_bytes, auth, cafile, timeout,
    retries, backoff, progress), dimse.send for ``dicom://`` and ``dicoms://``
    (calling_ae, cafile, timeout, deadline, retries, backoff, progress).
    """
    if protocol_of(url) == DIMSE:
        from .dimse import send as send_dimse

        return send_dimse(paths, url, **options)
    from .dicomweb import send as send_dicomweb

    return send_dicomweb(paths, url, **options)
