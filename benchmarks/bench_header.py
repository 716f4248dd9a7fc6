"""Time importing dcmforge and encoding one PET slice header, against pydicom.

    PYTHONPATH=src python benchmarks/bench_header.py [--repeat N]

(a) Import cost in fresh interpreters (median of N runs): wall time of the
    import statement, and the total `python -X importtime` reports for it.
    Measured with a filled bytecode cache (as after `pip install`; the cache
    lives in a temporary folder, so the work tree is not touched) and once
    without one (what an environment with PYTHONDONTWRITEBYTECODE=1 pays).
(b) One PET slice header, about 60 elements with the radiopharmaceutical and
    patient orientation sequences, no pixel data: dcmforge encode_dataset and
    encode_file, HeaderTemplate.render of the per-slice part only, and pydicom
    building a Dataset from the same values and writing it with dcmwrite to a
    BytesIO.  Median time per call over N repeats; ratio = pydicom / row.

Finishes in about 15-30 s on a 2-core machine.
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import timeit

import pydicom

# Run from a checkout as well as from an installed dcmforge.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src"))
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from dcmforge.dicom.encode import HeaderTemplate, encode_dataset, with_character_set
from dcmforge.dicom.part10 import encode_file
from dcmforge.dicom.uids import new_uid

# Elements that change from slice to slice in a static PET series.
SLICE_KEYS = ["SOPInstanceUID", "InstanceNumber", "ImagePositionPatient", "SliceLocation", "RescaleSlope",
              "ImageIndex", "LargestImagePixelValue"]

IMPORTS = {
    "import dcmforge": "import dcmforge",
    "import dcmforge.dicom.part10 (the encoder)": "import dcmforge.dicom.part10",
    "import numpy (part of the above)": "import numpy",
    "import pydicom": "import pydicom",
}


def _code(value, meaning):
    return [{"CodeValue": value, "CodingSchemeDesignator": "SCT", "CodeMeaning": meaning}]


def pet_header(index=1):
    """A typical PET slice header in plain Python values (no pixel data)."""
    return {
        "SpecificCharacterSet": "ISO_IR 192", "ImageType": ["ORIGINAL", "PRIMARY"],
        "InstanceCreationDate": "20250101", "InstanceCreationTime": "120000",
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.128", "SOPInstanceUID": new_uid("bench", "slice", index),
        "StudyDate": "20250101", "SeriesDate": "20250101", "AcquisitionDate": "20250101", "ContentDate": "20250101",
        "StudyTime": "100000", "SeriesTime": "101000", "AcquisitionTime": "101000", "ContentTime": "110000",
        "AccessionNumber": "", "Modality": "PT", "Manufacturer": "dcmforge", "ReferringPhysicianName": "",
        "StudyDescription": "PET/CT whole body", "SeriesDescription": "PET OSEM 3i21s",
        "ManufacturerModelName": "J-PET simulation", "PatientName": "Żółć^Łukasz", "PatientID": "SIM0001",
        "PatientBirthDate": "", "PatientSex": "O", "PatientAge": "045Y", "PatientSize": 1.75, "PatientWeight": 70.5,
        "SliceThickness": 2.5, "SoftwareVersions": ["recon 2.1", "dcmforge 0.1.0"], "CollimatorType": "NONE",
        "ActualFrameDuration": 600000, "StudyInstanceUID": new_uid("bench", "study"),
        "SeriesInstanceUID": new_uid("bench", "series"), "StudyID": "1", "SeriesNumber": 3, "InstanceNumber": index,
        "ImagePositionPatient": [-299.21875, -299.21875, -500.0 + 2.5 * index],
        "ImageOrientationPatient": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], "FrameOfReferenceUID": new_uid("bench", "frame"),
        "ImageLaterality": "U", "PositionReferenceIndicator": "", "SliceLocation": -500.0 + 2.5 * index,
        "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2", "Rows": 256, "Columns": 256,
        "PixelSpacing": [2.34375, 2.34375], "CorrectedImage": ["DECY", "ATTN", "SCAT", "RAN", "NORM"],
        "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15, "PixelRepresentation": 0,
        "LargestImagePixelValue": 32767, "WindowCenter": 5000.0, "WindowWidth": 10000.0, "RescaleIntercept": 0.0,
        "RescaleSlope": 0.123456789012345 * index, "LossyImageCompression": "00",
        "RadiopharmaceuticalInformationSequence": [{
            "Radiopharmaceutical": "Fluorodeoxyglucose", "RadiopharmaceuticalStartTime": "094500",
            "RadiopharmaceuticalStartDateTime": "20250101094500", "RadionuclideTotalDose": 370000000.0,
            "RadionuclideHalfLife": 6586.2, "RadionuclidePositronFraction": 0.9673,
            "RadionuclideCodeSequence": _code("77004003", "^18^Fluorine"),
            "RadiopharmaceuticalCodeSequence": _code("35321007", "Fluorodeoxyglucose F^18^"),
        }],
        "NumberOfSlices": 400,
        "PatientOrientationCodeSequence": [{
            **_code("102538003", "recumbent")[0],
            "PatientOrientationModifierCodeSequence": _code("40199007", "supine"),
        }],
        "PatientGantryRelationshipCodeSequence": _code("102540008", "headfirst"),
        "SeriesType": ["STATIC", "IMAGE"], "Units": "BQML", "CountsSource": "EMISSION", "DecayCorrection": "START",
        "ReconstructionMethod": "OSEM 3i21s", "FrameReferenceTime": 300000.0, "ImageIndex": index,
        "DecayFactor": 1.0113,
    }


def count_elements(dataset):
    return sum(1 + sum(count_elements(item) for item in value) if isinstance(value, list) and value
               and isinstance(value[0], dict) else 1 for value in dataset.values())


# -- (a) import cost -----------------------------------------------------------------

# The marker on stderr separates the interpreter's own start-up imports from the statement's.
_WALL = (
    "import sys, time; sys.stderr.write('MEASURE\\n'); sys.stderr.flush(); t = time.perf_counter(); {statement};"
    " print(time.perf_counter() - t)"
)


def _importtime_total(stderr):
    """Sum of the cumulative times of the statement's top-level imports in -X importtime output, in seconds."""
    total = 0
    for line in stderr.split("MEASURE\n", 1)[1].splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("  ") and cumulative.strip().isdigit():  # top level: no indentation
                total += int(cumulative)
    return total / 1e6


def import_costs(statement, repeat, env):
    walls, reported = [], []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", _WALL.format(statement=statement)],
                              capture_output=True, text=True, check=True, env=env)
        walls.append(float(done.stdout))
        reported.append(_importtime_total(done.stderr))
    return statistics.median(walls), statistics.median(reported)


def import_table(repeat):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.join(os.path.dirname(__file__), "..", "src"),
                                                    env.get("PYTHONPATH", "")] if p)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        cached = {**env, "PYTHONPYCACHEPREFIX": cache}
        for label, statement in IMPORTS.items():
            subprocess.run([sys.executable, "-c", statement], check=True, env=cached)  # fill the cache
            rows.append((label, "cached", *import_costs(statement, repeat, cached)))
    uncached = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory() as empty:
        for label, statement in list(IMPORTS.items())[:2]:
            rows.append((label, "no cache", *import_costs(statement, 3, {**uncached, "PYTHONPYCACHEPREFIX": empty})))
    return rows


# -- (b) one slice header ----------------------------------------------------------------


def to_pydicom(values):
    dataset = Dataset()
    for keyword, value in values.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = Sequence([to_pydicom(item) for item in value])
        setattr(dataset, keyword, value)
    return dataset


def pydicom_write(values):
    dataset = to_pydicom(values)
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    pydicom.dcmwrite(out, dataset, enforce_file_format=True)
    return out.getvalue()


def per_call(function, repeat):
    """Median seconds per call over ``repeat`` timings of about 0.2 s each."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return statistics.median(t / number for t in timer.repeat(repeat, number))


def header_table(repeat):
    header = pet_header(7)
    full, codec = with_character_set(header)
    template = HeaderTemplate({k: v for k, v in full.items() if k not in SLICE_KEYS}, SLICE_KEYS, codec)
    per_slice = {key: header[key] for key in SLICE_KEYS}
    assert b"".join(template.render(per_slice)) == encode_dataset(header)
    sizes = {"dcmforge": len(encode_file(header)), "pydicom": len(pydicom_write(header))}
    cases = [
        ("pydicom: build Dataset + dcmwrite(BytesIO)", lambda: pydicom_write(header)),
        ("dcmforge encode_file (meta + dataset)", lambda: encode_file(header)),
        ("dcmforge encode_dataset", lambda: encode_dataset(header)),
        (f"dcmforge HeaderTemplate.render ({len(SLICE_KEYS)} per-slice elements)", lambda: template.render(per_slice)),
    ]
    return [(label, per_call(function, repeat)) for label, function in cases], sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per median (default 7)")
    repeat = parser.parse_args().repeat

    print(f"Python {sys.version.split()[0]}, pydicom {pydicom.__version__}, {os.cpu_count()} cores (shared machine:"
          " expect some noise)\n")
    print(f"(a) import cost in a fresh interpreter, median of {repeat} runs (3 without a bytecode cache)")
    print(f"{'statement':40} {'bytecode':9} {'wall ms':>9} {'-X importtime ms':>17}")
    for label, cache, wall, reported in import_table(repeat):
        print(f"{label:40} {cache:9} {wall * 1e3:9.1f} {reported * 1e3:17.1f}")

    rows, sizes = header_table(repeat)
    header = pet_header()
    print(f"\n(b) one PET slice header: {count_elements(header)} elements ({len(header)} top-level, sequences and"
          f" their items' elements included), no pixel data;\n    file bytes: dcmforge {sizes['dcmforge']},"
          f" pydicom {sizes['pydicom']}; median of {repeat} runs")
    baseline = rows[0][1]
    print(f"{'what':58} {'us/call':>9} {'pydicom / this':>15}")
    for label, seconds in rows:
        print(f"{label:58} {seconds * 1e6:9.1f} {baseline / seconds:14.1f}x")


if __name__ == "__main__":
    main()
