"""The command's habits (issue 20): -o, -q/-v after the command as before it, results on stdout and each
warning on stderr naming its input, a progress bar that moves within one large input, defaults in --help,
and no study-date warning when the metadata file gives the acquisition time."""

import io
import re
import sys

import numpy as np
import pytest

from dcmforge.cli import main
from dcmforge.readers.interfile import write_interfile


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def run(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def undated(tmp_path):
    """A STIR header with neither a study date nor an isotope: dcmforge warns about both."""
    return write_interfile(tmp_path / "recon.hv", np.ones((3, 4, 5), np.float32), spacing=(2, 2, 2))


def test_short_out_option(tmp_path, capsys, undated):
    status, out, _ = run(capsys, "convert", undated, "-o", tmp_path / "dicom")
    assert status == 0 and len(list((tmp_path / "dicom" / "recon").iterdir())) == 3


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_before_or_after_the_command(tmp_path, capsys, undated, where):
    options = ["convert", undated, "-o", tmp_path / "dicom"]
    status, out, err = run(capsys, *(["-q", *options] if where == "before" else [*options, "-q"]))
    assert status == 0 and out == "" and err == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_before_or_after_the_command(tmp_path, capsys, undated, where):
    options = ["convert", undated, "-o", tmp_path / "dicom"]
    status, out, _ = run(capsys, *(["-v", *options] if where == "before" else [*options, "-v"]))
    lines = out.splitlines()
    assert status == 0 and len(lines) == 2
    assert lines[1].startswith("  2.25.") and "3 files" in lines[1]


def test_results_on_stdout_warnings_on_stderr_each_naming_its_input(tmp_path, capsys, undated):
    status, out, err = run(capsys, "convert", undated, "-o", tmp_path / "dicom")
    assert status == 0
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith(f"{undated} -> ")] and out
    assert "warning:" not in out
    warnings = err.splitlines()
    assert any("modification time" in line for line in warnings)
    assert any("DecayCorrection NONE" in line for line in warnings)
    assert all(line.startswith(f"{undated}: warning: ") for line in warnings), err


def test_no_study_date_warning_when_the_metadata_gives_the_acquisition_time(tmp_path, capsys, undated):
    meta = tmp_path / "patient.toml"
    meta.write_text('acquisition_datetime = "2025-01-31T10:45:00"\n')
    status, _, err = run(capsys, "convert", undated, "-o", tmp_path / "dicom", "--meta", meta)
    assert status == 0
    assert "modification time" not in err and "no usable study date" not in err
    assert "DecayCorrection NONE" in err  # what is still true is still said


def test_the_progress_bar_counts_the_images_of_one_large_input(tmp_path, monkeypatch):
    header = write_interfile(tmp_path / "long.hv", np.ones((400, 80, 80), np.float32), spacing=(2, 2, 2))
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main(["convert", str(header), "-o", str(tmp_path / "dicom")]) == 0
    drawn = terminal.getvalue()
    partial = [int(count) for count in re.findall(r"long\.hv: (\d+)/400 images", drawn)]
    assert partial and min(partial) < 400, drawn[:300]  # the bar moved before the input was done
    assert "[" + "#" * 30 + "] 1/1" in drawn


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 1)" in text  # --jobs
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    assert "(default: the file's, else by its isotope, else PT)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("columns", [50, 150])
def test_help_and_usage_errors_fit_the_terminal(capsys, monkeypatch, columns):
    """The parsers are built with a fixed-width formatter (shutil's imports spared); what they print is what
    argparse prints at the terminal's width."""
    from dcmforge import cli

    monkeypatch.setenv("COLUMNS", str(columns))
    for argv in (["convert", "--help"], ["convert"], ["--help"], ["send", "--help"]):
        printed = []
        for checking in (cli._DefaultsShown, cli._CheckingFormatter):  # the first: built at the width throughout
            monkeypatch.setattr(cli, "_CheckingFormatter", checking)
            with pytest.raises(SystemExit):
                main(argv)
            printed.append(capsys.readouterr())
        assert printed[0] == printed[1], argv


def test_a_run_builds_its_commands_parser_only(capsys, monkeypatch):
    """``dcmforge [-q] convert ...`` builds the convert parser alone (a one-file run's start-up); with no
    command, or one misspelt, every command is built and listed."""
    from dcmforge import cli

    built = []
    monkeypatch.setattr(cli, "_COMMANDS", {name: lambda commands, add=add, name=name: built.append(name) or add(commands)
                                           for name, add in cli._COMMANDS.items()})  # fmt: skip
    with pytest.raises(SystemExit):
        main(["-q", "convert", "--help"])
    assert built == ["convert"]
    built.clear()
    with pytest.raises(SystemExit):
        main(["-q", "convrt", "x"])
    assert built == ["convert", "send", "echo", "demo", "preview", "template", "check"]
    assert "invalid choice: 'convrt' (choose from 'convert', 'send', 'echo'" in capsys.readouterr().err
