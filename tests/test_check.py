"""One validation (issue 20): ``dcmforge check`` refuses exactly what ``convert`` refuses (the same code,
convert.refusal), takes an input image with its --meta too, and the template converts as it is printed."""

import numpy as np
import pytest

from dcmforge.cli import main
from dcmforge.readers.interfile import write_interfile

DECAY_WITHOUT_ISOTOPE = 'DecayCorrection = "START"\n'
WITH_ISOTOPE = 'isotope = "F-18"\nDecayCorrection = "START"\n'
NOT_ENHANCED = 'isotope = "F-18"\n'  # Enhanced PET needs the radiopharmaceutical's code as well


def run(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def header(tmp_path):
    """An input whose header gives no isotope (as CASToR and many STIR images)."""
    return write_interfile(tmp_path / "recon.hv", np.ones((3, 4, 5), np.float32), spacing=(2, 2, 2))


def test_the_template_checks_and_converts_as_printed_for_a_header_without_isotope(tmp_path, capsys, header):
    status, text, _ = run(capsys, "template", "pet")
    meta = tmp_path / "patient.toml"
    meta.write_text(text)
    assert run(capsys, "check", meta)[0] == 0
    assert run(capsys, "check", header, "--meta", meta)[0] == 0
    status, out, err = run(capsys, "convert", header, "--meta", meta, "-o", tmp_path / "dicom")
    assert status == 0, err
    assert "DecayCorrection NONE" in err  # and it says what it wrote instead


def test_the_nm_template_checks_and_converts_as_printed(tmp_path, capsys, header):
    """check --modality NM judges the file's own values; the modules the NM writer derives (detector geometry,
    energy windows, rotations) are the writer's, run on a stand-in by check as by convert."""
    status, text, _ = run(capsys, "template", "nm")
    meta = tmp_path / "spect.toml"
    meta.write_text(text)
    status, _, err = run(capsys, "check", meta, "--modality", "NM")
    assert status == 0, err
    assert run(capsys, "check", header, "--meta", meta, "--modality", "NM")[0] == 0
    status, out, err = run(capsys, "convert", header, "--meta", meta, "--modality", "NM", "-o", tmp_path / "dicom")
    assert status == 0, err
    assert [p.name for p in (tmp_path / "dicom" / "recon").iterdir()] == ["NM_multiframe.dcm"]
    meta.write_text(text + 'StudyDate = "2025"\n')
    status, out, err = run(capsys, "check", meta, "--modality", "NM")
    assert status == 2 and "StudyDate (0008,0020)" in out + err


@pytest.mark.parametrize(
    "text, multiframe",
    [(DECAY_WITHOUT_ISOTOPE, False), (WITH_ISOTOPE, False), (NOT_ENHANCED, False), (NOT_ENHANCED, True),
     ('PatientWeight = 70.0\n', True)],
)  # fmt: skip
def test_check_refuses_exactly_what_convert_refuses(tmp_path, capsys, header, text, multiframe):
    meta = tmp_path / "meta.toml"
    meta.write_text(text)
    more = ["--multiframe"] if multiframe else []
    converted, _, convert_err = run(capsys, "convert", header, "--meta", meta, "-o", tmp_path / "dicom", *more)
    alone, alone_out, alone_err = run(capsys, "check", meta, *more)
    with_input, _, input_err = run(capsys, "check", header, "--meta", meta, *more)
    assert alone == with_input == converted, (convert_err, alone_out + alone_err, input_err)
    if converted:  # the same one line, naming the metadata file or the input
        refused = convert_err.strip().splitlines()[-1].split(": ", 1)[1]
        assert refused in alone_err and refused in input_err


def test_check_names_the_decay_factor_a_metadata_file_alone_cannot_give(tmp_path, capsys):
    meta = tmp_path / "meta.toml"
    meta.write_text(DECAY_WITHOUT_ISOTOPE)
    status, out, err = run(capsys, "check", meta)
    assert status == 2
    assert f"{meta}: DecayFactor (0054,1321) is required when DecayCorrection is START" in err


def test_check_of_an_input_alone(capsys, header):
    status, out, err = run(capsys, "check", header)
    assert status == 0 and out == f"{header}: convert takes it\n"
    assert all(line.startswith(f"{header}: warning: ") for line in err.splitlines()), err


def test_check_of_a_dynamic_metadata_file(tmp_path, capsys):
    meta = tmp_path / "dynamic.toml"
    meta.write_text('isotope = "F-18"\nacquisition_datetime = "2025-01-31T10:45:00"\nframe_duration = [60, 60, 120]\n')
    assert run(capsys, "check", meta)[0] == 0
