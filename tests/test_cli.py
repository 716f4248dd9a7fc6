"""End-to-end tests of the dcmforge command (issue 5): convert, demo, template, check.

Most cases call ``dcmforge.cli.main`` in this process; exit codes, the demo,
the progress bar on a real (pseudo-)terminal, ``--jobs`` and the J-PET
migration run the command in a subprocess (``python -m dcmforge.cli``).
``--jobs`` always runs in a subprocess: a forked worker of this pytest process
would be killed if an earlier test had started numba's OpenMP threads here.

The sample headers and J-PET metadata files are the suite's own (tests/data);
the data files behind the headers are made up (sparse, with marker voxels) by
the helpers of interfile_data.py.
"""

import contextlib
import io
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dcmforge.cli import main
from dcmforge.readers.interfile import write_interfile

import dicom_tools
from terminal import read_until_closed
from worker_killer import worker_killer
from testdata import get_testdata_file
from interfile_data import (
    IMAGE_SAMPLES,
    METAHEADER_FRAMES,
    METAHEADER_SAMPLE,
    PROJECTION_SAMPLES,
    SHARED_SAMPLES,
    castor_header,
    install_metaheader_frames,
    sample_path,
    stir_header,
    write_image,
    write_marker_data,
)

REPO = Path(__file__).resolve().parents[1]
JPET_METADATA = get_testdata_file("jpet")

PROJECTION_MESSAGE = "is projection data (sinogram/list mode), not an image"

# Spec 4.1, STIR images: ImageOrientationPatient, and ImagePositionPatient of slice k as a function of
# the STIR coordinates (X0, Y0, Z0 + k d3) of the first voxel of that slice.
STIR_TABLE = {
    "HFS": ((1, 0, 0, 0, 1, 0), lambda x, y, z: (x, y, -z)),
    "HFP": ((-1, 0, 0, 0, -1, 0), lambda x, y, z: (-x, -y, -z)),
    "FFS": ((-1, 0, 0, 0, 1, 0), lambda x, y, z: (-x, y, z)),
    "FFP": ((1, 0, 0, 0, -1, 0), lambda x, y, z: (x, -y, z)),
}
STIR_KEYS = {"HFS": ("head_in", "supine"), "HFP": ("head_in", "prone"),
             "FFS": ("feet_in", "supine"), "FFP": ("feet_in", "prone")}  # fmt: skip
# What the PET orientation code sequences say for each position (CodeMeaning).
ORIENTATION_WORDS = {"HFS": ("headfirst", "supine"), "HFP": ("headfirst", "prone"),
                     "FFS": ("feet-first", "supine"), "FFP": ("feet-first", "prone")}  # fmt: skip

# Read from the STIR/SIRF sample headers (all head_in/supine or unknown, so HFS):
# (X0, Y0, Z0) = first pixel offset (mm), else STIR's default -floor(n/2) d in x and y and 0 in z; d3.
STIR_SAMPLE_GEOMETRY = {
    "sirf/emission_fdg.hv": ((-16.0, -16.0, 0.0), 6.75),
    "sirf/mu_map.hv": ((-40.625, -40.625, 0.0), 6.75),
    "sirf/recon_pmqp.hv": ((-5 * 4.44114, -5 * 4.44114, 0.0), 3.375),
    "stir/odd_default.hv": ((-5 * 3.1088, -5 * 3.1088, 0.0), 3.375),
    "stir/spect_osem.hv": ((-28.6, -28.6, 0.0), 4.4),
    "stir/template.hv": ((-8.8, -8.8, 0.0), 1.1),
}
SHARED_STIR_SAMPLE_GEOMETRY = {
    "shared/sirf/attenuation.hv": ((-240.933, -240.933, 0.0), 6.75),
    "shared/sirf/emission.hv": ((-105.0, -105.0, 0.0), 6.75),
    "shared/sirf/test_image_PM_QP_6.hv": ((-30 * 4.44114, -30 * 4.44114, 0.0), 3.375),
    "shared/stir/OSEM_2DPSF_16.hv": ((-212.477, -212.477, 0.0), 3.32),
    "shared/stir/RPTsens_seg3_PM.hv": ((-30 * 4.44114, -30 * 4.44114, 0.0), 3.375),
    "shared/stir/init.hv": ((-30 * 4.44114, -30 * 4.44114, 0.0), 3.27),
    "shared/stir/template_image.hv": ((-70.4, -70.4, 0.0), 1.1),
    "shared/stir/test_image_3.hv": ((-48 * 3.1088, -48 * 3.1088, 0.0), 3.375),
    "shared/stir/test_image_OSSPS_PM_QP_8.hv": ((-133.234, -133.234, 0.0), 3.375),
}
if SHARED_SAMPLES:
    STIR_SAMPLE_GEOMETRY.update(SHARED_STIR_SAMPLE_GEOMETRY)
# Headers whose image dcmforge centres on the scanner axis (CASToR by its convention, GATE by assumption).
CENTRED_SAMPLES = ("castor/bare.hdr", "castor/osem_it4.hdr", METAHEADER_SAMPLE, "gate/activity_u16.h33", "gate/cube.h33")


# --- helpers -------------------------------------------------------------------------------------


def run(capsys, *args):
    """main(args) in this process: (exit status, stdout, stderr)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def command_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    return env


def run_command(*args, cwd=None, env=None):
    """``python -m dcmforge.cli args`` in a subprocess, output piped."""
    return subprocess.run(
        [sys.executable, "-m", "dcmforge.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env or command_env(), timeout=300,
    )  # fmt: skip


def run_on_terminal(*args, cwd=None):
    """``python -m dcmforge.cli args`` with stdout and stderr on a pseudo-terminal: (status, what it shows)."""
    master, slave = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "dcmforge.cli", *map(str, args)],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=cwd, env=command_env(),
    ) as process:  # fmt: skip
        os.close(slave)
        received = read_until_closed(master)
        status = process.wait(timeout=300)
    os.close(master)
    return status, received.decode(errors="replace")


def visible_lines(terminal_text):
    """The lines as a terminal leaves them: a carriage return goes back to the start of the line."""
    lines = terminal_text.replace("\r\n", "\n").split("\n")
    shown = []
    for line in lines:
        parts = line.split("\r")
        text = ""
        for part in parts:  # each part overwrites the start of what is there
            text = part + text[len(part) :]
        shown.append(text)
    return shown


def install(name, folder):
    """The sample header name copied into folder with a synthetic data file; returns (header, markers)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    header = folder / Path(name).name
    shutil.copyfile(sample_path(name), header)
    if name == METAHEADER_SAMPLE:
        return header, install_metaheader_frames(folder)
    if name in IMAGE_SAMPLES:
        data, _, shape, dtype = IMAGE_SAMPLES[name]
        return header, write_marker_data(folder / data, shape, dtype)
    return header, {}


def series_files(folder):
    return sorted(Path(folder).glob("*.dcm"))


def values(dataset):
    """The slice's values as written: stored pixels x slope + intercept."""
    return dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)


def read_sitk(folder):
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    assert len(names) == len(series_files(folder))
    reader.SetFileNames(names)
    return reader.Execute()


def direction_columns(image):
    """SimpleITK's direction as a 3x3 array whose columns are the LPS directions of +i, +j, +k."""
    return np.array(image.GetDirection()).reshape(3, 3)


def assert_markers_in_files(files, slices, markers):
    """Every slice that holds a marker is zero but for its markers (file f*slices + z for voxel (f,) z, y, x)."""
    by_file = {}
    for voxel, value in markers.items():
        *frame, z, y, x = voxel
        number = (frame[0] if frame else 0) * slices + z
        by_file.setdefault(number, []).append(((y, x), value))
    for number, found in by_file.items():
        dataset = pydicom.dcmread(files[number])
        got = values(dataset)
        expected = np.zeros_like(got)
        for place, value in found:
            expected[place] = value
        assert np.allclose(got, expected, atol=1e-3 * max(v for _, v in found)), (files[number], found)


def expected_stir_positions(position, first, d3, slices):
    """IPP of every slice, and IOP, by the table of spec 4.1."""
    orientation, to_lps = STIR_TABLE[position]
    x0, y0, z0 = first
    return np.array([to_lps(x0, y0, z0 + k * d3) for k in range(slices)]), np.array(orientation, float)


def failure_lines(err, header):
    return [line for line in err.splitlines() if str(header) in line]


# --- every sample --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def converted_samples(tmp_path_factory):
    """Every image sample (with its made-up data) converted by one command: the samples' own folders
    under in/, the series under out/. Returns (status, stdout, stderr, {name: (header, markers, out folder)})."""
    root = tmp_path_factory.mktemp("samples")
    installed = {}
    for name in sorted(IMAGE_SAMPLES) + [METAHEADER_SAMPLE]:
        header, markers = install(name, root / "in" / Path(name).parent)
        installed[name] = (header, markers, root / "out" / header.stem)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["convert", *(str(h) for h, _, _ in installed.values()), "--out", str(root / "out"),
                       "--seed", "samples"])  # fmt: skip
    return status, out.getvalue(), err.getvalue(), installed


# SPECT reconstructions among the samples (nucmed with a !SPECT STUDY section): one NM file each.
NM_SAMPLES = ("stir/spect_osem.hv", "shared/stir/OSEM_2DPSF_16.hv")


def nm_frames(folder):
    """(the NM file's dataset, its frames' values [frame, y, x]) of an NM sample's series folder."""
    assert [f.name for f in series_files(folder)] == ["NM_multiframe.dcm"]
    dataset = pydicom.dcmread(folder / "NM_multiframe.dcm")
    return dataset, values(dataset).reshape(-1, dataset.Rows, dataset.Columns)


def sample_slices(name):
    if name == METAHEADER_SAMPLE:
        return 3, METAHEADER_FRAMES  # interfile_data.FRAME_SHAPE is (3, 4, 5)
    return IMAGE_SAMPLES[name][2][0], 1


def test_every_image_sample_converts_with_a_summary_line(converted_samples):
    status, out, err, installed = converted_samples
    assert status == 0, err
    for name, (header, _, folder) in installed.items():
        slices, frames = sample_slices(name)
        files = series_files(folder)
        summary = [line for line in out.splitlines() if line.startswith(f"{header} -> ")]
        assert len(summary) == 1, name
        if name in NM_SAMPLES:  # the header says SPECT: one NM Image file
            assert nm_frames(folder)[1].shape[0] == slices, name
            assert summary[0].startswith(f"{header} -> {folder}: 1 NM file, ")
            continue
        assert len(files) == slices * frames, name
        assert [f.name for f in files] == [f"PT_{n:04d}.dcm" for n in range(1, slices * frames + 1)]
        # where, how many files, geometry (size and voxel size), convention
        assert summary[0].startswith(f"{header} -> {folder}: {slices * frames} PT files, ")
        assert re.search(r"\d+x\d+x\d+(x\d+)? voxels of [\d.]+x[\d.]+x[\d.]+ mm; \w", summary[0]), summary[0]
    assert "x".join(map(str, (5, 4, 3, METAHEADER_FRAMES))) + " voxels" in out  # the dynamic one


@pytest.mark.parametrize("name", sorted(IMAGE_SAMPLES) + [METAHEADER_SAMPLE])
def test_sample_markers_land_on_their_pixels(converted_samples, name):
    header, markers, folder = converted_samples[3][name]
    if name in NM_SAMPLES:  # STIR's slices run to the feet: the NM frames run the other way (to the head)
        _, frames = nm_frames(folder)
        expected = np.zeros_like(frames)
        for (z, y, x), value in markers.items():
            expected[len(frames) - 1 - z, y, x] = value
        assert np.allclose(frames, expected, atol=1e-3 * max(markers.values()))
        return
    assert_markers_in_files(series_files(folder), sample_slices(name)[0], markers)


@pytest.mark.parametrize("name", ["stir/odd_default.hv", "castor/bare.hdr", "gate/activity_u16.h33", METAHEADER_SAMPLE])
def test_sample_series_pass_dciodvfy(converted_samples, name):
    files = series_files(converted_samples[3][name][2])
    for path in (files[0], files[-1]):
        report = dicom_tools.dciodvfy(path)
        assert report.errors == [], report.output
    report = dicom_tools.dcentvfy(files)
    assert report.errors == [], report.output


def test_dynamic_sample_is_one_dynamic_series(converted_samples):
    files = series_files(converted_samples[3][METAHEADER_SAMPLE][2])
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert {d.NumberOfTimeSlices for d in datasets} == {METAHEADER_FRAMES}
    assert {d.SeriesInstanceUID for d in datasets} == {datasets[0].SeriesInstanceUID}
    assert [d.ImageIndex for d in datasets] == list(range(1, 3 * METAHEADER_FRAMES + 1))
    assert {d.ActualFrameDuration for d in datasets} == {60000}
    assert datasets[0].SeriesType[0] == "DYNAMIC"


@pytest.mark.parametrize("name", sorted(STIR_SAMPLE_GEOMETRY))
def test_stir_sample_positions_follow_the_spec(converted_samples, name):
    first, d3 = STIR_SAMPLE_GEOMETRY[name]
    files = series_files(converted_samples[3][name][2])
    if name in NM_SAMPLES:  # one NM file: its first frame is STIR's last slice (frames run to the head)
        dataset, frames = nm_frames(converted_samples[3][name][2])
        positions, orientation = expected_stir_positions("HFS", first, d3, len(frames))
        (detector,) = dataset.DetectorInformationSequence
        assert np.allclose([float(v) for v in detector.ImageOrientationPatient], orientation)
        assert np.allclose([float(v) for v in detector.ImagePositionPatient], positions[-1], atol=1e-3)
        assert float(dataset.SpacingBetweenSlices) == pytest.approx(d3)
        return
    positions, orientation = expected_stir_positions("HFS", first, d3, len(files))
    for k in {0, len(files) - 1}:
        dataset = pydicom.dcmread(files[k], stop_before_pixels=True)
        assert np.allclose([float(v) for v in dataset.ImageOrientationPatient], orientation)
        assert np.allclose([float(v) for v in dataset.ImagePositionPatient], positions[k], atol=1e-3), k


@pytest.mark.parametrize("name", CENTRED_SAMPLES)
def test_castor_and_gate_samples_are_centred_on_the_scanner_axis(converted_samples, name):
    files = series_files(converted_samples[3][name][2])
    slices = sample_slices(name)[0]
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    last = pydicom.dcmread(files[slices - 1], stop_before_pixels=True)
    row, column = np.array(first.ImageOrientationPatient[:3], float), np.array(first.ImageOrientationPatient[3:], float)
    assert np.allclose(row, (1, 0, 0)) and np.allclose(column, (0, -1, 0))  # y up -> anterior for HFS
    dy, dx = map(float, first.PixelSpacing)
    to_centre = (first.Columns - 1) / 2 * dx * row + (first.Rows - 1) / 2 * dy * column
    centre = (np.array(first.ImagePositionPatient, float) + np.array(last.ImagePositionPatient, float)) / 2 + to_centre
    assert np.allclose(centre, 0, atol=1e-3), centre
    assert float(last.ImagePositionPatient[2]) > float(first.ImagePositionPatient[2])  # slices go to the head


# --- projection data and bad input ---------------------------------------------------------------


@pytest.mark.parametrize("name", PROJECTION_SAMPLES)
def test_projection_samples_are_refused(tmp_path, capsys, name):
    header, _ = install(name, tmp_path)
    status, out, err = run(capsys, "convert", header, "--out", tmp_path / "out")
    assert status == 2
    lines = failure_lines(err, header)
    assert len(lines) == 1 and PROJECTION_MESSAGE in lines[0], err
    assert str(header) not in out
    assert not (tmp_path / "out").exists()


def good_input(folder):
    """A small valid STIR image with markers; returns (header, markers)."""
    header = Path(folder) / "good.hv"
    header.write_text(stir_header((3, 4, 5), data="good.v", first_pixel=(-4.0, -3.0, 0.0)))
    return header, write_marker_data(Path(folder) / "good.v", (3, 4, 5), "<f4")


def _malformed(folder):
    text = stir_header((3, 4, 5), data="bad.v").replace("!matrix size [2] := 4", "!matrix size [2] := four")
    return write_image(folder, "bad.hv", text, np.ones((3, 4, 5)))


def _missing_key(folder):
    text = stir_header((3, 4, 5), data="bad.v").replace("!matrix size [2] := 4\n", "")
    return write_image(folder, "bad.hv", text, np.ones((3, 4, 5)))


def _short_data(folder):
    return write_image(folder, "bad.hv", stir_header((3, 4, 5), data="bad.v"), np.ones((3, 4, 4)))


def _long_data(folder):
    return write_image(folder, "bad.hv", stir_header((3, 4, 5), data="bad.v"), np.ones(61))


def _unknown_number_format(folder):
    return write_image(folder, "bad.hv", stir_header((3, 4, 5), data="bad.v", number_format="complex"),
                       np.ones((3, 4, 5)))  # fmt: skip


def _binary_file(folder):
    header = Path(folder) / "bad.hv"
    header.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100))
    return header


def _text_file(folder):
    header = Path(folder) / "bad.hv"
    header.write_text("Dear user,\nthis is a letter, not an image header.\n")
    return header


def _missing_file(folder):
    return Path(folder) / "bad.hv"


# (make the bad header in a folder, patterns its one error line must match)
BAD_INPUTS = {
    "malformed value": (_malformed, [r"line 2\d: '!matrix size \[2\] := four'", "not a number"]),
    "missing key": (_missing_key, [r"no 'matrix size \[2\]' key"]),
    "short data file": (_short_data, [r"bad\.v: the data file has 192 bytes but the header .*bad\.hv needs 240"]),
    "long data file": (_long_data, [r"bad\.v: the data file has 244 bytes but the header .*bad\.hv describes 240",
                                    "do not match"]),  # fmt: skip
    "unknown number format": (_unknown_number_format, [r"line \d+: '!number format := complex'",
                                                       "unknown number format"]),  # fmt: skip
    "binary file": (_binary_file, [r"line \d+", "not an Interfile header"]),
    "text file": (_text_file, ["no 'key := value' line found: this is not an Interfile header"]),
    "missing header file": (_missing_file, ["cannot read the Interfile header"]),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_is_one_named_line_exit_2_and_the_others_still_convert(tmp_path, capsys, kind):
    make, patterns = BAD_INPUTS[kind]
    good, markers = good_input(tmp_path)
    bad = make(tmp_path)
    status, out, err = run(capsys, "convert", bad, good, "--out", tmp_path / "out")
    assert status == 2
    lines = failure_lines(err, bad)
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{bad}: ")
    for pattern in patterns:
        assert re.search(pattern, lines[0]), (pattern, lines[0])
    assert not (tmp_path / "out" / "bad").exists()  # nothing written for the bad input
    assert str(bad) not in out
    # the good one, given after it, converted
    assert f"{good} -> {tmp_path / 'out' / 'good'}: 3 PT files" in out
    assert_markers_in_files(series_files(tmp_path / "out" / "good"), 3, markers)


def test_a_volume_that_cannot_be_stored_leaves_no_files(tmp_path, capsys):
    volume = np.ones((3, 4, 5), np.float32)
    volume[2, 1, 3] = np.nan
    bad = write_image(tmp_path, "nan.hv", stir_header((3, 4, 5), data="nan.v"), volume)
    good, _ = good_input(tmp_path)
    status, out, err = run(capsys, "convert", good, bad, "--out", tmp_path / "out")
    assert status == 2
    lines = failure_lines(err, bad)
    assert len(lines) == 1 and "nan" in lines[0].lower() and "row 1, column 3" in lines[0], err
    assert not any(p.is_file() for p in (tmp_path / "out" / "nan").rglob("*"))
    assert len(series_files(tmp_path / "out" / "good")) == 3


def test_bad_option_value_is_exit_2_for_every_input(tmp_path, capsys):
    good, _ = good_input(tmp_path)
    status, out, err = run(capsys, "convert", good, "--flip", "xq", "--out", tmp_path / "out")
    assert status == 2
    assert "flip" in failure_lines(err, good)[0]
    assert not (tmp_path / "out").exists()


def test_unexpected_failure_is_exit_1_and_names_the_input(tmp_path, capsys):
    good, _ = good_input(tmp_path)
    (tmp_path / "out").write_text("a file where a folder of the output folder's path should go")
    status, out, err = run(capsys, "convert", good, "--out", tmp_path / "out" / "below")
    assert status == 1
    lines = failure_lines(err, good)
    assert len(lines) == 1 and "Error" in lines[0], err


def test_durable_syncs_the_series_files_and_folders(tmp_path, capsys, monkeypatch):
    good, _ = good_input(tmp_path)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    assert run(capsys, "convert", good, "--out", tmp_path / "plain")[0] == 0
    assert synced == []
    assert run(capsys, "convert", good, "--out", tmp_path / "durable", "--durable")[0] == 0
    files = series_files(tmp_path / "durable" / "good")
    assert len(files) == 3 and len(synced) == len(files) + 2  # each file, the folder before its rename, its parent


def test_second_run_needs_overwrite_and_keeps_the_first_series(tmp_path, capsys):
    good, _ = good_input(tmp_path)
    assert run(capsys, "convert", good, "--out", tmp_path / "out", "--seed", "a")[0] == 0
    before = [f.read_bytes() for f in series_files(tmp_path / "out" / "good")]
    status, out, err = run(capsys, "convert", good, "--out", tmp_path / "out", "--seed", "b")
    assert status == 2
    assert f"{tmp_path / 'out' / 'good'} exists" in failure_lines(err, good)[0] and "overwrite" in err
    assert [f.read_bytes() for f in series_files(tmp_path / "out" / "good")] == before
    assert run(capsys, "convert", good, "--out", tmp_path / "out", "--seed", "b", "--overwrite")[0] == 0
    after = series_files(tmp_path / "out" / "good")
    assert len(after) == 3 and after[0].read_bytes() != before[0]


def test_inputs_with_the_same_name_get_folders_named_by_their_paths(tmp_path, capsys):
    headers = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        headers.append(good_input(tmp_path / folder)[0])
    status, out, err = run(capsys, "convert", *headers, "--out", tmp_path / "out")
    assert status == 0, err
    assert f"{headers[0]} -> {tmp_path / 'out' / 'one_good'}:" in out
    assert f"{headers[1]} -> {tmp_path / 'out' / 'two_good'}:" in out
    assert len(series_files(tmp_path / "out" / "one_good")) == len(series_files(tmp_path / "out" / "two_good")) == 3


def test_every_input_gets_its_own_folder(tmp_path, capsys):
    headers = []
    for folder in ("one", "two", "."):
        (tmp_path / folder).mkdir(exist_ok=True)
        good, _ = good_input(tmp_path / folder)
        headers.append(good.rename(good.with_name("img-2.hv" if folder == "." else "img.hv")))
    status, out, err = run(capsys, "convert", *headers, "--out", tmp_path / "out")
    folders = {line.split(" -> ")[1].split(":")[0] for line in out.splitlines() if " -> " in line}
    assert status == 0, err
    assert len(folders) == 3


def test_seeded_uids_differ_between_the_inputs_of_one_command(tmp_path, capsys):
    headers = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        headers.append(good_input(tmp_path / folder)[0])
    assert run(capsys, "convert", *headers, "--out", tmp_path / "out", "--seed", "s")[0] == 0
    first, second = ([pydicom.dcmread(f, stop_before_pixels=True) for f in series_files(tmp_path / "out" / name)]
                     for name in ("one_good", "two_good"))  # fmt: skip
    assert first[0].SeriesInstanceUID != second[0].SeriesInstanceUID
    assert not {d.SOPInstanceUID for d in first} & {d.SOPInstanceUID for d in second}


def test_bad_metadata_file_in_convert_is_named(tmp_path, capsys):
    good, _ = good_input(tmp_path)
    meta = tmp_path / "meta.toml"
    meta.write_text('PatientWieght = 70\n')
    status, out, err = run(capsys, "convert", good, "--meta", meta, "--out", tmp_path / "out")
    assert status == 2
    assert "PatientWieght" in err and "did you mean PatientWeight" in err
    assert not (tmp_path / "out").exists()
    assert str(meta) in err


# --- geometry: STIR's four patient positions, CASToR's centred grid ------------------------------


def check_stir_series(folder, position, first, spacing, shape, markers):
    """The series in folder against spec 4.1: IPP/IOP of every file, orientation codes, and in SimpleITK
    the origin, direction, spacing and where each marker voxel is."""
    d1, d2, d3 = spacing
    nz, ny, nx = shape
    files = series_files(folder)
    assert len(files) == nz
    positions, orientation = expected_stir_positions(position, first, d3, nz)
    row, column = orientation[:3], orientation[3:]
    for k, path in enumerate(files):
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        assert np.allclose([float(v) for v in dataset.ImageOrientationPatient], orientation), path
        assert np.allclose([float(v) for v in dataset.ImagePositionPatient], positions[k], atol=1e-4), path
        assert np.allclose([float(v) for v in dataset.PixelSpacing], (d2, d1))
        gantry = dataset.PatientGantryRelationshipCodeSequence[0].CodeMeaning
        lying = dataset.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence[0].CodeMeaning
        assert (gantry, lying) == ORIENTATION_WORDS[position]
    # SimpleITK sorts the slices along the normal row x column: its origin is the lowest slice on it
    image = read_sitk(folder)
    normal = np.cross(row, column)
    lowest = positions[np.argmin(positions @ normal)]
    assert np.allclose(image.GetOrigin(), lowest, atol=1e-4)
    assert np.allclose(direction_columns(image), np.column_stack([row, column, normal]))
    assert np.allclose(image.GetSpacing(), spacing)
    array = sitk.GetArrayViewFromImage(image)
    for (k, j, i), value in markers.items():
        point = positions[k] + i * d1 * row + j * d2 * column
        x, y, z = image.TransformPhysicalPointToIndex(tuple(point))
        assert array[z, y, x] == pytest.approx(value, abs=1e-3 * len(markers)), (k, j, i)
    assert array.sum() == pytest.approx(sum(markers.values()), abs=1e-2)


@pytest.mark.parametrize("position", sorted(STIR_TABLE))
@pytest.mark.parametrize("given_by", ["header keys", "--patient-position"])
def test_stir_patient_positions_read_back_in_simpleitk(tmp_path, capsys, position, given_by):
    shape, spacing, first = (3, 4, 5), (2.0, 2.5, 3.0), (-4.0, -3.5, 6.0)  # asymmetric everywhere
    if given_by == "header keys":
        orientation, rotation = STIR_KEYS[position]
        options = []
    else:
        orientation = rotation = None  # the header says nothing
        options = ["--patient-position", position]
    header = tmp_path / "img.hv"
    header.write_text(stir_header(shape, spacing, data="img.v", orientation=orientation, rotation=rotation,
                                  first_pixel=first))  # fmt: skip
    markers = write_marker_data(tmp_path / "img.v", shape, "<f4")
    status, out, err = run(capsys, "convert", header, "--out", tmp_path / "out", *options)
    assert status == 0, err
    assert f"STIR, {position}" in out
    check_stir_series(tmp_path / "out" / "img", position, first, spacing, shape, markers)


@pytest.mark.parametrize("position", sorted(STIR_TABLE))
def test_stir_sample_in_every_patient_position(tmp_path, capsys, position):
    name = "sirf/recon_pmqp.hv"  # head_in/supine in the header: the option wins
    header, markers = install(name, tmp_path)
    status, out, err = run(capsys, "convert", header, "--out", tmp_path / "out", "--patient-position", position)
    assert status == 0, err
    first, d3 = STIR_SAMPLE_GEOMETRY[name]
    check_stir_series(tmp_path / "out" / header.stem, position, first, (4.44114, 4.44114, d3),
                      IMAGE_SAMPLES[name][2], markers)  # fmt: skip


@pytest.mark.parametrize("shape", [(4, 6, 8), (3, 5, 7)])
@pytest.mark.parametrize("fov_shift", [False, True])
def test_castor_image_centre_lies_on_the_scanner_axis(tmp_path, capsys, shape, fov_shift):
    spacing = (2.0, 2.5, 3.0)
    extra = [f"first pixel offset (mm) [{a}] := {v}" for a, v in ((1, 10), (2, -20), (3, 30))] if fov_shift else []
    header = tmp_path / "img.hdr"
    header.write_text(castor_header(shape, spacing, data="img.img", extra=extra))
    markers = write_marker_data(tmp_path / "img.img", shape, "<f4")
    status, out, err = run(capsys, "convert", header, "--out", tmp_path / "out")
    assert status == 0, err
    if fov_shift:  # a FOV shift with an unknown sign: reported, not applied (spec 4.2)
        assert "FOV shift" in err and "not applied" in err
    image = read_sitk(tmp_path / "out" / "img")
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    assert np.allclose(centre, (0, 0, 0), atol=1e-6)
    assert image.GetSize() == shape[::-1]
    # spec 4.2 for HFS: IOP 1,0,0, 0,-1,0; IPP(k) = (-(n1-1)d1/2, (n2-1)d2/2, -(n3-1)d3/2 + k d3)
    nz, ny, nx = shape
    d1, d2, d3 = spacing
    row, column = np.array([1.0, 0, 0]), np.array([0, -1.0, 0])
    for k, path in enumerate(series_files(tmp_path / "out" / "img")):
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        expected = (-(nx - 1) * d1 / 2, (ny - 1) * d2 / 2, -(nz - 1) * d3 / 2 + k * d3)
        assert np.allclose([float(v) for v in dataset.ImagePositionPatient], expected)
        assert np.allclose([float(v) for v in dataset.ImageOrientationPatient], [*row, *column])
    array = sitk.GetArrayViewFromImage(image)
    origin0 = np.array([-(nx - 1) * d1 / 2, (ny - 1) * d2 / 2, -(nz - 1) * d3 / 2])
    for (k, j, i), value in markers.items():
        point = origin0 + (0, 0, k * d3) + i * d1 * row + j * d2 * column
        x, y, z = image.TransformPhysicalPointToIndex(tuple(point))
        assert array[z, y, x] == pytest.approx(value, abs=1e-2), (k, j, i)


def test_first_voxel_and_modality_options(tmp_path, capsys):
    good, _ = good_input(tmp_path)
    status, out, err = run(capsys, "convert", good, "--out", tmp_path / "out", "--modality", "CT",
                           "--first-voxel", "10", "20", "30")  # fmt: skip
    assert status == 0, err
    files = series_files(tmp_path / "out" / "good")
    assert [f.name for f in files] == ["CT_0001.dcm", "CT_0002.dcm", "CT_0003.dcm"]
    datasets = [pydicom.dcmread(f) for f in files]
    assert {d.Modality for d in datasets} == {"CT"} and datasets[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    # the first voxel is placed; the axes stay STIR's HFS ones (slices towards the feet)
    assert [[float(v) for v in d.ImagePositionPatient] for d in datasets] == [[10, 20, 30], [10, 20, 27], [10, 20, 24]]
    report = dicom_tools.dciodvfy(files[0])
    assert report.errors == [], report.output


# --- --jobs ---------------------------------------------------------------------------------------


def comparable(path):
    """A file's elements minus those that hold the time of writing."""
    dataset = pydicom.dcmread(path)
    return {e.tag: e.value for e in dataset if e.keyword not in ("InstanceCreationDate", "InstanceCreationTime")}


def test_jobs_2_writes_what_jobs_1_writes(tmp_path):
    headers = []
    for position in sorted(STIR_TABLE):
        orientation, rotation = STIR_KEYS[position]
        header = tmp_path / f"{position}.hv"
        header.write_text(stir_header((3, 4, 5), data=f"{position}.v", orientation=orientation, rotation=rotation,
                                      first_pixel=(-4.0, -3.0, 6.0)))  # fmt: skip
        write_marker_data(tmp_path / f"{position}.v", (3, 4, 5), "<f4")
        headers.append(header)
    runs = {}
    for jobs in ("1", "2"):
        done = run_command("convert", *headers, "--out", tmp_path / jobs, "--seed", "jobs", "--jobs", jobs)
        assert done.returncode == 0, done.stderr
        runs[jobs] = summaries(done.stdout.replace(str(tmp_path / jobs), "<out>"))
    assert runs["1"] == runs["2"]  # the same summaries (--jobs prints them as the inputs complete)
    assert sorted(summary.split(" -> ")[0] for summary in runs["2"]) == sorted(map(str, headers))
    for header in headers:
        one, two = series_files(tmp_path / "1" / header.stem), series_files(tmp_path / "2" / header.stem)
        assert [f.name for f in one] == [f.name for f in two] and len(one) == 3
        for a, b in zip(one, two):
            assert comparable(a) == comparable(b), (a, b)


def summaries(stdout):
    """The summary of each series (its line and its warnings' lines), sorted."""
    return sorted(re.split(r"\n(?=\S)", stdout.strip()))


def test_a_dead_worker_fails_only_its_input(tmp_path):
    hooks = worker_killer(tmp_path / "hooks")  # in the command and in every worker
    good, _ = good_input(tmp_path)
    doomed = write_image(tmp_path, "die-worker.hv", stir_header((3, 4, 5), data="die.v"), np.ones((3, 4, 5)))
    env = command_env()
    env["PYTHONPATH"] = os.pathsep.join([str(hooks), env["PYTHONPATH"]])
    done = run_command("convert", doomed, good, "--out", tmp_path / "out", "--jobs", "2", env=env)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1
    assert len(failure_lines(done.stderr, doomed)) == 1
    assert len(series_files(tmp_path / "out" / "good")) == 3


NUMBA_THEN_JOBS = """\
import sys
import numba
import numpy as np
from dcmforge.cli import main
from dcmforge.readers.interfile import write_interfile
from dcmforge.write import series
from dcmforge.write.series import write_series
from dcmforge import pixels

out = sys.argv[1]
# the parallel kernels even for these small slices (write_series packs such slices on one thread):
# their OpenMP threads must run
pixels.PARALLEL_MIN_VOXELS = 0
series.LARGE_SLICE_VOXELS = 0
write_series(np.ones((2, 3, 4), np.float32), out + "/warm-up", spacing=(1, 1, 1), backend="numba")
print("threading layer", numba.threading_layer(), file=sys.stderr, flush=True)
sys.exit(main(["convert", *sys.argv[2:], "--out", out + "/out", "--jobs", "2"]))
"""


@pytest.mark.parametrize("layer", ["omp", "workqueue"])  # the two numba ships; TBB needs the tbb package
def test_jobs_after_numba_kernels_ran_in_the_process(tmp_path, layer):
    """Pool workers are spawned: whatever threads numba's layer started, --jobs converts (a fork after OpenMP's
    threads would hang)."""
    headers = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        headers.append(good_input(tmp_path / folder)[0])
    done = subprocess.run([sys.executable, "-c", NUMBA_THEN_JOBS, tmp_path, *headers], capture_output=True,
                          text=True, env={**command_env(), "NUMBA_THREADING_LAYER": layer}, timeout=300)  # fmt: skip
    assert f"threading layer {layer}" in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert len(series_files(tmp_path / "out" / "one_good")) == len(series_files(tmp_path / "out" / "two_good")) == 3


# --- progress bar ---------------------------------------------------------------------------------

BAR_HALF = "[" + "#" * 15 + "." * 15 + "] 1/2"
BAR_FULL = "[" + "#" * 30 + "] 2/2"


@pytest.fixture(scope="module")
def terminal_run(tmp_path_factory):
    """Two inputs converted with stdout and stderr on a pseudo-terminal: (status, terminal text, headers)."""
    root = tmp_path_factory.mktemp("terminal")
    headers = []
    for folder in ("one", "two"):
        (root / folder).mkdir()
        headers.append(good_input(root / folder)[0])
    status, text = run_on_terminal("convert", *headers, "--out", root / "out")
    return status, text, headers


def test_progress_bar_on_a_terminal(terminal_run):
    status, text, headers = terminal_run
    assert status == 0, text
    assert BAR_HALF in text and BAR_FULL in text


def test_no_progress_bar_when_not_on_a_terminal(tmp_path):
    good, _ = good_input(tmp_path)
    done = run_command("convert", good, good, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "[#" not in done.stderr + done.stdout and "\r" not in done.stderr + done.stdout
    assert done.stdout.count(f"{good} -> ") == 2


def test_summary_lines_start_their_own_line_on_a_terminal(terminal_run):
    status, text, headers = terminal_run
    summaries = [line for line in visible_lines(text) if " -> " in line]
    assert len(summaries) == 2
    for line, header in zip(summaries, headers):
        assert line.startswith(f"{header} -> "), repr(line)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_follows_the_current_stderr(tmp_path, monkeypatch):
    good, _ = good_input(tmp_path)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main(["convert", str(good), "--out", str(tmp_path / "out")]) == 0
    assert "[" + "#" * 30 + "] 1/1" in terminal.getvalue()


def test_quiet_prints_errors_only(tmp_path, capsys):
    good, _ = good_input(tmp_path)
    bad = _short_data(tmp_path)
    status, out, err = run(capsys, "-q", "convert", good, bad, "--out", tmp_path / "out")
    assert status == 2
    assert len(failure_lines(err, bad)) == 1
    assert out == "" and "warning" not in err


# --- exit codes, the J-PET migration and the demo, as a real command ------------------------------


def test_exit_codes_of_the_command(tmp_path):
    good, _ = good_input(tmp_path)
    done = run_command("convert", good, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    bad = _malformed(tmp_path)
    done = run_command("convert", bad, good, "--out", tmp_path / "out2")
    assert done.returncode == 2
    assert len(failure_lines(done.stderr, bad)) == 1
    assert f"{good} -> " in done.stdout
    assert run_command("convert", good).returncode == 2  # usage: --out is required
    assert run_command("--version").stdout.startswith("dcmforge ")


def test_jpet_castor_header_with_its_metadata_in_one_command(tmp_path):
    header, markers = install("castor/osem_it4.hdr", tmp_path)
    metadata = JPET_METADATA / "metadata_pt.json"
    done = run_command("convert", header, "--meta", metadata, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "out" / "osem_it4"
    assert done.stdout.startswith(f"{header} -> {folder}: 30 PT files, 24x24x30 voxels of 2.5x2.5x2.5 mm; CASToR")
    # what the old converter used and dcmforge does not, said out loud
    assert re.search(r"patientCenter.*ignored", done.stderr)
    assert re.search(r"ImageOrientationPatient.*not used", done.stderr)
    assert re.search(r"FrameReferenceTime.*not used", done.stderr)
    assert "assumed HFS" in done.stdout
    files = series_files(folder)
    assert len(files) == 30
    first = pydicom.dcmread(files[0])
    assert (first.PatientName, first.PatientID, first.PatientSex, first.PatientAge) == ("Cylinder Phantom", "20417",
                                                                                         "O", "055Y")  # fmt: skip
    assert float(first.PatientWeight) == 70.0
    # the metadata file's times replace the header's fallback (the data file's modification time) as a whole
    assert (first.StudyDate, first.SeriesDate, first.AcquisitionDate) == ("20230605",) * 3
    assert float(first.StudyTime) == float(first.SeriesTime) == 101500
    assert (first.SeriesDescription, first.StudyDescription) == ("Cylinder Series", "Cylinder Study")
    assert list(first.SeriesType) == ["WHOLE BODY", "IMAGE"] and first.Units == "BQML"
    isotope = first.RadiopharmaceuticalInformationSequence[0]
    assert isotope.RadionuclideCodeSequence[0].CodeMeaning == "^18^Fluorine"
    assert float(isotope.RadionuclideHalfLife) == pytest.approx(6586.2)
    assert ORIENTATION_WORDS["HFS"] == (
        first.PatientGantryRelationshipCodeSequence[0].CodeMeaning,
        first.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence[0].CodeMeaning,
    )
    # CASToR geometry, not patientCenter: centred on the scanner axis, y up -> anterior
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, -1, 0]
    last = pydicom.dcmread(files[-1], stop_before_pixels=True)
    assert [float(v) for v in first.ImagePositionPatient] == [-28.75, 28.75, -36.25]
    assert [float(v) for v in last.ImagePositionPatient] == [-28.75, 28.75, 36.25]
    assert_markers_in_files(files, 30, markers)
    report = dicom_tools.dciodvfy(files[0])
    assert report.errors == [], report.output


def test_demo_writes_a_valid_phantom_series(tmp_path):
    from dcmforge.demo import SHAPE, SPACING, phantom

    done = run_command("demo", tmp_path / "demo")
    assert done.returncode == 0, done.stderr
    assert f"wrote the Interfile phantom {tmp_path / 'demo' / 'phantom.hv'}" in done.stdout
    # the demo states its own facts, as a user would, so that its series is SUV-ready
    assert f"its units and corrections {tmp_path / 'demo' / 'phantom.toml'}" in done.stdout
    assert "not in the input" not in done.stderr
    folder = tmp_path / "demo" / "dicom" / "phantom"
    assert f"-> {folder}: 40 PT files, 64x64x40 voxels of 2.5x2.5x3 mm" in done.stdout
    assert f"preview: {folder}.preview.png" in done.stdout and Path(f"{folder}.preview.png").is_file()
    files = series_files(folder)
    assert len(files) == SHAPE[0]
    for path in (files[0], files[-1]):
        report = dicom_tools.dciodvfy(path)
        assert report.errors == [], report.output
    assert dicom_tools.dcentvfy(files).errors == []
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert str(first.PatientName) == "Demo^Phantom"
    assert (first.Units, list(first.CorrectedImage), first.DecayCorrection) == ("BQML", ["DECY", "ATTN"], "START")
    assert first.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0].CodeMeaning == "^18^Fluorine"
    image = read_sitk(folder)
    assert image.GetSize() == SHAPE[::-1] and np.allclose(image.GetSpacing(), SPACING)
    # HFS STIR slices go towards the feet; SimpleITK sorts them from the feet up
    array = sitk.GetArrayFromImage(image)[::-1]
    assert np.allclose(array, phantom(), atol=40000 / 30000)
    # the demo is reproducible: same seed, same UIDs, run again over its own output
    again = run_command("demo", tmp_path / "demo")
    assert again.returncode == 0, again.stderr
    assert pydicom.dcmread(files[0], stop_before_pixels=True).SOPInstanceUID == first.SOPInstanceUID


# --- template and check ---------------------------------------------------------------------------


@pytest.mark.parametrize("word, modality", [("pet", "PT"), ("ct", "CT"), ("PT", "PT"), ("CT", "CT")])
@pytest.mark.parametrize("examples", ["as printed", "examples uncommented"])
def test_template_text_passes_check(tmp_path, capsys, word, modality, examples):
    status, text, err = run(capsys, "template", word)
    assert status == 0 and err == ""
    assert text.startswith(f"# dcmforge metadata for a {'PET' if modality == 'PT' else 'CT'} Image series")
    if examples == "examples uncommented":  # every '# Keyword = value' example is valid as well
        text, count = re.subn(r"(?m)^# (\w+ = .*)$", r"\1", text)
        assert count > 10
    meta = tmp_path / "meta.toml"
    meta.write_text(text)
    status, out, err = run(capsys, "check", meta, "--modality", modality)
    assert status == 0, out + err
    assert not re.search(r"(?m)^.*: error: ", out + err), out + err


def test_template_works_as_convert_metadata(tmp_path, capsys):
    meta = tmp_path / "pet.toml"
    status, text, _ = run(capsys, "template", "pet")
    meta.write_text(re.sub(r"(?m)^# (\w+ = .*)$", r"\1", text))
    good, _ = good_input(tmp_path)
    status, out, err = run(capsys, "convert", good, "--meta", meta, "--out", tmp_path / "out")
    assert status == 0, err
    dataset = pydicom.dcmread(series_files(tmp_path / "out" / "good")[0], stop_before_pixels=True)
    assert dataset.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical == "Fluorodeoxyglucose"
    assert dataset.StudyDescription == "J-PET simulation: NEMA IEC body phantom"


BAD_METADATA = {
    "bad value and misspelt key": ("meta.toml", 'PatientSex = "X"\nPatientWieght = 70\n',
                                   ["PatientSex.*'X' is not one of M, F, O",
                                    "PatientWieght.*did you mean PatientWeight"]),
    "unknown isotope": ("meta.json", '{"isotope": "Xx-99"}', ["isotope 'Xx-99' is not known"]),
    "broken JSON": ("meta.json", '{"PatientName": "A",\n "PatientID": }', [r"line 2, column 15: not valid JSON"]),
    "broken TOML": ("meta.toml", "PatientName = \n", ["not valid TOML"]),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(BAD_METADATA))
def test_check_names_the_problem_and_exits_2(tmp_path, capsys, kind):
    name, text, patterns = BAD_METADATA[kind]
    meta = tmp_path / name
    meta.write_text(text)
    status, out, err = run(capsys, "check", meta)
    assert status == 2
    for pattern in patterns:
        lines = [line for line in (out + err).splitlines() if re.search(pattern, line)]
        assert len(lines) == 1 and lines[0].startswith(f"{meta}: "), (pattern, out + err)


def test_check_of_a_missing_file_exits_2(tmp_path, capsys):
    status, out, err = run(capsys, "check", tmp_path / "nowhere.toml")
    assert status == 2 and "nowhere.toml" in err and "cannot read" in err


def test_check_of_the_jpet_files(capsys):
    status, out, err = run(capsys, "check", JPET_METADATA / "metadata_pt.json")
    assert status == 0, out + err
    assert re.search(r"patientCenter.*ignored", out)
    status, out, err = run(capsys, "check", JPET_METADATA / "metadata_ct.json", "--modality", "CT")
    assert status == 0, out + err


def test_a_header_with_half_life_and_positron_fraction_converts(tmp_path, capsys):
    header = write_interfile(
        tmp_path / "nuclide.hv", np.ones((3, 4, 5), np.float32), spacing=(1, 1, 1),
        metadata={"isotope": "F-18", "half_life": 6586.0, "positron_fraction": 0.97,
                  "frame_start": [0.0], "frame_duration": [60.0]},
    )  # fmt: skip
    status, out, err = run(capsys, "convert", header, "--out", tmp_path / "out")
    assert status == 0, err
    item = pydicom.dcmread(series_files(tmp_path / "out" / "nuclide")[0]).RadiopharmaceuticalInformationSequence[0]
    assert float(item.RadionuclideHalfLife) == 6586.0 and float(item.RadionuclidePositronFraction) == 0.97


def test_one_input_converts_without_importing_what_it_does_not_use(tmp_path):
    """A short run imports only what it uses: not the --jobs pool, numba, Enhanced PET, file threads, strptime, sending,
    shutil (argparse's, for the terminal's width, which only printed help needs), the check and template
    commands' modules, the preview module, copy (plain data needs no deepcopy)."""
    header, _ = good_input(tmp_path)
    code = (
        "import sys; from dcmforge import cli; "
        f"status = cli.main(['-q', 'convert', {str(header)!r}, '--out', {str(tmp_path / 'out')!r}]); "
        "unused = ('multiprocessing', 'numba', 'dcmforge.write.multiframe', 'concurrent.futures.thread', '_strptime', "
        "'dcmforge.sending.archive', 'dcmforge.sending.dimse', 'dcmforge.sending.dicomweb', 'socket', 'numpy.ma', "
        "'shutil', 'dcmforge.metadata.check', 'dcmforge.metadata.template', 'dcmforge.preview', 'copy'); "
        "print(status, sorted(m for m in sys.modules if m in unused or m.startswith(tuple(u + '.' for u in unused))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=command_env(), timeout=300, check=False
    )
    assert done.stdout.split() == ["0", "[]"], done.stderr
    assert list((tmp_path / "out").rglob("*.dcm"))
