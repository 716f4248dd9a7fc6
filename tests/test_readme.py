"""The README runs (issue 20): every ```python and ```sh block of README.md is executed, in a folder of its
own holding the inputs it names (made here, small), so an example cannot rot.

A block the tests cannot run says so in the README, on the line just before it, as
``<!-- not run by the tests: REASON -->`` (an archive, a cluster, the set-up itself); the reason is
required, and the same words tell a reader. Shell blocks run with ``bash -e`` (the command is this
environment's ``dcmforge``); Python blocks in a fresh interpreter after PRELUDE, which gives the
names a README example leaves to its reader (``headers``, ``meta``, ``reconstruct_slice``, ...).
A new block that names a new input: add it to INPUTS.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dcmforge.metadata.template import template_text
from dcmforge.readers.interfile import write_interfile

from interfile_data import castor_header, install_sample, stir_header, write_image

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_RUN = re.compile(r"<!-- not run by the tests: (?P<reason>\S.*\S) -->")
BLOCK = re.compile(r"^```(?P<language>python|sh|bash)\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)

PET_METADATA = {"isotope": "F-18", "injected_activity": 3.7e8, "injection_datetime": "2025-01-01T09:00:00",
                "StudyDate": "20250101", "StudyTime": "100000", "frame_start": [0.0], "frame_duration": [600.0]}  # fmt: skip
NOT_RUN_AT_MOST = 5
SHAPE = (6, 8, 10)  # z, y, x of the small inputs


def blocks():
    """(line, language, code, reason it is not run or None) of every runnable-language block of the README."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.fullmatch(before.strip())
        found.append((line, match["language"], match["code"], marker["reason"] if marker else None))
    return found


def toml_block(first_line):
    """The README's ```toml block that starts with first_line: a file it shows, made as shown."""
    for match in re.finditer(r"^```toml\n(?P<code>.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S):
        if match["code"].startswith(first_line + "\n"):
            return match["code"]
    raise LookupError(f"no ```toml block starting {first_line!r} in the README")


def _stir(folder, name, modality="PET", values=None):
    header = stir_header(SHAPE, data=Path(name).with_suffix(".v").name).replace("PET", modality, 1)
    volume = np.full(SHAPE, 40.0 if values is None else values, np.float32)
    volume[2:4, 3:5, 4:6] = 400.0
    return write_image(folder, name, header, volume)


def _metaimage(folder, name):
    data = f"{Path(name).stem}.raw" if name.endswith(".mhd") else "LOCAL"
    header = ("ObjectType = Image\nNDims = 3\nDimSize = 10 8 6\nElementSpacing = 2 2 3\nOffset = 0 0 0\n"
              f"TransformMatrix = 1 0 0 0 1 0 0 0 1\nElementType = MET_FLOAT\nElementDataFile = {data}\n")  # fmt: skip
    voxels = np.ones(SHAPE, np.float32).tobytes()
    if data == "LOCAL":
        (folder / name).write_bytes(header.encode() + voxels)
    else:
        (folder / name).write_text(header)
        (folder / data).write_bytes(voxels)


def _nifti(folder, name):
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.ones(SHAPE[::-1], np.float32), np.diag([2.0, 2.0, 3.0, 1.0])), folder / name)


# Every input a README block names -> how to make it in the block's folder.
INPUTS = {
    "recon.img": lambda f: np.ones((200, 160, 160), np.float32).tofile(f / "recon.img"),
    "recon_it8.hdr": lambda f: write_image(f, "recon_it8.hdr", castor_header(SHAPE, data="recon_it8.img"),
                                           np.ones(SHAPE)),
    "patient.toml": lambda f: (f / "patient.toml").write_text(template_text("PT")),  # the template as printed
    "fdg.toml": lambda f: (f / "fdg.toml").write_text(toml_block("# fdg.toml")),  # as the README shows it
    "sub*/osem_*.hv": lambda f: [write_interfile((f / f"sub{n}").mkdir() or f / f"sub{n}" / f"osem_{n}.hv",
                                                 np.ones(SHAPE, np.float32), spacing=(2, 2, 3), metadata=PET_METADATA)
                                 for n in (1, 2)],
    "phantom.h33": lambda f: install_sample("gate/cube.h33", f) and (f / "cube.h33").rename(f / "phantom.h33"),
    "recon.hv": lambda f: write_interfile(f / "recon.hv", np.ones(SHAPE, np.float32), spacing=(2, 2, 3),
                                          metadata=PET_METADATA),
    "dynamic.hv": lambda f: write_interfile(f / "dynamic.hv", np.ones((3, *SHAPE), np.float32), spacing=(2, 2, 3),
                                            metadata={**PET_METADATA, "frame_start": [0.0, 60.0, 120.0],
                                                      "frame_duration": [60.0, 60.0, 60.0]}),
    "pet.hv": lambda f: write_interfile(f / "pet.hv", np.ones(SHAPE, np.float32), spacing=(2, 2, 3),
                                        metadata=PET_METADATA),
    "ct.hv": lambda f: _stir(f, "ct.hv", "CT", values=0.0),
    "scan.nii.gz": lambda f: _nifti(f, "scan.nii.gz"),
    "recon.mha": lambda f: _metaimage(f, "recon.mha"),
    "dose.mhd": lambda f: _metaimage(f, "dose.mhd"),
}  # fmt: skip

PRELUDE = """\
import glob
import numpy as np
import dcmforge
nz, ny, nx = 6, 8, 10
meta = {"PatientName": "Phantom^NEMA", "isotope": "F-18"}
def reconstruct_slice(k):
    return np.full((ny, nx), float(k), np.float32)
headers = sorted(glob.glob("sub*/osem_*.hv"))
"""
CLIENT = """\
from distributed import Client
client = Client(processes=False, dashboard_address=None)
"""


def environment():
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@pytest.mark.parametrize(
    "line, language, code, reason", [pytest.param(*block, id=f"README.md:{block[0]}") for block in blocks()]
)
def test_readme_block(tmp_path, line, language, code, reason):
    if reason is not None:
        pytest.skip(f"README.md:{line}: not run by the tests: {reason}")
    for name, make in INPUTS.items():
        if name in code:
            make(tmp_path)
    if language == "python":
        client = CLIENT if re.search(r"\bclient\b", code) and "client =" not in code else ""
        command = [sys.executable, "-c", PRELUDE + client + textwrap.dedent(code)]
    else:
        command = ["bash", "-e", "-c", code]
    done = subprocess.run(command, cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README.md:{line} ({language}) failed:\n{code}\n{done.stdout}\n{done.stderr}"


def test_every_block_that_is_not_run_says_why():
    not_run = [(line, reason) for line, _, _, reason in blocks() if reason is not None]
    assert len(blocks()) > 8
    # The set-up, two sends to an archive, a Dask scheduler, SLURM: a new block that cannot run here raises this
    # on purpose, with its reason in the README.
    assert len(not_run) <= NOT_RUN_AT_MOST, not_run
