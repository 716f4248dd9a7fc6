"""Sending series to an archive, in one room.

* :mod:`dcmforge.sending.instances`: the Part 10 files of a send, read as far as their meta group.
* :mod:`dcmforge.sending.report`: what became of each instance (:class:`Outcome`, :class:`SendReport`), for every protocol.
* :mod:`dcmforge.sending.dicomweb`: the DICOMweb STOW-RS client (:func:`send`).
* :mod:`dcmforge.sending.cli`: the ``dcmforge send`` command and the ``--send`` options of ``convert``.

Nothing is imported here, and the clients are imported only when something is sent.
"""
