"""Many inputs, one batch: the folder of each input's series.

Every batch (the command line, ``--jobs``, a Dask cluster) names its folders
here, so one input gets the same folder whichever way it runs.
"""

from pathlib import Path


def output_dirs(inputs, out_root):
    """One folder per input, named after the input file; a name already taken gets a number."""
    taken = set()
    dirs = []
    for header in inputs:
        stem = Path(header).stem
        name, number = stem, 1
        while name in taken:
            number += 1
            name = f"{stem}-{number}"
        taken.add(name)
        dirs.append(Path(out_root) / name)
    return dirs
