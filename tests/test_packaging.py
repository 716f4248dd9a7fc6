"""The built artifacts: the wheel and the sdist carry the license and py.typed, the sdist's own tests run,
and ``python -m dcmforge`` is the command.

Built offline by ``python -m build --no-isolation`` (the test extra brings build and setuptools>=77): the
sdist first, then the wheel from the unpacked sdist, as an installer from the sdist would.
"""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dcmforge

REPO = Path(__file__).resolve().parents[1]
LICENSE_START = "Apache License\n                           Version 2.0, January 2004"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("dcmforge-*.whl")
    (sdist,) = out.glob("dcmforge-*.tar.gz")
    return wheel, sdist


def test_the_wheel_carries_the_license_and_py_typed(artifacts):
    wheel, _ = artifacts
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (license_name,) = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
        assert LICENSE_START in archive.read(license_name).decode()
        metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "dcmforge/py.typed" in names
    assert "dcmforge/__main__.py" in names


def test_the_sdist_carries_the_license_and_every_file_its_tests_need(artifacts, tmp_path):
    _, sdist = artifacts
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (root,) = tmp_path.iterdir()
    assert LICENSE_START in (root / "LICENSE").read_text()
    assert (root / "src/dcmforge/py.typed").is_file()
    shipped = {path.relative_to(root) for path in (root / "tests").rglob("*") if path.is_file()}
    in_repository = {
        path.relative_to(REPO)
        for path in (REPO / "tests").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert in_repository <= shipped, f"not in the sdist: {sorted(map(str, in_repository - shipped))}"
    # its tests run from the unpacked sdist alone: its own dcmforge, conftest, helpers and data
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_uids.py", "tests/test_geometry.py"],
        cwd=root,
        env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    where = subprocess.run(
        [sys.executable, "-c", "import dcmforge; print(dcmforge.__file__)"],
        cwd=root,
        env={"PYTHONPATH": str(root / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(root)


def test_python_dash_m_dcmforge_is_the_command():
    run = subprocess.run([sys.executable, "-m", "dcmforge", "--version"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"dcmforge {dcmforge.__version__}"


def test_the_installed_script_runs_the_command_and_leaves_the_collector_frozen():
    """The script is cli.command: main's exit status, and the objects frozen so that Python's shutdown does
    not traverse them; main alone leaves the collector as it was, for a program that calls it and runs on
    (README Performance)."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="dcmforge")
    assert script.value == "dcmforge.cli:command"
    code = (
        "import gc, sys; from dcmforge import cli; "
        "sys.argv[1:] = ['template', 'pet']; status = cli.main(); after_main = gc.get_freeze_count(); "
        "status2 = cli.command(); print(status, after_main, status2, gc.get_freeze_count() > 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.stdout.split()[-4:] == ["0", "0", "0", "True"], run.stderr


@pytest.mark.parametrize("inputs, collecting", [(1, False), (2, True)])
def test_the_command_converts_one_input_with_the_collector_off(tmp_path, inputs, collecting):
    """A one-input convert's objects live about as long as its process: the command runs it without the cyclic
    collector. With more inputs (a long batch's garbage), and under main in a program, the collector runs."""
    headers = [str(dcmforge.write_interfile(tmp_path / f"in{n}.hv", np.ones((2, 3, 4), np.float32), spacing=(1, 1, 1)))
               for n in range(inputs)]  # fmt: skip
    code = (
        "import gc, sys; from dcmforge import cli; "
        f"sys.argv[1:] = ['-q', 'convert', *{headers!r}, '--out', {str(tmp_path / 'main')!r}]; status = cli.main(); "
        "under_main = gc.isenabled(); "
        f"sys.argv[1:] = ['-q', 'convert', *{headers!r}, '--out', {str(tmp_path / 'command')!r}]; "
        "status2 = cli.command(); print(status, under_main, status2, gc.isenabled())"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.stdout.split() == ["0", "True", "0", str(collecting)], run.stderr
