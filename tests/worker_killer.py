"""Test fault injection: a process that reads a header named *die-worker* is killed, as by the OOM killer;
one that commits a series folder named *die-after-commit* is killed once, right after the commit's rename
(a file .NAME.killed beside the folder says it was; the next try lives).

``worker_killer(folder)`` writes a sitecustomize.py into folder and returns
it: put it first on PYTHONPATH and every Python process started with that
path (the command, its pool processes, Dask workers) carries the hook.
"""

from pathlib import Path

SITECUSTOMIZE = """\
import os, signal
import dcmforge.readers.interfile as _interfile
_read = _interfile.read_interfile
def _read_or_die(path, **options):
    if "die-worker" in str(path):
        os.kill(os.getpid(), signal.SIGKILL)
    return _read(path, **options)
_interfile.read_interfile = _read_or_die

import dcmforge.write.commit as _commit
_commit_folder = _commit.SeriesFolder.commit
def _commit_and_die(self):
    final = _commit_folder(self)
    if "die-after-commit" in self.name:
        try:
            os.close(os.open(os.path.join(self.parent, "." + self.name + ".killed"), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return final
        os.kill(os.getpid(), signal.SIGKILL)
    return final
_commit.SeriesFolder.commit = _commit_and_die
"""


def worker_killer(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder
