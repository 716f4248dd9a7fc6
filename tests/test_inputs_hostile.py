"""Inputs a hostile or unlucky user gives (issue 19): data files outside the header's folder, numbers no value
holds, compressed data that declares more than it can inflate to, more images than a PET series can number.

Each is refused with one line that names the file, key or option, before
anything is written; the commands run as real processes.
"""

import gzip
import re
import subprocess
import sys
import zlib

import numpy as np
import pydicom
import pytest

import dcmforge
from dcmforge.errors import InputError, InterfileError, MetadataError, MetaImageError, VolumeError
from dcmforge.readers.choose import read_image
from dcmforge.readers.interfile import read_interfile
from dcmforge.readers.metaimage import read_metaimage

OPTION = "allow_data_outside=True (--allow-data-outside)"


def run_cli(*args):
    command = [sys.executable, "-m", "dcmforge.cli", *map(str, args)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)


def interfile(folder, data_name=None, volume=None, **header_lines):
    """A STIR-style header in ``folder`` whose 'name of data file' is ``data_name`` (its own .v when None), with
    ``header_lines`` (key: value) replaced or added."""
    folder.mkdir(parents=True, exist_ok=True)
    volume = np.ones((2, 3, 4), np.float32) if volume is None else volume
    header = dcmforge.write_interfile(folder / "x.hv", volume, spacing=(1, 1, 1))
    lines = header.read_text().splitlines()
    changes = {"name of data file": data_name, **{k.replace("_", " "): v for k, v in header_lines.items()}}
    for key, value in changes.items():
        if value is None:
            continue
        lines = [line for line in lines if not line.startswith(key)]
        lines.insert(3, f"{key} := {value}")
    header.write_text("\n".join(lines) + "\n")
    return header


# -- row 12: a data file outside the header's folder ----------------------------------------------------------------


@pytest.fixture
def secret(tmp_path):
    """A file outside the input's folder, of exactly the size the headers ask for (96 bytes)."""
    path = tmp_path / "private" / "shadow"
    path.parent.mkdir()
    path.write_bytes(np.full(24, 7, np.float32).tobytes())
    return path


@pytest.mark.parametrize("written", ["relative", "absolute"])
def test_an_interfile_data_file_outside_the_header_folder_is_refused_naming_the_option(tmp_path, secret, written):
    name = "../private/shadow" if written == "relative" else str(secret)
    header = interfile(tmp_path / "input", name)
    shown = tmp_path / "input" / name if written == "relative" else secret
    message = (f"{header}: the data file {shown} is outside the header's folder {header.parent}: not read "
               f"(its bytes would become the image) unless {OPTION}")  # fmt: skip
    with pytest.raises(InterfileError) as caught:
        read_interfile(header)
    assert str(caught.value) == message
    done = run_cli("convert", header, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert message in done.stderr.splitlines()
    assert not (tmp_path / "out" / "x").exists()
    assert float(read_interfile(header, allow_data_outside=True).volume.max()) == 7
    assert float(read_image(header, allow_data_outside=True).volume.max()) == 7
    done = run_cli("convert", header, "--out", tmp_path / "out", "--allow-data-outside")
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out" / "x").glob("*.dcm"))) == 2


def test_an_interfile_data_file_in_a_subfolder_is_read(tmp_path):
    header = interfile(tmp_path / "input", "data/x.v")
    (tmp_path / "input" / "data").mkdir()
    (tmp_path / "input" / "x.v").rename(tmp_path / "input" / "data" / "x.v")
    assert read_interfile(header).volume.shape == (2, 3, 4)


def test_a_castor_metaheader_naming_a_header_outside_its_folder_is_refused(tmp_path, secret):
    frame = interfile(tmp_path / "elsewhere")
    folder = tmp_path / "input"
    folder.mkdir()
    metaheader = folder / "dyn.mhd"
    metaheader.write_text(f"!INTERFILE :=\n%data set [1] := {{0, ../elsewhere/{frame.name}, x.v}}\n!END OF INTERFILE :=\n")
    with pytest.raises(InterfileError, match=rf"{metaheader}: the data set header .*x.hv is outside the header's folder"):
        read_interfile(metaheader)


def metaimage(folder, element_data_file, listed=()):
    folder.mkdir(parents=True, exist_ok=True)
    header = folder / "image.mhd"
    header.write_text("ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementType = MET_FLOAT\nElementSpacing = 1 1 1\n"
                      f"ElementDataFile = {element_data_file}\n" + "".join(f"{name}\n" for name in listed))  # fmt: skip
    return header


@pytest.mark.parametrize("how", ["relative", "absolute", "LIST", "pattern"])
def test_a_metaimage_data_file_outside_the_header_folder_is_refused_naming_the_option(tmp_path, secret, how):
    folder = tmp_path / "input"
    folder.mkdir()
    np.zeros(12, np.float32).tofile(folder / "inside.raw")
    if how == "relative":
        header, shown = metaimage(folder, "../private/shadow"), folder / "../private/shadow"
    elif how == "absolute":
        header, shown = metaimage(folder, secret), secret
    elif how == "LIST":  # two slices, the first inside, the second out
        secret.write_bytes(secret.read_bytes()[:48])
        header, shown = metaimage(folder, "LIST", ["inside.raw", "../private/shadow"]), folder / "../private/shadow"
    else:
        secret.rename(tmp_path / "private" / "shadow1")
        (tmp_path / "private" / "shadow1").write_bytes(bytes(96))
        header, shown = metaimage(folder, "../private/shadow%d 1 1"), folder / "../private/shadow1"
    message = (f"{header}: the data file {shown} is outside the header's folder {folder}: not read "
               f"(its bytes would become the image) unless {OPTION}")  # fmt: skip
    with pytest.raises(MetaImageError) as caught:
        read_metaimage(header)
    assert str(caught.value) == message
    done = run_cli("convert", header, "--out", tmp_path / "out")
    assert done.returncode == 2 and message in done.stderr
    assert read_metaimage(header, allow_data_outside=True).volume.shape == (2, 3, 4)


def test_the_option_is_refused_for_nifti_which_names_no_data_file(tmp_path):
    path = tmp_path / "x.nii"
    header = np.zeros(1, dtype=[("sizeof_hdr", "<i4"), ("pad", "V340"), ("magic", "S4")])
    header["sizeof_hdr"], header["magic"] = 348, b"n+1\0"
    path.write_bytes(header.tobytes())
    with pytest.raises(InputError, match="--allow-data-outside cannot be used with NIfTI input"):
        read_image(path, allow_data_outside=True)


# -- numbers no value holds -----------------------------------------------------------------------------------------

DIGITS_5000 = "7" * 5000


@pytest.mark.parametrize("kind", ["json", "toml", "json on one line"])
def test_an_integer_of_5000_digits_in_a_metadata_file_is_named(tmp_path, kind):
    if kind == "toml":
        path = tmp_path / "meta.toml"
        path.write_text(f'PatientID = "X"\nPatientWeight = {DIGITS_5000}\n')
        where = f"{path}, line 2: PatientWeight"
    else:
        path = tmp_path / "meta.json"
        separator = " " if kind == "json on one line" else "\n "
        path.write_text(f'{{"PatientID": "X",{separator}"PatientWeight": {DIGITS_5000}}}\n')
        where = f"{path}, line {1 if kind == 'json on one line' else 2}: PatientWeight"
    message = f"{where}: an integer of 5000 digits; dcmforge reads integers of at most 4300 digits"
    with pytest.raises(MetadataError) as caught:
        dcmforge.read_metadata(path)
    assert str(caught.value) == message
    done = run_cli("check", path)
    assert done.returncode == 2 and done.stderr.strip().endswith(message), done.stderr


def test_an_integer_of_5000_digits_given_to_the_writer_is_named(tmp_path):
    with pytest.raises(MetadataError, match=r"PatientWeight: an integer of 5000 digits; dcmforge reads integers of at most 4300"):
        dcmforge.write_series(np.ones((2, 4, 4), np.float32), tmp_path / "out", spacing=(1, 1, 1),
                              metadata={"PatientWeight": (10**5000 - 1) // 9 * 7})  # 5000 sevens  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_negative_patient_weight_is_refused_naming_it(tmp_path):
    with pytest.raises(MetadataError, match=r"PatientWeight \(0010,1030\).*: -70 is negative: a weight is 0 kg or more"):
        dcmforge.write_series(np.ones((2, 4, 4), np.float32), tmp_path / "out", spacing=(1, 1, 1),
                              metadata={"PatientWeight": -70})  # fmt: skip
    assert not (tmp_path / "out").exists()
    # an Interfile header's metadata that cannot be used is a warning, as the reader does for every key
    header = interfile(tmp_path / "input", **{"patient weight (kg)": "-70"})
    done = run_cli("convert", header, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "'patient weight (kg) := -70': a weight is 0 kg or more; ignored" in done.stderr  # a warning, on stderr
    assert "PatientWeight" not in pydicom.dcmread(next((tmp_path / "out" / "x").glob("*.dcm")))


@pytest.mark.parametrize("value", ["0", "{1, 0}"])
def test_an_interfile_image_scaling_factor_of_0_is_refused_naming_it(tmp_path, value):
    header = interfile(tmp_path / "input", volume=np.ones((2, 3, 4), np.float32), **{"image scaling factor[1]": value})
    with pytest.raises(InterfileError, match=r"image scaling factor\[1\] := .*a scaling factor of 0 would erase the image"):
        read_interfile(header)


# -- compressed data that declares more than it can hold ----------------------------------------------------------

GIB = 1 << 30


def test_a_metaimage_declaring_1_gib_from_64_kib_of_zlib_is_refused_before_inflating(tmp_path):
    packed = zlib.compress(bytes(64 << 20), 9)  # 64 MiB of zeros: about 64 KiB
    header = tmp_path / "bomb.mha"
    header.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 1024 1024 1024\nElementType = MET_UCHAR\n"
                       b"CompressedData = True\nElementDataFile = LOCAL\n" + packed)  # fmt: skip
    done = _measured("from dcmforge.readers.metaimage import read_metaimage as r; r(sys.argv[1])", header)
    assert f"MetaImageError: {header}: {len(packed)} bytes of zlib data cannot inflate to the {GIB} bytes" in done.stderr
    assert _peak_kib(done) < 64 << 10, done.stderr  # not inflated: under the 64 MiB its data holds, let alone 1 GiB


def test_a_nifti_gz_declaring_1_gib_with_a_forged_size_is_refused_before_inflating(tmp_path):
    header = np.zeros(1, dtype=[("sizeof_hdr", "<i4"), ("pad", "V36"), ("dim", "<i2", 8), ("pad2", "V14"),
                                ("datatype", "<i2"), ("bitpix", "<i2"), ("pad3", "V2"), ("pixdim", "<f4", 8),
                                ("vox_offset", "<f4"), ("pad4", "V232"), ("magic", "S4")])  # fmt: skip
    header["sizeof_hdr"], header["dim"], header["datatype"], header["bitpix"] = 348, [3, 1024, 1024, 1024, 1, 1, 1, 1], 2, 8
    header["pixdim"], header["vox_offset"], header["magic"] = [1, 1, 1, 1, 1, 1, 1, 1], 352, b"n+1\0"
    data = gzip.compress(header.tobytes() + bytes(4) + bytes(64 << 20), 9)
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(data[:-4] + ((GIB + 352) % (1 << 32)).to_bytes(4, "little"))  # its size field forged
    done = _measured("from dcmforge.readers.nifti import read_nifti as r; r(sys.argv[1])", path)
    assert f"NiftiError: {path}: {len(data)} bytes of gzip data cannot inflate to the {GIB + 352} bytes" in done.stderr
    assert _peak_kib(done) < 64 << 10, done.stderr


def _measured(code, path):
    """``code`` run in a process of its own, which prints its peak resident memory (KiB) last: VmHWM, the peak of
    its own memory since exec (getrusage's ru_maxrss would count the forking test process's)."""
    wrapped = (f"import sys\ntry:\n    {code}\nfinally:\n"
               "    print('peak', open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr)")  # fmt: skip
    return subprocess.run([sys.executable, "-c", wrapped, str(path)], capture_output=True, text=True, timeout=300)


def _peak_kib(done):
    return int(re.search(r"^peak (\d+)$", done.stderr, re.MULTILINE).group(1))


# -- more images than a PET series numbers ------------------------------------------------------------------------


def test_2000_frames_of_40_slices_are_refused_before_anything_is_read_or_written(tmp_path):
    folder = tmp_path / "input"
    folder.mkdir()
    frames, frame_bytes = 2000, 40 * 4 * 4 * 4
    np.ones(frames * 40 * 16, np.float32).tofile(folder / "dyn.v")
    lines = ["!INTERFILE :=", "!name of data file := dyn.v", "!number format := float", "!number of bytes per pixel := 4",
             "imagedata byte order := LITTLEENDIAN", "number of dimensions := 3", "!matrix size [1] := 4",
             "!matrix size [2] := 4", "!matrix size [3] := 40", "scaling factor (mm/pixel) [1] := 1",
             "scaling factor (mm/pixel) [2] := 1", "scaling factor (mm/pixel) [3] := 1", f"number of time frames := {frames}"]
    for frame in range(1, frames + 1):  # frames in reverse order in the file: an offset each
        lines += [f"data offset in bytes[{frame}] := {(frames - frame) * frame_bytes}", f"image duration (sec)[{frame}] := 1"]
    (folder / "dyn.hv").write_text("\n".join(lines) + "\n!END OF INTERFILE :=\n")
    done = run_cli("convert", folder / "dyn.hv", "--out", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert ("2000 frames of 40 slices are 80000 images; a PET series numbers its images with ImageIndex (US), "
            "at most 65535: write it with --multiframe, or in parts") in done.stderr  # fmt: skip
    assert "ushort" not in done.stderr and not (tmp_path / "out" / "dyn").exists()
    with pytest.raises(VolumeError, match="80000 images"):
        dcmforge.write_series(np.zeros((2000, 40, 2, 2), np.float32), tmp_path / "api", spacing=(1, 1, 1))
