"""Sending series to an archive, in one room.

* :mod:`dcmforge.sending.dicomweb`: the DICOMweb STOW-RS client (:func:`send`, :class:`SendReport`).
* :mod:`dcmforge.sending.cli`: the ``dcmforge send`` command and the ``--send`` options of ``convert``.

Nothing is imported here, and the clients are imported only when something is sent.
"""
