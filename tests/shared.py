"""Where the project's reference material is: shared/ beside the repository (or $DCMFORGE_SHARED).

CI clones the repository somewhere new with shared/ beside it, so nothing may
name an absolute path. A missing folder fails under CI (it would silently turn
tests into skips) and skips elsewhere.
"""

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("DCMFORGE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SAMPLES = SHARED / "samples"
SPEC = SHARED / "spec"


def require_shared():
    """Skip (or, under CI, fail) a test that needs shared/ when it is not there."""
    if not SHARED.is_dir():
        message = f"the shared reference folder {SHARED} is missing (set DCMFORGE_SHARED)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
