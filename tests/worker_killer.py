"""Test fault injection: a process that reads a header named *die-worker* is killed, as by the OOM killer.

``worker_killer(folder)`` writes a sitecustomize.py into folder and returns
it: put it first on PYTHONPATH and every Python process started with that
path (the command, its pool processes, Dask workers) carries the hook.
"""

from pathlib import Path

SITECUSTOMIZE = """\
import os, signal
import dcmforge.interfile as _interfile
_read = _interfile.read_interfile
def _read_or_die(path, **options):
    if "die-worker" in str(path):
        os.kill(os.getpid(), signal.SIGKILL)
    return _read(path, **options)
_interfile.read_interfile = _read_or_die
"""


def worker_killer(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder
