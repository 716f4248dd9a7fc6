"""Where the tests' data is: tests/data, written for the suite (like pydicom's get_testdata_file).

Everything a test needs is in the repository. The project's reference folder
(``shared/`` beside the repository, or $DCMFORGE_SHARED) may add extra cases
when it is present; its absence never fails or skips a test of our own.
"""

import os
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
_REPOSITORY = DATA.parents[1]
_SHARED = Path(os.environ.get("DCMFORGE_SHARED") or _REPOSITORY.parent / "shared")


def get_testdata_file(name):
    """The path of tests/data/<name>; a missing file is an error of the suite, not a skip."""
    path = DATA / name
    if not path.exists():
        raise FileNotFoundError(f"no test data file {name} in {DATA}")
    return path


def extra_samples(folder):
    """shared/samples/<folder> when the reference folder is beside the repository, else None: extra cases only."""
    path = _SHARED / "samples" / folder
    return path if path.is_dir() else None
