"""What only an image's maker knows is taken from the input or the user, never assumed: modality, units, corrections.

Interfile headers in each dialect's words decide the modality (an NM or SPECT
header, a !SPECT STUDY section, a single-photon isotope: NM; a PET header or a
positron emitter: PET; neither: PET with a warning naming --modality), the
corrections (Siemens and Interfile 3.3 keys) and the units; metadata keys
``units`` and ``corrections`` say the same in friendly words. A PET written
with no word about them claims nothing: read back with pydicom, checked by
dciodvfy.
"""

import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_tools import dciodvfy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcmforge import convert
from dcmforge.convert import convert_one
from dcmforge.errors import DcmforgeError, MetadataError
from dcmforge.metadata import modality_of, resolve_metadata
from dcmforge.metadata.check import check_metadata
from dcmforge.readers.interfile import read_interfile, write_interfile
from dcmforge.readers.interfile.grammar import parse_header
from dcmforge.readers.interfile.metadata import metadata_from_header

SHAPE = (3, 4, 5)  # z, y, x

# A STIR reconstruction header with its modality, study section and extra keys left to each test.
HEADER = """!INTERFILE :=
!imaging modality := {modality}
name of data file := image.v
!GENERAL DATA :=
!GENERAL IMAGE DATA :=
!type of data := Tomographic
imagedata byte order := LITTLEENDIAN
{section}
process status := Reconstructed
!number format := float
!number of bytes per pixel := 4
number of dimensions := 3
!matrix size [1] := 5
scaling factor (mm/pixel) [1] := 4
!matrix size [2] := 4
scaling factor (mm/pixel) [2] := 4
!matrix size [3] := 3
scaling factor (mm/pixel) [3] := 4
{extra}
!END OF INTERFILE :=
"""


def header_file(folder, modality="nucmed", section="!SPECT STUDY (general) :=", extra=""):
    folder.mkdir(parents=True, exist_ok=True)
    np.arange(np.prod(SHAPE), dtype="<f4").tofile(folder / "image.v")
    header = folder / "image.hv"
    header.write_text(HEADER.format(modality=modality, section=section, extra=extra))
    return header


def decided(header, **options):
    """(modality, warnings logged) as convert decides them for ``header`` with ``options``."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logging.getLogger("dcmforge").addHandler(handler)
    try:
        _, _, modality = convert._read(header, options)
    finally:
        logging.getLogger("dcmforge").removeHandler(handler)
    return modality, [record.getMessage() for record in records]


# -- which modality an input is ---------------------------------------------------------------


@pytest.mark.parametrize(
    "modality, section, extra, expected",
    [
        ("NM", "", "", "NM"),  # STIR's SPECT reconstruction
        ("SPECT", "", "", "NM"),
        ("nucmed", "!SPECT STUDY (general) :=", "", "NM"),  # STIR's older SPECT headers
        ("nucmed", "", "isotope name := ^99m^Technetium", "NM"),
        ("nucmed", "", "isotope name := I-131", "NM"),
        ("nucmed", "", "radionuclide name[1] := Lu177", "NM"),
        ("nucmed", "", "isotope name := ^18^Fluorine", "PT"),
        ("nucmed", "", "isotope name := Ga-68", "PT"),
        ("PET", "", "", "PT"),
        ("PT", "", "", "PT"),
        ("nucmed", "!PET STUDY (General) :=", "", "PT"),
        ("PET", "", "isotope name := F-18", "PT"),
        ("CT", "", "", "CT"),
    ],
)
def test_the_header_decides_the_modality(tmp_path, modality, section, extra, expected):
    header = header_file(tmp_path, modality, section, extra)
    assert decided(header) == (expected, [])


@pytest.mark.parametrize(
    "modality, section, extra, written",
    [("NM", "", "", ["NM_multiframe.dcm"]),
     ("nucmed", "!SPECT STUDY (general) :=", "", ["NM_multiframe.dcm"]),
     ("nucmed", "", "isotope name := ^99m^Technetium", ["NM_multiframe.dcm"]),
     ("nucmed", "", "isotope name := F-18", ["PT_0001.dcm", "PT_0002.dcm", "PT_0003.dcm"])],
)  # fmt: skip
def test_the_command_writes_what_the_header_says(tmp_path, modality, section, extra, written):
    from dcmforge.cli import main

    header = header_file(tmp_path / "in", modality, section, extra)
    assert main(["-q", "convert", str(header), "--out", str(tmp_path / "out")]) == 0
    assert sorted(path.name for path in (tmp_path / "out" / "image").iterdir()) == written
    ds = pydicom.dcmread(tmp_path / "out" / "image" / written[0], stop_before_pixels=True)
    assert ds.Modality == written[0][:2]
    assert dciodvfy(tmp_path / "out" / "image" / written[0]).errors == []


def test_modality_flag_overrides_on_the_command_line(tmp_path):
    from dcmforge.cli import main

    header = header_file(tmp_path / "in", "PET", "", "isotope name := F-18")
    assert main(["-q", "convert", str(header), "--out", str(tmp_path / "out"), "--modality", "NM"]) == 0
    assert [path.name for path in (tmp_path / "out" / "image").iterdir()] == ["NM_multiframe.dcm"]


@pytest.mark.parametrize("examples", ["as printed", "examples uncommented"])
def test_the_nm_template_works_as_convert_metadata(tmp_path, capsys, examples):
    import re

    from dcmforge.cli import main

    assert main(["template", "nm"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# dcmforge metadata for a NM Image series (SOP class 1.2.840.10008.5.1.4.1.1.20).")
    assert "# isotope = \"Tc-99m\"" in text and "positron_fraction" not in text and "frame_start" not in text
    if examples == "examples uncommented":
        text = re.sub(r"(?m)^# (\w+ = .*)$", r"\1", text)
    meta = tmp_path / "nm.toml"
    meta.write_text(text)
    header = header_file(tmp_path / "in", "NM", "")
    assert main(["-q", "convert", str(header), "--meta", str(meta), "--out", str(tmp_path / "out")]) == 0
    path = tmp_path / "out" / "image" / "NM_multiframe.dcm"
    assert dciodvfy(path).errors == []
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    if examples == "examples uncommented":
        assert list(ds.CorrectedImage) == ["DECY", "ATTN", "SCAT"]
        assert ds.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0].CodeMeaning == "^99m^Technetium"


def test_a_header_that_says_neither_is_pet_with_a_warning_naming_the_flag(tmp_path):
    header = header_file(tmp_path, "nucmed", "")  # GATE's nucmed, no isotope
    modality, warnings = decided(header)
    assert modality == "PT"
    assert warnings == [
        f"{header}: neither its header nor the metadata says PET or NM (no modality, no isotope): "
        "written as PET (PT); say --modality NM or PT (modality = in the metadata) if that is wrong"
    ]


def test_the_user_overrides_the_header(tmp_path):
    spect = header_file(tmp_path / "spect", "NM", "", "isotope name := Tc-99m")
    assert decided(spect, modality="PT") == ("PT", [])
    pet = header_file(tmp_path / "pet", "nucmed", "", "isotope name := F-18")
    assert decided(pet, modality="NM") == ("NM", [])
    meta = tmp_path / "meta.toml"
    meta.write_text('isotope = "In-111"\n')  # the metadata file's isotope over the header's
    assert decided(pet, meta=meta) == ("NM", [])
    meta.write_text('modality = "PT"\n')  # and its modality over the header's isotope
    assert decided(spect, meta=meta) == ("PT", [])


def test_the_isotope_code_of_a_metadata_sequence_decides_too():
    gallium = {"RadiopharmaceuticalInformationSequence": [{"RadionuclideCodeSequence": [
        {"CodeValue": "C-131A3", "CodingSchemeDesignator": "SRT"}]}]}  # fmt: skip
    assert modality_of(gallium, "in.hv") == ("PT", None)
    thallium = {"RadiopharmaceuticalInformationSequence": [{"RadionuclideCodeSequence": [
        {"CodeValue": "60057003", "CodingSchemeDesignator": "SCT"}]}]}  # fmt: skip
    assert modality_of(thallium, "in.hv") == ("NM", None)
    assert modality_of({"isotope": "Xx-1"}, "in.hv")[0] == "PT"  # unknown: resolving the metadata names it


def test_pet_sample_headers_still_give_pet(tmp_path):
    from interfile_data import OWN_IMAGE_SAMPLES, install_sample

    for name, (_, dialect, _, _) in OWN_IMAGE_SAMPLES.items():
        if name.startswith("stir/spect") or dialect == "gate":
            continue
        folder = tmp_path / name.replace("/", "_")
        folder.mkdir()
        header, _ = install_sample(name, folder)
        assert decided(header)[0] == "PT", name
    (tmp_path / "spect").mkdir()
    header, _ = install_sample("stir/spect_osem.hv", tmp_path / "spect")
    assert decided(header) == ("NM", [])


def test_write_interfile_writes_nm_as_stir_does(tmp_path):
    header = write_interfile(tmp_path / "nm.hv", np.ones(SHAPE, np.float32), spacing=(1, 1, 1), metadata={"modality": "NM"})
    text = header.read_text()
    assert "!imaging modality := NM" in text and "!SPECT STUDY (General) :=" in text and "PET" not in text
    assert read_interfile(header).metadata["modality"] == "NM"


# -- corrections and units from the header -------------------------------------------------------


@pytest.mark.parametrize(
    "extra, corrections, decay, warned",
    [
        ("applied corrections := {normalization, measured attenuation correction, model-based scatter correction, "
         "decay correction, frame-length correction}", ["DECY", "ATTN", "SCAT", "NORM"], None, "'frame-length correction'"),
        ("%decay correction := start\nmethod of attenuation correction := measured\n%method of random correction := dlyd",
         ["DECY", "ATTN", "RAN"], "START", None),
        ("%decay correction := none\nmethod of attenuation correction := none\nmethod of scatter correction :=",
         [], "NONE", None),
        ("scatter corrected := Y\nattenuation corrected := N", ["SCAT"], None, None),
        ("applied corrections := {}\nmethod of scatter correction :=", None, None, None),  # says nothing
    ],
)  # fmt: skip
def test_corrections_the_header_states(tmp_path, extra, corrections, decay, warned):
    image = read_interfile(header_file(tmp_path, "PET", "", extra))
    assert image.metadata.get("corrections") == corrections
    assert image.metadata.get("DecayCorrection") == decay
    assert [w for w in image.warnings if "applied corrections:" in w] == ([
        f"{image.header_path}: applied corrections: {warned} is no CorrectedImage term; not listed"] if warned else [])


@pytest.mark.parametrize("unit, term", [("Bq/ml", "BQML"), ("BQML", "BQML"), ("kBq/mL", None), ("counts", "CNTS"),
                                        ("1", None), ("3.7e4", None)])  # fmt: skip
def test_units_the_header_states(tmp_path, unit, term):
    image = read_interfile(header_file(tmp_path, "PET", "", f"quantification units := {unit}"))
    assert image.metadata.get("Units") == term
    assert any("has no DICOM Units term" in w for w in image.warnings) == (unit == "kBq/mL")


def test_a_bad_decay_correction_value_is_named(tmp_path):
    image = read_interfile(header_file(tmp_path, "PET", "", "%decay correction := sometimes"))
    assert "DecayCorrection" not in image.metadata
    assert any("'%decay correction := sometimes': expected one of none, start, admin; ignored" in w for w in image.warnings)


# -- corrections and units from the user -----------------------------------------------------------


@pytest.mark.parametrize(
    "given, terms",
    [(["attenuation", "Scatter", "randoms", "normalisation", "dead time"], ["ATTN", "SCAT", "RAN", "NORM", "DTIM"]),
     (["ATTN", "NORM"], ["ATTN", "NORM"]), ("attenuation", ["ATTN"]), ([], [])],
)  # fmt: skip
def test_corrections_key(given, terms):
    resolved, _ = resolve_metadata({"corrections": given}, "PT")
    assert resolved["CorrectedImage"] == terms and "DecayCorrection" not in resolved


def test_decay_correction_stated_either_way_says_both():
    resolved, notes = resolve_metadata({"corrections": ["decay", "attenuation"]}, "PT")
    assert (resolved["CorrectedImage"], resolved["DecayCorrection"]) == (["DECY", "ATTN"], "START")
    assert notes == ["note: DecayCorrection (0054,1102): START: decay correction stated, to the acquisition start"]
    resolved, _ = resolve_metadata({"DecayCorrection": "ADMIN"}, "PT")
    assert resolved["CorrectedImage"] == ["DECY"]


@pytest.mark.parametrize(
    "meta, message",
    [({"corrections": ["attenuation", "gravity"]}, "corrections: 'gravity' names no correction; use attenuation"),
     ({"corrections": 3}, "corrections: needs a list of corrections"),
     ({"corrections": ["scatter"], "CorrectedImage": ["ATTN"]}, "['SCAT'] disagrees with CorrectedImage ['ATTN']"),
     ({"units": "furlongs"}, "units: 'furlongs' is no unit dcmforge knows; write a Units term such as BQML"),
     ({"units": 1}, "units: 1 is no unit"),
     ({"units": "counts", "Units": "BQML"}, "units: 'counts' disagrees with Units 'BQML' given as well")],
)  # fmt: skip
def test_bad_statements_are_named(meta, message):
    with pytest.raises(MetadataError, match=None) as raised:
        resolve_metadata(meta, "PT")
    assert message in str(raised.value)


@pytest.mark.parametrize("spelling, term", [("BQML", "BQML"), ("Bq/ml", "BQML"), ("Bq/mL", "BQML"), ("bq/cc", "BQML"),
                                            ("counts", "CNTS"), ("{counts}", "CNTS"), ("CPS", "CPS"),
                                            ("propcnts", "PROPCNTS"), ("%", "PCNT")])  # fmt: skip
def test_units_key(spelling, term):
    assert resolve_metadata({"units": spelling}, "PT")[0]["Units"] == term


def test_ct_takes_no_emission_statements():
    resolved, notes = resolve_metadata({"units": "BQML", "corrections": ["attenuation"]}, "CT")
    assert "Units" not in resolved and "CorrectedImage" not in resolved
    assert [n for n in notes if n.startswith("note: units")] and check_metadata({}, "CT") == []


# -- a PET with no word about them claims nothing ------------------------------------------------


def test_a_pet_with_no_word_about_corrections_or_units_claims_neither(tmp_path):
    header = header_file(tmp_path, "PET", "", "isotope name := F-18")
    result = convert_one(header, tmp_path / "out", {"seed": "honest"})
    assert result.status == "converted", result.message
    assert [w.split(":")[0] for w in result.warnings if "not in the input" in w] == ["units", "corrections"]
    assert any('set units = "BQML"' in w for w in result.warnings)
    assert any("set corrections = [" in w for w in result.warnings)
    files = sorted((tmp_path / "out").iterdir())
    ds = pydicom.dcmread(files[0])
    assert (ds.Units, ds.CorrectedImage, ds.DecayCorrection) == ("PROPCNTS", "", "NONE")
    assert "DecayFactor" not in ds
    assert dciodvfy(files[0]).errors == []


def test_a_pet_whose_header_states_them_says_them_without_a_warning(tmp_path):
    extra = ("isotope name := F-18\nquantification units := Bq/ml\n%decay correction := start\n"
             "applied corrections := {measured attenuation correction, decay correction}")  # fmt: skip
    result = convert_one(header_file(tmp_path, "PET", "", extra), tmp_path / "out", {"seed": "honest"})
    assert result.status == "converted", result.message
    assert not [w for w in result.warnings if "not in the input" in w]
    ds = pydicom.dcmread(sorted((tmp_path / "out").iterdir())[0])
    assert (ds.Units, list(ds.CorrectedImage), ds.DecayCorrection) == ("BQML", ["DECY", "ATTN"], "START")
    assert float(ds.DecayFactor) >= 1


def test_the_metadata_file_states_over_the_header(tmp_path):
    extra = "quantification units := Bq/ml\n%decay correction := start\napplied corrections := {attenuation correction}"
    header = header_file(tmp_path, "PET", "", "isotope name := F-18\n" + extra)
    meta = tmp_path / "meta.toml"
    meta.write_text('units = "counts"\ncorrections = ["scatter"]\n')
    result = convert_one(header, tmp_path / "out", {"meta": meta})
    assert result.status == "converted", result.message
    ds = pydicom.dcmread(sorted((tmp_path / "out").iterdir())[0])
    assert (ds.Units, ds.CorrectedImage, ds.DecayCorrection) == ("CNTS", "SCAT", "NONE")


# -- no header key crashes the reader ------------------------------------------------------------

_KEYS = ["applied corrections", "method of attenuation correction", "method of scatter correction",
         "%method of random correction", "%decay correction", "scatter corrected", "attenuation corrected",
         "decay corrected", "quantification units", "!imaging modality", "isotope name", "!SPECT STUDY (general)",
         "!PET STUDY (General)"]  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(["", "none", "start", "ADMIN", "Y", "N", "{}", "{a, b}", "{decay correction,", "Bq/ml", "NM",
                     "nucmed", "^99m^Technetium", "F-18", "1", "-0", "{", "}", ","]),  # fmt: skip
    st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=20),
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_KEYS), _VALUES), max_size=6))
def test_the_new_header_keys_never_crash(entries):
    text = "!INTERFILE :=\n" + "".join(f"{key} := {value}\n" for key, value in entries) + "!END OF INTERFILE :=\n"
    try:
        header = parse_header(text, source="fuzz.hv")
    except DcmforgeError:
        return
    warnings = []
    meta = metadata_from_header(header, "stir", Path("fuzz.hv"), Path("fuzz.v"), 1, warnings)
    modality, _ = modality_of(meta, "fuzz.hv")
    assert modality in ("PT", "NM", "CT")
    try:
        resolve_metadata({k: v for k, v in meta.items() if k != "modality"}, modality if modality != "NM" else "PT")
    except DcmforgeError:
        pass
