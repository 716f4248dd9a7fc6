"""What the series of one study share: a PET and its CT, written by separate calls.

    study = new_study(when="2025-01-31T10:45:00")        # a plain dict
    write_series(pet, "out/pet", ..., study=study)
    write_series(ct, "out/ct", ..., modality="CT", study=study)

Both series then carry one StudyInstanceUID, study date and time, StudyID and
AccessionNumber, and one FrameOfReferenceUID (the scanner's: drop that key
when the two were not acquired in one frame), so PACS and viewers show one
study and fusion viewers register the two.
"""

import datetime

from ..dicom.uids import new_uid
from ..dicom.values import dicom_date, dicom_time
from ..errors import MetadataError

# The keys a study dict may hold.
STUDY_KEYWORDS = ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "FrameOfReferenceUID")


def new_study(
    seed: str | None = None, when: datetime.datetime | str | None = None, study_id: str = "1", accession_number: str = ""
) -> dict[str, str]:
    """A new study for write_series(..., study=...): its UIDs (reproducible from ``seed``) and its time.

    ``when``: the study's date and time, a datetime or ISO 8601 text (the
    earliest acquisition, usually); default now.
    """
    if when is None:
        when = datetime.datetime.now().replace(microsecond=0)
    elif not isinstance(when, datetime.datetime):
        try:
            when = datetime.datetime.fromisoformat(str(when))
        except ValueError:
            raise MetadataError(f"study time {when!r}: give a datetime or ISO 8601 text") from None
    return {
        "StudyInstanceUID": new_uid(seed, "StudyInstanceUID"),
        "StudyDate": dicom_date(when),
        "StudyTime": dicom_time(when),
        "StudyID": study_id,
        "AccessionNumber": accession_number,
        "FrameOfReferenceUID": new_uid(seed, "FrameOfReferenceUID"),
    }


def with_study(metadata, study):
    """The metadata (a dict) with the study's values; a key the study cannot hold, or a contradiction, is an error."""
    if study is None:
        return metadata
    unknown = sorted(set(study) - set(STUDY_KEYWORDS))
    if unknown:
        raise MetadataError(f"study: {unknown[0]} is not shared by a study (it holds {', '.join(STUDY_KEYWORDS)})")
    for keyword, value in study.items():
        given = metadata.get(keyword)
        if given not in (None, "") and str(given) != str(value):
            raise MetadataError(f"{keyword}: the metadata says {given!r}, the study {value!r}")
    return {**metadata, **study}
