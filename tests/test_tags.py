import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dcmforge
from dcmforge.dicom import _dictionary
from dcmforge.errors import EncodingError
from dcmforge.dicom.tags import Entry, entry_for_tag, format_tag, is_private, lookup, table, tag_of


@pytest.mark.parametrize(
    "keyword, tag, vr, vm",
    [
        ("PatientName", 0x00100010, "PN", "1"),
        ("PixelData", 0x7FE00010, "OB or OW", "1"),
        ("SmallestImagePixelValue", 0x00280106, "US or SS", "1"),
        ("RadiopharmaceuticalInformationSequence", 0x00540016, "SQ", "1"),
        ("ImageOrientationPatient", 0x00200037, "DS", "6"),
        ("ImagePositionPatient", 0x00200032, "DS", "3"),
        ("RedPaletteColorLookupTableDescriptor", 0x00281101, "US or SS", "3"),
        ("LUTData", 0x00283006, "US or OW", "1-n"),
        ("Item", 0xFFFEE000, "NONE", "1"),
    ],
)
def test_lookup_known_entries(keyword, tag, vr, vm):
    assert lookup(keyword) == Entry(tag, vr, vm, keyword, False)


def test_lookup_flags_retired_entries():
    # (0020,0030) Image Position was retired in favour of Image Position (Patient).
    assert lookup("ImagePosition") == Entry(0x00200030, "DS", "3", "ImagePosition", True)
    assert lookup("ImagePositionPatient").retired is False


def test_three_vr_ambiguity_is_kept_verbatim():
    vrs = {entry.vr for entry in table().values()}
    assert "US or SS or OW" in vrs
    assert "OB or OW" in vrs


def test_table_is_sorted_by_tag():
    tags = [entry.tag for entry in table().values()]
    assert tags == sorted(tags)
    assert len(set(tags)) == len(tags)


@pytest.mark.parametrize(
    "keyword", ["Patient", "PatientNam", "atientName", "PatientName PatientID", "PatientName ", "Patient\u00f1ame", "0"]
)
def test_only_a_whole_keyword_is_found_in_the_table_text(keyword):
    # The table is one text of keywords: a part of one, or two with their space, is no keyword.
    with pytest.raises(EncodingError, match="unknown keyword"):
        lookup(keyword)


def test_tags_next_to_the_table_s_are_not_found():
    assert entry_for_tag(0x00000000).keyword == "CommandGroupLength"  # the first
    assert entry_for_tag(0xFFFEE0DD).keyword == "SequenceDelimitationItem"  # the last
    for tag in (0x00100011, 0x0010000F, 0xFFFFFFFF, 0xFFFEE0DE):
        assert entry_for_tag(tag) is None


def test_edition_is_recorded():
    assert _dictionary.EDITION == "2024c"
    assert "2024c" in _dictionary.__doc__


def test_unknown_keyword_suggests_the_closest():
    with pytest.raises(EncodingError) as caught:
        lookup("PatinetName")
    assert str(caught.value) == "PatinetName: unknown keyword, did you mean PatientName?"
    assert caught.value.keyword == "PatinetName"


def test_unknown_keyword_suggestion_ignores_case():
    with pytest.raises(EncodingError, match="did you mean PatientName[?]"):
        lookup("PATIENTNAME")


def test_unknown_keyword_without_a_close_match():
    with pytest.raises(EncodingError) as caught:
        lookup("Qqqqqqqqqqqqqqqqqqqqq")
    assert str(caught.value) == "Qqqqqqqqqqqqqqqqqqqqq: unknown keyword"


def test_lookup_rejects_empty_and_non_str_keywords():
    with pytest.raises(EncodingError, match="^empty keyword$"):
        lookup("")
    with pytest.raises(EncodingError, match=r"must be a str \(value 0\)"):
        lookup(0)


def test_entry_for_tag():
    assert entry_for_tag(0x00100010) == Entry(0x00100010, "PN", "1", "PatientName", False)
    assert entry_for_tag(0x7FE00010).vr == "OB or OW"
    assert entry_for_tag(0x00200030).retired is True
    assert entry_for_tag(0x00091001) is None  # private
    assert entry_for_tag(0x60003000) is None  # overlay data: a repeating-group mask, skipped


def test_every_keyword_round_trips_through_its_tag():
    for keyword, entry in table().items():
        assert entry_for_tag(entry.tag).keyword == keyword


@pytest.mark.parametrize(
    "key",
    [
        "PatientName",
        0x00100010,
        (0x0010, 0x0010),
        "(0010,0010)",
        "0010,0010",
        "00100010",
        "(0010, 0010)",
    ],
)
def test_tag_of_forms(key):
    assert tag_of(key) == 0x00100010


def test_tag_of_reads_hex_in_either_case():
    assert tag_of("(7fe0,0010)") == 0x7FE00010
    assert tag_of("7FE00010") == 0x7FE00010


def test_no_keyword_looks_like_a_written_tag():
    # tag_of reads 8 hex digits as a tag before trying keywords.
    for keyword, entry in table().items():
        assert tag_of(keyword) == entry.tag


@pytest.mark.parametrize(
    "key, message",
    [
        (-1, "fit in 32 bits"),
        (0x1_0000_0000, "fit in 32 bits"),
        ((0x10000, 0), "two ints"),
        ((0x0010,), "two ints"),
        ((0x0010, "0010"), "two ints"),
        (True, "keyword, an int or"),
        (1.5, "keyword, an int or"),
        ("(0010,0010", "unknown keyword"),
        ("0010-0010", "unknown keyword"),
    ],
)
def test_tag_of_rejects(key, message):
    with pytest.raises(EncodingError, match=message):
        tag_of(key)


def test_format_tag():
    assert format_tag(0x00100010) == "(0010,0010)"
    assert format_tag(0x7FE00010) == "(7FE0,0010)"
    assert format_tag(0xFFFEE000) == "(FFFE,E000)"


@settings(max_examples=200)
@given(st.integers(0, 0xFFFFFFFF))
def test_format_tag_and_tag_of_are_inverse(tag):
    assert tag_of(format_tag(tag)) == tag


def test_is_private():
    assert is_private(0x00091001) is True
    assert is_private(0x00290010) is True
    assert is_private(0x00100010) is False
    assert is_private(0x7FE00010) is False


def test_table_agrees_with_pydicom():
    from pydicom._dicom_dict import DicomDictionary

    expected = {
        keyword: (tag, vr, vm, retired == "Retired")
        for tag, (vr, vm, _name, retired, keyword) in DicomDictionary.items()
        if keyword
    }
    ours = {keyword: (entry.tag, entry.vr, entry.vm, entry.retired) for keyword, entry in table().items()}
    assert ours == expected
    assert all(lookup(keyword) == entry for keyword, entry in table().items())


def test_importing_tags_does_not_load_the_table():
    src = Path(dcmforge.__file__).resolve().parents[1]
    code = (
        "import sys, dcmforge.dicom.tags; "
        "print('dcmforge.dicom._dictionary' in sys.modules); "
        "dcmforge.dicom.tags.lookup('PatientName'); "
        "print('dcmforge.dicom._dictionary' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["False", "True"]
