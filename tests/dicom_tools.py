"""Run the external DICOM checkers (dicom3tools, dcmtk) on files and collect what they report.

    report = dciodvfy(path)       # IOD check of one file
    report = dcentvfy(paths)      # cross-file Patient/Study/Series consistency
    report = dcmdump(path)        # parse with dcmtk; report.output is the dump
    assert report.errors == [], report.output

Each returns a ``Report``. When the program is not installed the calling test
is skipped (``pytest.skip``), so the suite still runs where they are missing.
"""

import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

_TIMEOUT = 120  # seconds; these tools take well under a second per small file


class Report(NamedTuple):
    errors: list[str]  # one line per error the tool reported (or its exit status if it gave none)
    warnings: list[str]
    output: str  # stdout and stderr of the run, for assertion messages
    returncode: int


def available(program):
    """True when ``program`` is on PATH."""
    return shutil.which(program) is not None


def require(program):
    """Skip the calling test when ``program`` is not installed."""
    if not available(program):
        pytest.skip(f"{program} is not installed")


def _run(arguments, error_prefix, warning_prefix):
    require(arguments[0])
    done = subprocess.run(
        [str(argument) for argument in arguments], capture_output=True, text=True, errors="replace", timeout=_TIMEOUT
    )
    output = done.stdout + done.stderr
    # Only stderr carries diagnostics; stdout can hold dumped values that happen to start with "E:" etc.
    lines = [line.strip() for line in done.stderr.splitlines()]
    errors = [line for line in lines if line.startswith(error_prefix)]
    warnings = [line for line in lines if line.startswith(warning_prefix)]
    if done.returncode != 0 and not errors:
        errors.append(f"{arguments[0]} exited with status {done.returncode}")
    return Report(errors, warnings, output, done.returncode)


def dciodvfy(path):
    """Check one file against its IOD (dicom3tools)."""
    return _run(["dciodvfy", "-filename", Path(path)], "Error", "Warning")


def dcentvfy(paths):
    """Check that files agree on their Patient, Study, Series and Frame of Reference (dicom3tools)."""
    return _run(["dcentvfy", *map(Path, paths)], "Error", "Warning")


def dcmdump(path):
    """Parse one file with dcmtk; ``output`` holds the dump with long values printed in full."""
    return _run(["dcmdump", "+L", Path(path)], "E:", "W:")
