"""Sending series to an archive, in one room.

* :mod:`dcmforge.sending.archive`: :func:`send` for any archive URL, the scheme picking the client.
* :mod:`dcmforge.sending.dicomweb`: the DICOMweb STOW-RS client (``http://``, ``https://``).
* :mod:`dcmforge.sending.dimse`: the DIMSE C-STORE and C-ECHO client (``dicom://CALLED_AE@HOST:PORT``), over
  :mod:`~dcmforge.sending.pdu` (the upper layer's PDUs), :mod:`~dcmforge.sending.command` (the command set and its
  statuses) and :mod:`~dcmforge.sending.implicit` (Explicit VR data sets rewritten as Implicit VR).
* :mod:`dcmforge.sending.instances`: the Part 10 files of a send, read as far as their meta group.
* :mod:`dcmforge.sending.report`: what became of each instance (:class:`Outcome`, :class:`SendReport`), for both.
* :mod:`dcmforge.sending.cli`: ``dcmforge send``, ``dcmforge echo`` and the ``--send`` options of ``convert``.

Nothing is imported here, and the clients are imported only when something is sent.
"""
