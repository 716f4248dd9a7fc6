"""The built-in example: a small PET phantom written as Interfile, then converted.

``dcmforge demo DIR`` shows the whole job on a fresh machine: it writes
DIR/phantom.hv + .v (STIR-style Interfile with isotope, dose and timing keys)
and DIR/phantom.toml (the facts no header key carries: units, corrections),
and converts them to DIR/dicom/phantom/, with its preview picture
DIR/dicom/phantom.preview.png (the README shows it: docs/demo-preview.png).
"""

from pathlib import Path

import numpy as np

# A warm cylinder with hot spheres of different sizes, in Bq/ml.
BACKGROUND = 5000.0
SPHERES = (  # centre (x, y, z) in mm from the volume centre, radius mm, activity Bq/ml
    ((30.0, 0.0, 0.0), 14.0, 40000.0),
    ((-15.0, 26.0, 10.0), 10.0, 40000.0),
    ((-15.0, -26.0, -10.0), 7.0, 40000.0),
    ((0.0, 0.0, 0.0), 5.0, 20000.0),
)
SHAPE = (40, 64, 64)  # z, y, x
SPACING = (2.5, 2.5, 3.0)  # x, y, z in mm

METADATA = {
    "PatientName": "Demo^Phantom",
    "PatientID": "DCMFORGE-DEMO",
    "PatientWeight": 70.0,
    "StudyDate": "20250101",
    "StudyTime": "100000",
    "isotope": "F-18",
    "radiopharmaceutical": "Fluorodeoxyglucose",
    "injected_activity": 3.7e8,
    "injection_datetime": "2025-01-01T09:00:00",
    "frame_start": [0.0],
    "frame_duration": [600.0],
}


# What only an image's maker knows, stated as a user would (dcmforge claims none of it by itself):
# the values are activity concentrations at the acquisition start, with nothing left to correct.
# An ideal image is what attenuation and decay correction aim at, so it is stated as both: SUV-ready.
FACTS = 'units = "BQML"\ncorrections = ["attenuation", "decay"]\n'


def phantom():
    """The demo volume, float32 [z, y, x] in Bq/ml."""
    nz, ny, nx = SHAPE
    z, y, x = np.meshgrid(
        (np.arange(nz) - (nz - 1) / 2) * SPACING[2],
        (np.arange(ny) - (ny - 1) / 2) * SPACING[1],
        (np.arange(nx) - (nx - 1) / 2) * SPACING[0],
        indexing="ij",
    )
    volume = np.where(x**2 + y**2 < 70.0**2, BACKGROUND, 0.0)
    for (cx, cy, cz), radius, activity in SPHERES:
        volume[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < radius**2] = activity
    return volume.astype(np.float32)


def run_demo(folder):
    """Write the phantom as Interfile (and its facts) under folder and convert it; returns the exit status."""
    import sys

    from .convert import convert_one, warning_lines
    from .readers.interfile import write_interfile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    header = write_interfile(folder / "phantom.hv", phantom(), spacing=SPACING, metadata=METADATA)
    facts = folder / "phantom.toml"
    facts.write_text(FACTS, encoding="utf-8")
    print(f"wrote the Interfile phantom {header} and its units and corrections {facts}")
    options = {"overwrite": True, "seed": "dcmforge-demo", "preview": True, "meta": facts}
    result = convert_one(header, folder / "dicom" / "phantom", options)
    print(result.message, flush=True)
    for line in warning_lines(result):
        print(line, file=sys.stderr)
    return result.exit_status
