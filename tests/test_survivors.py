"""Tests that kill the mutants the last round's mutation run left alive (issue 19).

Each test here fails when one line of dcmforge is changed the way its
docstring says, and passes as the code is: an empty Type 1C attribute
accepted, LossyImageCompression only a defined term, an instance both failed
and stored counted as stored, a retry backoff that stops doubling, and the
per-slice encoders drifting from the general one.
"""


import pydicom
import pytest
from hypothesis import given, strategies as st

import dcmforge
from dcmforge.dicom.encode import ds_element, encode_element, is_element, ss_element, ui_element, us_element
from dcmforge.errors import SendError, ValidationError
from dcmforge.sending import dicomweb
from dcmforge.sending.report import FAILED, STORED
from dcmforge.sending.instances import Instance

from dicom_tools import dciodvfy
from volumes import activity

GATED = {"PatientID": "GATED", "SeriesType": ["GATED", "IMAGE"], "NumberOfRRIntervals": 1200, "NumberOfTimeSlots": 8,
         "TriggerTime": 125.0, "FrameTime": 100.0, "BeatRejectionFlag": "N"}  # fmt: skip
GEOMETRY = {"spacing": (2.0, 2.0, 2.0)}


# -- the image descriptions: empty Type 1C, enumerated values ---------------------------------------------------


def test_a_gated_pet_with_an_empty_trigger_time_is_refused_before_writing(tmp_path):
    """Mutant: _row_problems lets an empty Type 1C through (``row.type in ("1",)``); dciodvfy then reports the file."""
    paths = dcmforge.write_series(activity((2, 4, 4)), tmp_path / "gated", metadata=GATED, **GEOMETRY)
    assert pydicom.dcmread(paths[0]).TriggerTime == 125
    assert dciodvfy(paths[0]).errors == []
    with pytest.raises(ValidationError, match=r"TriggerTime .*empty; Type 1C needs a value"):
        dcmforge.write_series(activity((2, 4, 4)), tmp_path / "empty", metadata={**GATED, "TriggerTime": ""}, **GEOMETRY)
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize("multiframe", [False, True])
def test_lossy_image_compression_is_00_or_01_and_nothing_else(tmp_path, multiframe):
    """Mutant: LOSSY = defined("00", "01"): "02" would be a warning, and written."""
    meta = {"PatientID": "LOSSY", "LossyImageCompression": "01", "LossyImageCompressionRatio": 8,
            "LossyImageCompressionMethod": "ISO_10918_1"}  # fmt: skip
    if multiframe:
        meta.update(isotope="F-18", radiopharmaceutical="Fluorodeoxyglucose", injection_datetime="2025-01-01T09:00:00", injected_activity=3.7e8,
                    acquisition_datetime="2025-01-01T10:00:00")  # fmt: skip
    paths = dcmforge.write_series(activity((2, 4, 4)), tmp_path / "lossy", metadata=meta, multiframe=multiframe,
                                  **GEOMETRY)  # fmt: skip
    assert pydicom.dcmread(paths[0]).LossyImageCompression == "01"
    with pytest.raises(ValidationError, match=r"LossyImageCompression \(0028,2110\) .*: '02' is not one of 00, 01"):
        dcmforge.write_series(activity((2, 4, 4)), tmp_path / "bad", metadata={**meta, "LossyImageCompression": "02"},
                              multiframe=multiframe, **GEOMETRY)  # fmt: skip
    assert not (tmp_path / "bad").exists()


# -- the DICOMweb client: failed and stored, backoff -------------------------------------------------------------

BATCH = [Instance(f"/data/{n}.dcm", 100, "1.2.840.10008.5.1.4.1.1.128", f"1.2.3.{n}") for n in range(3)]


def _items(*uids):
    return {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": [uid]}} for uid in uids]}


@pytest.mark.parametrize("status", [200, 202, 409])
def test_an_instance_the_answer_names_both_failed_and_stored_is_failed(status):
    """Mutant: outcomes_from_answer looks at the stored instances first: a contradiction would count as stored."""
    answer = {"00081199": _items("1.2.3.0", "1.2.3.1"), "00081198": _items("1.2.3.1", "1.2.3.2")}
    outcomes = dicomweb.outcomes_from_answer(status, answer, BATCH)
    assert [o.status for o in outcomes] == [STORED, FAILED, FAILED]
    assert outcomes[1].reason == f"the server answered {status} without a reason"


def test_the_retry_backoff_doubles(monkeypatch, tmp_path):
    """Mutant: the wait before a retry stops doubling (backoff * attempt, or backoff alone). Nothing is timed: the
    waits asked of time.sleep are recorded."""
    waits = []
    monkeypatch.setattr(dicomweb.time, "sleep", waits.append)

    def refused(*args, **kwargs):
        raise dicomweb._Retryable("cannot connect")

    monkeypatch.setattr(dicomweb, "post_batch", refused)
    path = dcmforge.write_series(activity((1, 4, 4)), tmp_path / "one", **GEOMETRY)[0]
    with pytest.raises(SendError, match="tried 5 times"):
        dcmforge.send(path, "http://127.0.0.1:9/dicom-web", retries=4, backoff=0.25)
    assert waits == [0.25, 0.5, 1.0, 2.0]


# -- the per-slice encoders give the general encoder's bytes ------------------------------------------------------

# ImagePositionPatient, InstanceNumber, SOPInstanceUID, NumberOfSlices (US), SmallestImagePixelValue (US or SS)
_TAGS = {"DS": 0x00200032, "IS": 0x00200013, "UI": 0x00080018, "US": 0x00540081, "SS": 0x00280106}
_FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda x: abs(x) < 1e300)


@given(st.one_of(_FLOATS, st.lists(_FLOATS, min_size=1, max_size=3)))
def test_ds_element_is_the_general_encoders_bytes(numbers):
    assert ds_element(_TAGS["DS"], numbers) == encode_element(_TAGS["DS"], numbers)


@given(st.integers(-(2**31), 2**31 - 1))
def test_is_element_is_the_general_encoders_bytes(number):
    assert is_element(_TAGS["IS"], number) == encode_element(_TAGS["IS"], number)


@given(st.from_regex(r"(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,8})){1,6}", fullmatch=True))
def test_ui_element_is_the_general_encoders_bytes(uid):
    assert ui_element(_TAGS["UI"], uid) == encode_element(_TAGS["UI"], uid)


@given(st.integers(0, 0xFFFF), st.integers(-0x8000, 0x7FFF))
def test_us_and_ss_elements_are_the_general_encoders_bytes(unsigned, signed):
    assert us_element(_TAGS["US"], unsigned) == encode_element(_TAGS["US"], unsigned)
    assert ss_element(_TAGS["SS"], signed) == encode_element(_TAGS["SS"], signed, context={"PixelRepresentation": 1})
