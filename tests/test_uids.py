"""UIDs: random 2.25 ones, reproducible ones from a seed, syntax checks, dcmforge's own UIDs."""

import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_vr import ui_is_valid

import dcmforge
from dcmforge.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, is_valid_uid, new_uid

ROOT = Path(__file__).resolve().parents[1]


def test_random_uids_are_valid_unique_2_25_uuid4s():
    uids = [new_uid() for _ in range(2000)]
    assert len(set(uids)) == len(uids)
    for uid in uids:
        assert ui_is_valid(uid) and is_valid_uid(uid)
        assert uid.startswith("2.25.") and len(uid) <= 44
        number = int(uid[5:])
        assert str(number) == uid[5:]  # decimal without leading zeros
        assert uuid.UUID(int=number).version == 4


def test_random_uids_differ_from_seeded_ones():
    assert new_uid() != new_uid()
    assert new_uid("seed") == new_uid("seed") != new_uid()


# Few characters, "/" among them, so that joins that could collide are found.
names = st.one_of(st.text(alphabet="ab/:\\0", max_size=4), st.integers(-3, 3))


@settings(max_examples=200, deadline=None)
@given(names, st.lists(names, max_size=3))
def test_seeded_uids_are_reproducible_and_valid(seed, parts):
    uid = new_uid(seed, *parts)
    assert uid == new_uid(seed, *parts)
    assert ui_is_valid(uid) and uid.startswith("2.25.") and len(uid) <= 44


@settings(max_examples=200, deadline=None)
@given(st.lists(names, min_size=1, max_size=4), st.lists(names, min_size=1, max_size=4))
def test_different_seeds_or_names_give_different_uids(first, second):
    # A name is used as its text: 1 and "1" are the same name.
    if [str(p) for p in first] == [str(p) for p in second]:
        assert new_uid(*first) == new_uid(*second)
    else:
        assert new_uid(*first) != new_uid(*second)


@settings(max_examples=100, deadline=None)
@given(st.lists(names.map(str), min_size=2, max_size=4), st.sampled_from(["/", "", ":", "1:"]))
def test_joining_two_names_gives_another_uid(parts, joint):
    merged = parts[:-2] + [parts[-2] + joint + parts[-1]]
    assert new_uid(*parts) != new_uid(*merged)


def test_seeded_uids_are_stable_across_releases():
    # Reproducible means reproducible tomorrow too: pin one value.
    assert new_uid("run-7", "series", 1) == "2.25.43352009632472485650873129970561951126"
    assert new_uid("run-7", "series", 1) == new_uid("run-7", "series", "1")
    assert new_uid("run-7", "series", 1) != new_uid("run-7", "series/1")
    assert new_uid("run-7", "series", 1) != new_uid("run-7", "series", 2)


def test_is_valid_uid_examples():
    for good in ("0", "0.0", "1.2.840.10008.1.2.1", "2.25." + "9" * 39, "1." + "2" * 62):
        assert is_valid_uid(good), good
    for bad in ("", ".", "1.", ".1", "1..2", "1.02", "01", "1.2.a", "1 .2", "1.2\x00", "1." + "2" * 63, "١.٢", "1.2٣", None,
                1.2, b"1.2"):
        assert not is_valid_uid(bad), bad


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.", max_size=70))
def test_is_valid_uid_matches_the_standard_syntax(text):
    assert is_valid_uid(text) == ui_is_valid(text)


# -- dcmforge's own implementation UID ---------------------------------------------------------


def test_implementation_uid_and_name_are_dcmforges_own():
    assert is_valid_uid(IMPLEMENTATION_CLASS_UID) and len(IMPLEMENTATION_CLASS_UID) <= 64
    assert not IMPLEMENTATION_CLASS_UID.startswith("1.2.826.0.1.3680043.8.498")  # pydicom's root
    assert IMPLEMENTATION_VERSION_NAME == "DCMFORGE_" + dcmforge.__version__.replace(".", "_")
    assert len(IMPLEMENTATION_VERSION_NAME) <= 16  # SH
    assert all(c.isascii() and (c.isalnum() or c in "_.") for c in IMPLEMENTATION_VERSION_NAME)


def test_version_is_the_one_in_pyproject():
    # The implementation name follows __version__, so __version__ must follow the release.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert dcmforge.__version__ == project["version"]


def test_implementation_uid_is_the_versions():
    # Written out in uids.py so that no hash runs at import; a new version without a new UID fails here.
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "https://dcmforge.invalid/uid")
    assert IMPLEMENTATION_CLASS_UID == f"2.25.{uuid.uuid5(namespace, f'dcmforge {dcmforge.__version__}').int}"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_seeded_uids_are_uuid5s_in_dcmforges_namespace(parts):
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "https://dcmforge.invalid/uid")
    name = "".join(f"{len(part)}:{part}" for part in parts)
    assert new_uid(*parts) == f"2.25.{uuid.uuid5(namespace, name).int}"
