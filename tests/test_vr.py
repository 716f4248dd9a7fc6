"""Value encoders, one per VR: golden bytes, limits, numpy input, and property tests.

Golden values are written as hex so a changed byte shows where it is.
"""

import datetime
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcmforge.errors import EncodingError
from dcmforge.dicom.vr import CHARACTER_SETS, VR_RULES, encode_value, format_ds, vrs_of_kind

ALL_VRS = (
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
LONG_HEADER_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}

# The DS grammar of PS3.5 6.2, written independently of vr.py: fixed or floating point.
DS_GRAMMAR = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def ui_is_valid(text):
    """PS3.5 9.1, written without a regex: digit components, no leading zeros, <= 64 chars."""
    if not text or len(text) > 64:
        return False
    for component in text.split("."):
        if not (component.isascii() and component.isdigit()):
            return False
        if len(component) > 1 and component[0] == "0":
            return False
    return True


def test_rule_table_covers_every_vr_with_the_standard_header_form():
    assert set(VR_RULES) == set(ALL_VRS)
    assert {vr for vr, rule in VR_RULES.items() if rule.long_header} == LONG_HEADER_VRS


def test_each_vr_has_the_kind_ps3_5_gives_it():
    # PS3.5 Table 6.2-1, grouped by hand: how a value of each VR is written.
    assert vrs_of_kind("number") == {"FL", "FD", "SS", "US", "SL", "UL", "SV", "UV"}
    assert vrs_of_kind("words") == {"OD", "OF", "OL", "OV", "OW"}
    assert vrs_of_kind("bytes") == {"OB", "UN"}
    assert vrs_of_kind("tag") == {"AT"} and vrs_of_kind("sequence") == {"SQ"}
    assert vrs_of_kind("text") == set(ALL_VRS) - vrs_of_kind("number", "words", "bytes", "tag", "sequence")
    assert vrs_of_kind("text") == {vr for vr, rule in VR_RULES.items() if rule.pad == b" "} | {"UI"}


# -- golden bytes ------------------------------------------------------------------

GOLDEN = [
    # text in the default repertoire; odd lengths get a space
    ("AE", "STORESCP", "53544f5245534350"),
    ("AE", " AE1 ", "41453120"),  # leading/trailing spaces are not significant
    ("AS", "045Y", "30343559"),
    ("CS", "O", "4f20"),
    ("CS", ["ORIGINAL", "PRIMARY"], "4f524947494e414c5c5052494d415259"),
    ("CS", ("DECY", "ATTN"), "444543595c4154544e20"),
    ("DA", "20250101", "3230323530313031"),
    ("DA", datetime.date(2025, 1, 2), "3230323530313032"),
    ("DA", datetime.datetime(2025, 1, 3, 12, 0), "3230323530313033"),
    ("TM", "101000", "313031303030"),
    ("TM", "10", "3130"),
    ("TM", datetime.time(9, 45, 0, 500000), "3039343530302e35303030303020"),
    ("DT", "20250101094500", "3230323530313031303934353030"),
    ("DT", "20250101094500.5+0100", "32303235303130313039343530302e352b3031303020"),
    (
        "DT",
        datetime.datetime(2025, 1, 1, 9, 45, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
        "32303235303130313039343530302b3031303020",
    ),
    ("UR", "http://x.org/a", "687474703a2f2f782e6f72672f61"),
    # numbers as text
    ("DS", 1.5, "312e3520"),
    ("DS", [1, 0, 0, 0, 1, 0], "315c305c305c305c315c3020"),  # the spec's ImageOrientationPatient
    ("DS", -0.0, "3020"),  # never "-0"
    ("DS", np.float32(0.1), "302e3120"),  # shortest float32 text, not 0.10000000149...
    ("DS", 1 / 3, "302e3333333333333333333333333333"),  # 16 chars exactly
    ("DS", 1e-10, "31652d313020"),
    ("DS", 123456789012345678.0, "312e32333435363738393031652b3137"),
    ("DS", " 1.50 ", "312e3530"),  # given text is kept, spaces stripped
    ("IS", 600000, "363030303030"),
    ("IS", np.int64(7), "3720"),
    ("IS", [-5, 12.0], "2d355c313220"),
    ("IS", " 42 ", "3432"),
    # UI pads with NUL
    ("UI", "1.2.840.10008.1.2.1", "312e322e3834302e31303030382e312e322e3100"),
    ("UI", "1.2", "312e3200"),
    ("UI", ["1.2", "3.4"], "312e325c332e34" + "00"),
    # text in the character set
    ("LO", "dcmforge", "64636d666f726765"),
    ("SH", "1", "3120"),
    ("PN", "Doe^John", "446f655e4a6f686e"),
    ("ST", "x", "7820"),
    ("LT", "line1\r\nline2", "6c696e65310d0a6c696e6532"),
    ("UT", "a\\b", "615c6220"),  # single-valued: a backslash is just a character
    ("UC", ["a", "bc"], "615c6263"),
    # binary numbers, little endian
    ("AT", (0x0010, 0x0010), "10001000"),
    ("AT", [0x00100010, "PixelData"], "10001000e07f1000"),
    ("US", [1, 2], "01000200"),
    ("SS", -2, "feff"),
    ("UL", 204, "cc000000"),
    ("SL", -1, "ffffffff"),
    ("UV", 2**64 - 1, "ffffffffffffffff"),
    ("SV", -(2**63), "0000000000000080"),
    ("FL", 1.5, "0000c03f"),
    ("FD", 1.5, "000000000000f83f"),
    # byte and word streams; OB and UN pad with NUL
    ("OB", b"\x01\x02\x03", "01020300"),
    ("OB", np.array([1, 2], np.uint8), "0102"),
    ("UN", b"\x01", "0100"),
    ("OW", [1, 0xFFFF], "0100ffff"),
    ("OW", np.array([-1, 2], np.int16), "ffff0200"),  # signed pixel data is written as raw words
    ("OL", [1], "01000000"),
    ("OV", [1], "0100000000000000"),
    ("OF", np.array([1.0], np.float32), "0000803f"),
    ("OD", [1.0], "000000000000f03f"),
]


@pytest.mark.parametrize("vr, value, expected", GOLDEN, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOLDEN)])
def test_golden_bytes(vr, value, expected):
    assert encode_value(vr, value).hex() == expected


@pytest.mark.parametrize("vr", [vr for vr in ALL_VRS if vr != "SQ"])
def test_empty_values_encode_to_nothing(vr):
    assert encode_value(vr, None) == b""
    if vr not in ("OB", "UN"):  # byte streams take bytes only
        assert encode_value(vr, []) == b""
    if vr not in ("AT", "OB", "UN") and VR_RULES[vr].pad == b" ":
        assert encode_value(vr, "") == b""


# One odd-length value for each VR whose values can have odd length.
ODD_LENGTH = {
    "AE": "A", "CS": "A", "DS": 1, "DT": "2025+0100", "IS": 1, "TM": "101010.12", "UI": "1", "UR": "u",
    "SH": "s", "LO": "l", "PN": "p", "ST": "s", "LT": "l", "UC": "u", "UT": "u", "OB": b"\x07", "UN": b"\x07",
}


@pytest.mark.parametrize("vr, odd", ODD_LENGTH.items())
def test_odd_values_get_the_pad_of_their_vr(vr, odd):
    text = odd if isinstance(odd, bytes) else str(odd).encode("ascii")
    assert encode_value(vr, odd) == text + (b"\x00" if vr in ("UI", "OB", "UN") else b" ")
    assert VR_RULES[vr].pad == (b"\x00" if vr in ("UI", "OB", "UN") else b" ")


# -- bad values --------------------------------------------------------------------

BAD = [
    ("AE", "A" * 17), ("AE", "a\tb"),
    ("AS", "45Y"), ("AS", "045X"),
    ("AT", "NotAKeyword"), ("AT", (1, 2, 3)),
    ("CS", "lower"), ("CS", "A" * 17), ("CS", "Ü"), ("CS", "A-B"),
    ("DA", "2025.01.01"), ("DA", "20251301"), ("DA", "20250230"), ("DA", 20250101),
    ("DS", math.nan), ("DS", math.inf), ("DS", -math.inf), ("DS", np.float32("nan")), ("DS", "nan"),
    ("DS", "1,5"), ("DS", "12345678901234567"), ("DS", "abc"), ("DS", True), ("DS", 10**400),
    ("DT", "2025-01-01"), ("DT", "20251301"),
    ("FL", 1e39), ("FL", "1.5"), ("FD", "x"), ("FD", [1, "a"]),
    ("IS", 2**31), ("IS", -(2**31) - 1), ("IS", 1.5), ("IS", "1.0"), ("IS", "123456789012345"), ("IS", True),
    ("IS", math.nan),
    ("LO", "A" * 65), ("LO", "a\nb"), ("LO", "a\\b"), ("LO", b"bytes"),
    ("LT", "A" * 10241), ("LT", "a\x00b"), ("LT", ["a", "b"]),
    ("OB", "text"), ("OB", [1, 2]),
    ("OD", "x"), ("OF", ["a"]), ("OL", [-1]), ("OV", [-1]), ("OW", [70000]), ("OW", [1.5]),
    ("PN", "a=b=c=d"), ("PN", "A" * 65), ("PN", "a^b^c^d^e^f"), ("PN", "a\rb"),
    ("SH", "A" * 17),
    ("SL", 2**31), ("SS", 40000), ("SS", [1, [2, 3]]), ("SV", 2**63),
    ("ST", "A" * 1025),
    ("TM", "24"), ("TM", "10:00:00"), ("TM", "1060"), ("TM", 101000),
    ("UC", "a\x01"),
    ("UI", "1.02"), ("UI", "1..2"), ("UI", "1." + "1" * 63), ("UI", "1.2.a"), ("UI", ".1"), ("UI", "1."),
    ("UI", 1.2), ("UI", "1.2 "),
    ("UL", -1), ("UL", 2**32),
    ("UN", 5),
    ("UR", " http://x"), ("UR", "a\\b"), ("UR", ["a", "b"]),
    ("US", -1), ("US", 65536), ("US", 1.5), ("US", "1"), ("US", np.array([1.0, np.nan])),
    ("UT", "a\x00"),
    ("UV", -1), ("UV", 2**64), ("SV", [2.0**63]), ("UV", np.array([2.0**64])), ("UL", np.array([2.0**32])),
    ("US", np.array([np.inf])), ("SL", np.array([1.0, np.nan])),
    ("DS", [np.array([1.0, 2.0]), 3.0]),
    # digits are 0-9 only, not other Unicode digits
    ("IS", "١٢"), ("DS", "١.٥"), ("UI", "1.2٣"), ("AS", "04٥Y"), ("DA", "2025010١"), ("TM", "1٠"),
]


@pytest.mark.parametrize("vr, value", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
@pytest.mark.filterwarnings("error")  # refused, not also warned about by numpy (NaN, infinities)
def test_bad_values_raise_an_encoding_error_naming_vr_and_value(vr, value):
    with pytest.raises(EncodingError) as caught:
        encode_value(vr, value)
    error = caught.value
    assert error.vr == vr
    assert error.value is not None
    message = str(error)
    assert message.startswith(f"{vr}: ")
    shown = repr(error.value)
    assert shown[:60] in message  # long values are cut, but their start is shown


def test_unknown_vr_is_refused():
    with pytest.raises(EncodingError, match="XX"):
        encode_value("XX", "a")
    with pytest.raises(EncodingError, match="SQ"):
        encode_value("SQ", [])


def test_short_length_field_overflow_is_refused():
    with pytest.raises(EncodingError, match="65534"):
        encode_value("LO", ["A" * 64] * 1100)
    assert len(encode_value("LO", ["A" * 64] * 1000)) == 64_999 + 1


# -- limits count characters, not bytes, in the character set ----------------------


def test_text_limits_count_characters_in_utf8():
    assert len(encode_value("LO", "Ż" * 64, "utf-8")) == 128
    with pytest.raises(EncodingError, match="64 characters"):
        encode_value("LO", "Ż" * 65, "utf-8")
    assert encode_value("SH", "Żółć", "utf-8") == "Żółć".encode()  # 8 bytes: no pad
    assert encode_value("SH", "Żółć1", "utf-8") == "Żółć1".encode() + b" "


def test_person_name_limit_is_per_component_group():
    three_groups = "=".join(["A" * 64, "B" * 64, "C" * 63])  # 193 characters
    assert encode_value("PN", three_groups) == three_groups.encode() + b" "


def test_default_repertoire_vrs_refuse_non_ascii_even_in_utf8():
    for vr, value in (("CS", "Ą"), ("AE", "Ą"), ("UI", "1.٢"), ("UR", "http://ą")):
        with pytest.raises(EncodingError, match="default repertoire|digits and dots|CS allows"):
            encode_value(vr, value, "utf-8")


@pytest.mark.parametrize("name, codec", [(n, c) for n, c in CHARACTER_SETS.items() if c != "ascii"])
def test_character_sets_encode_what_they_hold(name, codec):
    text = {"ISO_IR 100": "Müller^José", "ISO_IR 101": "Żółć^Łukasz", "ISO_IR 192": "Żółć^Łukasz"}[name]
    assert encode_value("PN", text, codec) == text.encode(codec) + b" " * (len(text.encode(codec)) % 2)


def test_character_set_that_cannot_hold_a_letter_is_named():
    with pytest.raises(EncodingError, match="ISO_IR 100") as caught:
        encode_value("PN", "Łukasz", "latin_1")
    assert "Łukasz" in str(caught.value)
    with pytest.raises(EncodingError, match="ISO_IR 6|ASCII"):
        encode_value("LO", "é")


# -- numpy input -------------------------------------------------------------------


def test_numpy_arrays_are_written_in_c_order_little_endian():
    grid = np.arange(6, dtype=np.uint16).reshape(2, 3)
    assert encode_value("US", np.asfortranarray(grid)) == grid.tobytes()
    assert encode_value("OW", grid.astype(">u2")) == grid.astype("<u2").tobytes()
    assert encode_value("FL", np.array([0.5, 2.0])) == np.array([0.5, 2.0], "<f4").tobytes()
    assert encode_value("US", np.array([1.0, 2.0])) == b"\x01\x00\x02\x00"
    assert encode_value("SS", np.int8(-3)) == b"\xfd\xff"
    assert encode_value("UV", [2**64 - 1, 0]) == b"\xff" * 8 + bytes(8)


def test_numpy_values_for_text_vrs():
    assert encode_value("DS", np.array([0.1, 2.5], np.float32)) == b"0.1\\2.5 "
    assert encode_value("DS", np.array([[1.0, 0.0], [0.0, 1.0]])) == b"1\\0\\0\\1 "
    assert encode_value("IS", np.array([1, -2], np.int16)) == b"1\\-2"
    assert encode_value("CS", np.array(["A", "B"])) == b"A\\B "
    assert encode_value("AT", np.array([0x00100010, 0x00100020], np.uint32)) == bytes.fromhex("1000100010002000")
    assert encode_value("LO", np.str_("x")) == b"x "


def test_bytes_for_numeric_vrs_must_hold_whole_numbers():
    assert encode_value("US", b"\x01\x00") == b"\x01\x00"
    with pytest.raises(EncodingError, match="multiple of 4"):
        encode_value("FL", b"\x00\x00")


# -- properties --------------------------------------------------------------------


def _significant_digits_that_fit(x):
    """Significant digits an exponent form 'd.ddd...e-XX' of x has room for in 16 characters."""
    exponent = int(format(abs(x), ".16e").split("e")[1])
    return 16 - (x < 0) - 3 - max(2, len(str(abs(exponent)))), exponent


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_ds_fits_16_characters_and_keeps_the_precision_16_characters_allow(x):
    text = format_ds(x)
    assert len(text) <= 16
    assert DS_GRAMMAR.fullmatch(text), text
    assert text != "-0"
    y = float(text)
    if x == 0:
        assert text == "0"
        return
    if len(repr(x)) <= 16:
        assert y == x  # the shortest round-trip text fits, so nothing is lost
    digits, exponent = _significant_digits_that_fit(x)
    if math.isinf(float(format(x, f".{digits}g"))):
        digits -= 1  # next to the largest double, rounding up would overflow
    assert digits >= 9
    # Rounded to at least that many significant digits: error at most half a unit in the last one.
    assert abs(y - x) <= 0.5 * 10.0 ** (exponent - digits + 1) * (1 + 1e-12)
    assert abs(y - x) <= 5e-9 * abs(x)
    assert encode_value("DS", x).rstrip(b" ").decode() == text


@settings(max_examples=100, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_ds_of_float32_round_trips_exactly_in_float32(x):
    value = np.float32(x)
    text = format_ds(value)
    assert len(text) <= 16 and DS_GRAMMAR.fullmatch(text)
    assert np.float32(float(text)) == value


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_multi_valued_ds_splits_back_into_each_value(values):
    data = encode_value("DS", values)
    assert len(data) % 2 == 0
    parts = data.decode("ascii").rstrip(" ").split("\\")
    assert parts == [format_ds(v) for v in values]
    assert all(len(part) <= 16 for part in parts)


@settings(max_examples=100, deadline=None)
@given(st.integers(-(2**40), 2**40), st.sampled_from([int, np.int64, str]))
def test_is_holds_exactly_the_int32_range(number, kind):
    value = kind(number)
    if -(2**31) <= number < 2**31:
        text = encode_value("IS", value).decode("ascii").rstrip(" ")
        assert int(text) == number and text == str(number)
        assert len(text) <= 12
    else:
        with pytest.raises(EncodingError, match="2\\^31|12 characters"):
            encode_value("IS", value)


uid_components = st.integers(0, 10**20).map(str)
valid_uids = st.lists(uid_components, min_size=1, max_size=12).map(".".join).filter(lambda t: len(t) <= 64)


@settings(max_examples=150, deadline=None)
@given(valid_uids)
def test_valid_uids_are_written_with_a_nul_pad(uid):
    data = encode_value("UI", uid)
    assert data == uid.encode("ascii") + b"\x00" * (len(uid) % 2)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.", max_size=70) | valid_uids.map(lambda u: u.replace(".", ".0", 1)))
def test_ui_accepts_exactly_the_uid_syntax(text):
    if text == "":
        return  # empty means "no value", not a UID
    if ui_is_valid(text):
        assert encode_value("UI", text).rstrip(b"\x00") == text.encode()
    else:
        with pytest.raises(EncodingError, match="UI"):
            encode_value("UI", text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ ", min_size=1, max_size=16), max_size=6))
def test_cs_values_are_joined_with_backslashes(values):
    expected = "\\".join(value.strip() for value in values)
    assert encode_value("CS", values) == expected.encode("ascii") + b" " * (len(expected) % 2)


INTEGER_VRS = {"US": "<u2", "SS": "<i2", "UL": "<u4", "SL": "<i4", "UV": "<u8", "SV": "<i8", "OW": "<u2",
               "OL": "<u4", "OV": "<u8"}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(INTEGER_VRS)), st.lists(st.integers(-(2**65), 2**65), min_size=1, max_size=4),
       st.sampled_from(["ints", "floats"]))
def test_binary_integers_are_exact_or_refused(vr, numbers, given_as):
    dtype = np.dtype(INTEGER_VRS[vr])
    info = np.iinfo(dtype)
    value = numbers if given_as == "ints" else np.array(numbers, dtype=float)
    wanted = numbers if given_as == "ints" else [int(x) for x in value]  # what the floats hold exactly
    if all(info.min <= n <= info.max for n in wanted):
        assert np.frombuffer(encode_value(vr, value), dtype).tolist() == wanted
    else:
        with pytest.raises(EncodingError, match="out of range"):
            encode_value(vr, value)
