"""Part 10 files: preamble, meta group, atomic writes, and a PET slice the DICOM checkers accept."""

import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_tools import dcentvfy, dciodvfy, dcmdump, read_elements

from dcmforge.dicom.encode import ABSENT, HeaderTemplate, encode_dataset, with_character_set
from dcmforge.errors import EncodingError
from dcmforge.dicom.part10 import EXPLICIT_VR_LITTLE_ENDIAN, encode_file, file_meta, write_atomic, write_file
from dcmforge.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, new_uid

ROOT = Path(__file__).resolve().parents[1]
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
SOP_INSTANCE = "2.25.307832428177236446656597634374160914124"  # the spec's example: 44 bytes padded


def meta_elements(data):
    """The file meta group of a whole file, as [Element], and the offset where the dataset starts."""
    assert data[:128] == bytes(128) and data[128:132] == b"DICM"
    (group_length,) = struct.unpack_from("<I", data, 140)
    end = 144 + group_length
    return read_elements(data[132:end]), end


# -- layout --------------------------------------------------------------------------


def _padded(text, pad):
    data = text.encode("ascii")
    return data + pad * (len(data) % 2)


def test_meta_group_golden_bytes_and_the_spec_group_length_of_204():
    meta = file_meta(PET_IMAGE_STORAGE, SOP_INSTANCE)
    implementation_uid = _padded(IMPLEMENTATION_CLASS_UID, b"\x00")
    version_name = _padded(IMPLEMENTATION_VERSION_NAME, b" ")
    assert meta == bytes(128) + b"DICM" + bytes.fromhex(
        "0200 0000 554c 0400 cc000000"  # (0002,0000) UL 204
        "0200 0100 4f42 0000 02000000 0001"  # (0002,0001) OB 00\01
        "0200 0200 5549 1c00" + _padded(PET_IMAGE_STORAGE, b"\x00").hex()  # (0002,0002) UI, NUL pad
        + "0200 0300 5549 2c00" + _padded(SOP_INSTANCE, b"\x00").hex()  # (0002,0003) UI
        + "0200 1000 5549 1400" + _padded("1.2.840.10008.1.2.1", b"\x00").hex()  # (0002,0010) UI
        + "0200 1200 5549 2c00" + implementation_uid.hex()  # (0002,0012) UI, 44 bytes
        + "0200 1300 5348" + struct.pack("<H", len(version_name)).hex() + version_name.hex()  # (0002,0013) SH
    )
    # The spec's worked example: 14 + 36 + 52 + 28 + 52 + 22 = 204 for DCMFORGE_0_1_0.
    assert len(implementation_uid) == 44
    if IMPLEMENTATION_VERSION_NAME == "DCMFORGE_0_1_0":
        assert struct.unpack_from("<I", meta, 140)[0] == 204
    elements, end = meta_elements(meta)
    assert end == len(meta)
    assert [element.tag for element in elements] == [0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010,
                                                     0x00020012, 0x00020013]


def test_group_length_counts_every_meta_element_after_it():
    for sop_class, sop_instance in [("1.2", "1.2.3"), (PET_IMAGE_STORAGE, new_uid()), ("1.2.3.4", "1." + "2" * 62)]:
        meta = file_meta(sop_class, sop_instance)
        elements, end = meta_elements(meta)
        assert end == len(meta)
        headers = sum(12 if element.vr == "OB" else 8 for element in elements[1:])
        assert struct.unpack_from("<I", meta, 140)[0] == headers + sum(len(e.value) for e in elements[1:])


def pet_slice(index=1, count=3, name="Żółć^Łukasz", study=None, series=None, frame=None, rows=4, columns=4):
    """A small but complete PET Image slice (spec/dicom-minimal-iods.md section 5)."""
    def code(value, meaning):
        return [{"CodeValue": value, "CodingSchemeDesignator": "SCT", "CodeMeaning": meaning}]

    pixels = (np.arange(rows * columns, dtype=np.uint16).reshape(rows, columns) * index) % 4096
    return {
        "SOPClassUID": PET_IMAGE_STORAGE, "SOPInstanceUID": new_uid("test-pet", "slice", index),
        "ImageType": ["ORIGINAL", "PRIMARY"], "Modality": "PT",
        "StudyDate": "20250101", "SeriesDate": "20250101", "AcquisitionDate": "20250101", "ContentDate": "20250101",
        "StudyTime": "100000", "SeriesTime": "101000", "AcquisitionTime": "101000", "ContentTime": "110000",
        "AccessionNumber": "", "ReferringPhysicianName": "", "StudyDescription": "dcmforge test",
        "SeriesDescription": "PET OSEM (simulated)", "Manufacturer": "dcmforge", "ManufacturerModelName": "simulation",
        "SoftwareVersions": ["recon 1.0", "dcmforge 0.1.0"],
        "PatientName": name, "PatientID": "SIM0001", "PatientBirthDate": "", "PatientSex": "O",
        "PatientSize": 1.75, "PatientWeight": 70, "SliceThickness": 4.0, "CollimatorType": "NONE",
        "ActualFrameDuration": 600000, "StudyInstanceUID": study or new_uid("test-pet", "study"),
        "SeriesInstanceUID": series or new_uid("test-pet", "series"), "StudyID": "1", "SeriesNumber": 1,
        "InstanceNumber": index, "ImagePositionPatient": np.array([-6.0, -6.0, 4.0 * (index - 1)]),
        "ImageOrientationPatient": [1, 0, 0, 0, 1, 0], "FrameOfReferenceUID": frame or new_uid("test-pet", "frame"),
        "PositionReferenceIndicator": "", "ImageLaterality": "U", "SliceLocation": np.float32(4.0 * (index - 1)),
        "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2", "Rows": rows, "Columns": columns,
        "PixelSpacing": np.array([4.0, 4.0], np.float32), "CorrectedImage": ["DECY", "ATTN", "SCAT", "RAN", "NORM"],
        "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15, "PixelRepresentation": 0,
        "RescaleIntercept": 0, "RescaleSlope": 1 / 3 * index, "LossyImageCompression": "00",
        "WindowCenter": 1000, "WindowWidth": 2000,
        "RadiopharmaceuticalInformationSequence": [{
            "Radiopharmaceutical": "Fluorodeoxyglucose", "RadiopharmaceuticalStartTime": "094500",
            "RadiopharmaceuticalStartDateTime": "20250101094500", "RadionuclideTotalDose": 370e6,
            "RadionuclideHalfLife": 6586.2, "RadionuclidePositronFraction": 0.9673,
            "RadionuclideCodeSequence": code("77004003", "^18^Fluorine"),
            "RadiopharmaceuticalCodeSequence": code("35321007", "Fluorodeoxyglucose F^18^"),
            "AdministrationRouteCodeSequence": code("47625008", "Intravenous route"),
        }],
        "NumberOfSlices": count,
        "PatientOrientationCodeSequence": [{
            **code("102538003", "recumbent")[0],
            "PatientOrientationModifierCodeSequence": code("40199007", "supine"),
        }],
        "PatientGantryRelationshipCodeSequence": code("102540008", "headfirst"),
        "SeriesType": ["STATIC", "IMAGE"], "Units": "BQML", "CountsSource": "EMISSION", "DecayCorrection": "START",
        "FrameReferenceTime": 300000.0, "ImageIndex": index, "DecayFactor": 1.0,
        "PixelData": pixels,
    }


def test_file_layout_and_meta_values():
    dataset = pet_slice()
    data = encode_file(dataset)
    elements, end = meta_elements(data)
    values = {element.tag: element.value for element in elements}
    assert values[0x00020001] == b"\x00\x01"
    assert values[0x00020002] == dataset["SOPClassUID"].encode() + b"\x00"  # byte-identical to (0008,0016)
    assert values[0x00020003].rstrip(b"\x00") == dataset["SOPInstanceUID"].encode()
    assert values[0x00020010] == EXPLICIT_VR_LITTLE_ENDIAN.encode() + b"\x00"
    assert values[0x00020010] == b"1.2.840.10008.1.2.1\x00"
    assert values[0x00020012].rstrip(b"\x00") == IMPLEMENTATION_CLASS_UID.encode()
    assert values[0x00020013].rstrip(b" ") == IMPLEMENTATION_VERSION_NAME.encode()
    # The dataset follows the meta group directly, and nothing follows the dataset.
    assert data[end:] == encode_dataset(dataset)
    body = {element.tag: element.value for element in read_elements(data[end:])}
    assert body[0x00080016] == values[0x00020002] and body[0x00080018] == values[0x00020003]


def test_pydicom_reads_the_file_meta_and_the_pixels():
    dataset = pet_slice(index=2)
    back = pydicom.dcmread(io.BytesIO(encode_file(dataset)))
    meta = back.file_meta
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert meta.MediaStorageSOPClassUID == back.SOPClassUID == PET_IMAGE_STORAGE
    assert meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID == dataset["SOPInstanceUID"]
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert back.PatientName == "Żółć^Łukasz" and back.SpecificCharacterSet == "ISO_IR 192"
    assert np.array_equal(back.pixel_array, dataset["PixelData"])
    assert back.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0].CodeValue == "77004003"
    assert float(back.RescaleSlope) == pytest.approx(2 / 3, rel=1e-14)
    assert back.PixelSpacing == [4, 4] and back.SliceLocation == 4


def test_a_file_needs_its_sop_uids():
    dataset = pet_slice()
    del dataset["SOPClassUID"]
    with pytest.raises(EncodingError, match="SOPClassUID"):
        encode_file(dataset)
    with pytest.raises(EncodingError, match=r"SOPInstanceUID \(0008,0018\) UI.*'1\.02'"):
        encode_file({**pet_slice(), "SOPInstanceUID": "1.02"})


# -- writing ---------------------------------------------------------------------------


def test_write_file_writes_exactly_the_encoded_bytes(tmp_path):
    dataset = pet_slice()
    path = write_file(tmp_path / "slice.dcm", dataset)
    assert Path(path) == tmp_path / "slice.dcm"
    assert path.read_bytes() == encode_file(dataset)
    assert os.listdir(tmp_path) == ["slice.dcm"]


@pytest.mark.parametrize(
    "bad", [{"PatientWeight": "heavy"}, {"SOPInstanceUID": "1.02"}, {"Rows": 70000},
            {"RadiopharmaceuticalInformationSequence": [{"RadionuclideTotalDose": float("nan")}]}]
)
def test_bad_input_never_produces_a_file(tmp_path, bad):
    with pytest.raises(EncodingError):
        write_file(tmp_path / "slice.dcm", {**pet_slice(), **bad})
    assert os.listdir(tmp_path) == []  # neither the file nor a temporary one


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "slice.dcm"
    path.write_bytes(b"old")
    with pytest.raises(EncodingError):
        write_file(path, {**pet_slice(), "PatientSex": "unknown"})
    with pytest.raises(TypeError):
        write_atomic(path, [b"new", object()])  # fails while writing, after the temporary exists
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["slice.dcm"]


def test_write_atomic_takes_many_pieces_of_any_buffer_type(tmp_path):
    pieces = [bytes([i % 251]) * (i % 7) for i in range(3000)]
    pieces += [memoryview(b"view"), bytearray(b"array"), np.arange(5, dtype=np.uint16)]
    path = write_atomic(tmp_path / "many.bin", pieces)
    assert path.read_bytes() == b"".join(bytes(piece) for piece in pieces[:-1]) + pieces[-1].tobytes()


# -- the checkers accept what dcmforge writes ------------------------------------------


@pytest.fixture(scope="module")
def pet_series(tmp_path_factory):
    """Three slices of one series written with write_file, and the same three with HeaderTemplate."""
    folder = tmp_path_factory.mktemp("pet")
    paths = [write_file(folder / f"PT_{index:04d}.dcm", pet_slice(index)) for index in (1, 2, 3)]
    slice_keys = ["SOPInstanceUID", "InstanceNumber", "ImagePositionPatient", "SliceLocation", "RescaleSlope",
                  "ImageIndex", "PixelData", "WindowCenter"]
    first, codec = with_character_set(pet_slice(1))
    template = HeaderTemplate({k: v for k, v in first.items() if k not in slice_keys}, slice_keys, codec)
    for index in (1, 2, 3):
        dataset = pet_slice(index)
        per_slice = {key: dataset[key] for key in slice_keys}
        if index == 2:
            per_slice["WindowCenter"] = 500  # WindowWidth is shared
        if index == 3:
            per_slice["SliceLocation"] = ABSENT  # Type 3: left out of this slice
            del dataset["SliceLocation"]
        pieces = [file_meta(PET_IMAGE_STORAGE, dataset["SOPInstanceUID"]), *template.render(per_slice)]
        path = write_atomic(folder / f"TPL_{index:04d}.dcm", pieces)
        dataset.update((key, value) for key, value in per_slice.items() if value is not ABSENT)
        assert path.read_bytes() == encode_file(dataset)
        paths.append(path)
    return paths


def test_dciodvfy_reports_no_error_and_no_warning(pet_series):
    for path in pet_series:
        report = dciodvfy(path)
        assert report.errors == [] and report.warnings == [], report.output
        assert "PETImage" in report.output


def test_dcentvfy_finds_the_series_consistent(pet_series):
    report = dcentvfy(pet_series[:3])
    assert report.errors == [], report.output


def test_dcmdump_reads_every_element(pet_series):
    report = dcmdump(pet_series[0])
    assert report.errors == [] and report.warnings == [], report.output
    assert report.returncode == 0
    for line in ("(0002,0000) UL 204", "(0002,0010) UI =LittleEndianExplicit", "(0008,0005) CS [ISO_IR 192]",
                 "(0010,0010) PN [Żółć^Łukasz]", "(0028,0030) DS [4\\4]", "(0028,1053) DS [0.33333333333333]",
                 "(0018,0031) LO [Fluorodeoxyglucose]", "(0054,0016) SQ (Sequence with explicit length #=1)",
                 "(7fe0,0010) OW"):
        assert line in report.output, line


def test_checkers_do_report_a_broken_file(pet_series, tmp_path):
    # The tests above would pass vacuously if the checkers never complained.
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(encode_file({**pet_slice(), "PatientSex": "", "Modality": None, "Units": "BQML"}))
    assert dciodvfy(broken).errors
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(pet_series[0].read_bytes()[:700])
    assert dcmdump(truncated).errors
    other_patient = tmp_path / "other.dcm"
    other_patient.write_bytes(encode_file({**pet_slice(2), "PatientID": "SOMEONE ELSE"}))
    assert dcentvfy([pet_series[0], other_patient]).errors


# -- import cost -------------------------------------------------------------------------


def test_import_loads_neither_pydicom_nor_numba():
    script = (
        "import sys, dcmforge\n"
        "from dcmforge.dicom.part10 import encode_file\n"
        "encode_file({'SOPClassUID': '1.2', 'SOPInstanceUID': '1.2.3', 'PatientName': 'Ż', 'Rows': 2})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydicom', 'numba', 'SimpleITK',"
        " 'hypothesis', 'pytest')))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.stdout.strip() == "[]"


def test_short_writes_are_continued_where_they_stopped(tmp_path, monkeypatch):
    # A write may take fewer bytes than asked (a pipe, NFS, a signal): the rest must follow, in order.
    real_writev = os.writev

    def at_most_seven_bytes(fd, buffers):
        first = bytes(memoryview(buffers[0]).cast("B")[:7])
        return real_writev(fd, [first])

    monkeypatch.setattr(os, "writev", at_most_seven_bytes)
    pieces = [b"header-bytes", np.arange(40, dtype="<u2"), b"", b"tail"]
    path = write_atomic(tmp_path / "short.bin", pieces)
    assert path.read_bytes() == b"header-bytes" + np.arange(40, dtype="<u2").tobytes() + b"tail"
