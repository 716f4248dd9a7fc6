"""Write an Interfile image: a STIR-style header (.hv) and float32 data file (.v).

For tests and the demo: :func:`dcmforge.readers.interfile.read_interfile` reads the pair
back as the same volume (in float32), affine and metadata (the keys in
WRITABLE_METADATA). The patient position tables are :mod:`dcmforge.readers.interfile.geometry`'s.
"""

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...errors import GeometryError, InterfileError, VolumeError
from .geometry import POSITIONS, STIR_TO_LPS

WRITABLE_METADATA = (
    "PatientName", "PatientID", "PatientSex", "PatientBirthDate", "PatientWeight", "StudyID", "StudyDate",
    "StudyTime", "TimezoneOffsetFromUTC", "ManufacturerModelName", "isotope", "radiopharmaceutical",
    "injected_activity", "injection_datetime", "half_life", "positron_fraction", "frame_start", "frame_duration",
    "patient_position", "modality",
)  # fmt: skip
# DICOM modality -> (imaging modality, type of data, study section) as STIR writes them
MODALITY_WORDS = {"PT": ("PET", "PET", "PET"), "NM": ("NM", "Tomographic", "SPECT"), "CT": ("CT", "Other", "PET")}
POSITION_WORDS = {"HF": "head_in", "FF": "feet_in", "S": "supine", "P": "prone"}


def write_interfile(
    header_path: str | os.PathLike,
    volume: np.ndarray,
    *,
    spacing: Sequence[float],
    first_voxel: Sequence[float] | None = None,
    byte_order: Literal["little", "big"] = "little",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write volume ([z, y, x] or [t, z, y, x]) as a STIR-style header_path (.hv) + .v float32 pair.

    spacing is (dx, dy, dz) in mm; first_voxel the LPS mm of voxel [0, 0, 0]
    (default: STIR's default origin). metadata takes the keys read_interfile
    produces (WRITABLE_METADATA). Returns the header path.
    """
    header_path = Path(header_path)
    data_path = header_path.with_suffix(".v")
    if data_path == header_path:
        raise InterfileError(f"{header_path}: the header must not end in .v (that is the data file)")
    shape = tuple(int(n) for n in volume.shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise VolumeError(f"write_interfile needs a [z, y, x] or [t, z, y, x] volume, not shape {shape}")
    frames = shape[0] if len(shape) == 4 else 1
    nz, ny, nx = shape[-3:]
    steps = np.asarray(spacing, dtype=np.float64)
    if steps.shape != (3,) or not np.all(np.isfinite(steps)) or np.any(steps <= 0):
        raise GeometryError(f"spacing must be three positive sizes (dx, dy, dz) in mm, not {spacing!r}")
    order = {"little": ("<", "LITTLEENDIAN"), "big": (">", "BIGENDIAN")}.get(byte_order)
    if order is None:
        raise InterfileError(f"byte_order must be 'little' or 'big', not {byte_order!r}")
    meta = dict(metadata or {})
    unknown = sorted(set(meta) - set(WRITABLE_METADATA))
    if unknown:
        raise InterfileError(f"write_interfile cannot store metadata {unknown}: it stores {WRITABLE_METADATA}")
    position = str(meta.get("patient_position", "HFS")).upper()
    if position not in POSITIONS:
        raise GeometryError(f"unknown patient position {position!r}: expected one of {POSITIONS}")
    signs = np.array(STIR_TO_LPS[position], dtype=np.float64)
    if first_voxel is None:
        stir_first = np.array([-(nx // 2) * steps[0], -(ny // 2) * steps[1], 0.0])
    else:
        stir_first = signs * np.asarray(first_voxel, dtype=np.float64)  # the sign table is its own inverse

    modality, data_type, study = MODALITY_WORDS.get(meta.get("modality"), MODALITY_WORDS["PT"])
    lines = ["!INTERFILE  :=", f"!imaging modality := {modality}", "!version of keys := STIR4.0",
             f"name of data file := {data_path.name}", "!GENERAL DATA :=", "!GENERAL IMAGE DATA :=",
             f"!type of data := {data_type}"]  # fmt: skip
    lines += _metadata_lines(meta, frames)
    lines += [f"imagedata byte order := {order[1]}", f"!{study} STUDY (General) :=",
              f"patient orientation := {POSITION_WORDS[position[:2]]}",
              f"patient rotation := {POSITION_WORDS[position[2]]}"]  # fmt: skip
    lines += ["!PET data type := Image"] if study == "PET" else []
    lines += ["process status := Reconstructed", "!number format := float", "!number of bytes per pixel := 4",
              "number of dimensions := 3"]  # fmt: skip
    for axis, (label, size) in enumerate(zip("xyz", (nx, ny, nz)), start=1):
        lines += [f"matrix axis label [{axis}] := {label}", f"!matrix size [{axis}] := {size}",
                  f"scaling factor (mm/pixel) [{axis}] := {float(steps[axis - 1])!r}"]  # fmt: skip
    lines += [f"first pixel offset (mm) [{axis}] := {float(stir_first[axis - 1])!r}" for axis in (1, 2, 3)]
    lines.append(f"number of time frames := {frames}")
    frame_bytes = nx * ny * nz * 4
    for frame in range(1, frames + 1):
        offset = (frame - 1) * frame_bytes
        lines += [f"image scaling factor[{frame}] := 1", f"data offset in bytes[{frame}] := {offset}"]
    lines.append("!END OF INTERFILE :=")

    with open(data_path, "wb") as stream:  # a plane at a time: the volume may be a memmap
        for frame in range(frames):
            for plane in range(nz):
                part = volume[frame, plane] if len(shape) == 4 else volume[plane]
                stream.write(np.ascontiguousarray(part, dtype=order[0] + "f4").tobytes())
    header_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return header_path


def _metadata_lines(meta, frames):
    def text(key):
        value = str(meta[key])
        if any(c in value for c in ";\r\n\\"):
            raise InterfileError(f"metadata {key} = {value!r}: Interfile cannot store ';', '\\' or line breaks")
        return value

    def date(value):
        return f"{value[:4]}:{value[4:6]}:{value[6:8]}"

    def time(value):
        return f"{value[:2]}:{value[2:4]}:{value[4:]}"

    simple = {"PatientName": "patient name", "PatientID": "patient ID", "PatientSex": "patient sex",
              "StudyID": "study ID", "ManufacturerModelName": "originating system", "isotope": "isotope name",
              "radiopharmaceutical": "radiopharmaceutical"}  # fmt: skip
    numbers = {"PatientWeight": "patient weight (kg)", "injected_activity": "tracer activity at time of injection (Bq)",
               "half_life": "radionuclide halflife (sec)[1]",
               "positron_fraction": "radionuclide branching factor[1]"}  # fmt: skip
    lines = [f"{simple[k]} := {text(k)}" for k in simple if k in meta]
    lines += [f"{numbers[k]} := {float(meta[k])!r}" for k in numbers if k in meta]
    if "PatientBirthDate" in meta:
        lines.append(f"patient dob := {date(text('PatientBirthDate'))}")
    if "StudyDate" in meta:
        lines.append(f"study date := {date(text('StudyDate'))}")
    if "StudyTime" in meta:
        zone = text("TimezoneOffsetFromUTC") if "TimezoneOffsetFromUTC" in meta else ""
        lines.append(f"study time := {time(text('StudyTime'))}{zone[:3]}{':' if zone else ''}{zone[3:]}")
    if "injection_datetime" in meta:
        try:
            when = dt.datetime.fromisoformat(text("injection_datetime"))
        except ValueError:
            raise InterfileError(
                f"metadata injection_datetime = {meta['injection_datetime']!r} is not ISO 8601"
            ) from None
        zone = when.strftime("%z")
        gmt = f" GMT{zone[:3]}:{zone[3:]}" if zone else ""
        lines += [f"tracer injection date (yyyy:mm:dd) := {when:%Y:%m:%d}",
                  f"tracer injection time (hh:mm:ss{gmt}) := {when:%H:%M:%S}"]  # fmt: skip
    for key, label in (("frame_start", "image relative start time (sec)"), ("frame_duration", "image duration (sec)")):
        if key in meta:
            values = list(meta[key])
            if len(values) != frames:
                raise InterfileError(f"metadata {key} has {len(values)} values for {frames} frame(s)")
            lines += [f"{label}[{f}] := {float(v)!r}" for f, v in enumerate(values, start=1)]
    return lines
