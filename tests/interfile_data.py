"""Test data for the Interfile reader: the sample headers with synthetic data files, and headers made up.

The sample headers in tests/data/interfile are written for the suite, one or more
in each dialect's style and with each quirk met in the wild (no !INTERFILE line,
"short float", numbers like "+5.0e+00", a key broken over two lines, no END
line, trailing blanks, metaheaders, projection data). They come without data:
the table below says which data file each names and what numpy shape and type
its voxels have; the helpers write a data file that matches, with marker values
at known voxels so that a test can tell whether the reader put the axes and
bytes in the right places. Data files are sparse (truncate, then write the markers).

When the project's reference folder is present, its real headers join the
parametrized cases as extras (names starting "shared/").
"""

import shutil
from pathlib import Path

import numpy as np

from testdata import DATA, extra_samples

SAMPLES = DATA / "interfile"
SHARED_SAMPLES = extra_samples("interfile")

# header -> (data file, dialect, shape [z, y, x], dtype), read from the header.
OWN_IMAGE_SAMPLES = {
    "castor/bare.hdr": ("bare.img", "castor", (12, 16, 20), "<f4"),
    "castor/osem_it4.hdr": ("osem_it4.img", "castor", (30, 24, 24), "<f4"),
    "gate/activity_u16.h33": ("activity_u16.i33", "gate", (6, 10, 12), "<u2"),
    "gate/cube.h33": ("cube.i33", "gate", (7, 8, 8), "<f4"),
    "sirf/emission_fdg.hv": ("emission_fdg.v", "stir", (5, 17, 17), "<f4"),
    "sirf/mu_map.hv": ("mu_map.v", "stir", (1, 21, 21), "<f4"),
    "sirf/recon_pmqp.hv": ("recon_pmqp.v", "stir", (7, 10, 10), "<f4"),
    "stir/odd_default.hv": ("odd_default.v", "stir", (5, 11, 11), "<f4"),
    "stir/spect_osem.hv": ("spect_osem.v", "stir", (8, 14, 14), "<f4"),
    "stir/template.hv": ("template.v", "stir", (6, 9, 9), "<f4"),
}
# The reference folder's real headers, read by hand the same way (extra cases when present).
SHARED_IMAGE_SAMPLES = {
    "shared/castor/img_name.hdr": ("img_name.img", "castor", (50, 256, 256), "<f4"),
    "shared/castor/recon_3_1_it3.hdr": ("recon_3_1_it3.img", "castor", (200, 160, 160), "<f4"),
    "shared/gate/brain_phantom.h33": ("brain_phantom.i33", "gate", (16, 32, 32), "<u2"),
    "shared/gate/phantom_test.h33": ("phantom_test.i33", "gate", (9, 9, 9), "<f4"),
    "shared/sirf/attenuation.hv": ("attenuation.v", "stir", (1, 155, 155), "<f4"),
    "shared/sirf/emission.hv": ("emission.v", "stir", (15, 211, 211), "<f4"),
    "shared/sirf/test_image_PM_QP_6.hv": ("test_image_PM_QP_6.v", "stir", (31, 60, 60), "<f4"),
    "shared/stir/OSEM_2DPSF_16.hv": ("OSEM_2DPSF_16.v", "stir", (64, 128, 128), "<f4"),
    "shared/stir/RPTsens_seg3_PM.hv": ("RPTsens_seg3_PM.v", "stir", (31, 60, 60), "<f4"),
    "shared/stir/init.hv": ("init.v", "stir", (31, 60, 60), "<f4"),
    "shared/stir/template_image.hv": ("template_image.v", "stir", (31, 65, 65), "<f4"),
    "shared/stir/test_image_3.hv": ("test_image_3.v", "stir", (31, 97, 97), "<f4"),
    "shared/stir/test_image_OSSPS_PM_QP_8.hv": ("test_image_OSSPS_PM_QP_8.v", "stir", (31, 60, 60), "<f4"),
}
IMAGE_SAMPLES = {**OWN_IMAGE_SAMPLES, **(SHARED_IMAGE_SAMPLES if SHARED_SAMPLES else {})}
METAHEADER_SAMPLE = "castor/frames.mhd"  # lists img_frm0.hdr ... img_frm3.hdr
METAHEADER_FRAMES = 4
FRAME_SHAPE = (3, 4, 5)  # of the made-up CASToR frames behind the metaheader
OWN_PROJECTION_SAMPLES = (
    "interfile33/projections.hs",
    "interfile33/spect_acquired.hs",
    "siemens/coincidences.l.hdr",
    "siemens/emission.s.hdr",
)
SHARED_PROJECTION_SAMPLES = (
    "shared/interfile33/SPECT_Interfile_header.hs",
    "shared/interfile33/input.hs",
    "shared/siemens/list.l.hdr",
    "shared/siemens/mMR_sinogram.s.hdr",
)
PROJECTION_SAMPLES = OWN_PROJECTION_SAMPLES + (SHARED_PROJECTION_SAMPLES if SHARED_SAMPLES else ())


def sample_path(name):
    """The header file of a sample name: tests/data/interfile/<name>, or the reference folder's for "shared/..."."""
    if name.startswith("shared/"):
        return SHARED_SAMPLES / name.removeprefix("shared/")
    return SAMPLES / name


def all_sample_headers():
    return sorted(IMAGE_SAMPLES) + [METAHEADER_SAMPLE] + list(PROJECTION_SAMPLES)


def marker_voxels(shape):
    """Voxels that pin down the axis order: the first, one step along each axis, the last."""
    last = tuple(n - 1 for n in shape)
    steps = [tuple(int(a == b) for b in range(len(shape))) for a in range(len(shape) - 1, -1, -1)]
    voxels = [tuple(0 for _ in shape)] + [s for s in steps if all(i < n for i, n in zip(s, shape))] + [last]
    return list(dict.fromkeys(voxels))


def write_marker_data(path, shape, dtype, offset=0):
    """A zero data file of shape/dtype after offset bytes, with markers 1, 2, ... ; returns {voxel: value}.

    Byte positions are computed here from the Interfile rule (axis 1 fastest), independently of the reader.
    """
    dtype = np.dtype(dtype)
    markers = {voxel: number for number, voxel in enumerate(marker_voxels(shape), start=1)}
    with open(path, "wb") as stream:
        stream.truncate(offset + int(np.prod(shape)) * dtype.itemsize)
        for voxel, value in markers.items():
            linear = 0
            for index, size in zip(voxel, shape):
                linear = linear * size + index
            stream.seek(offset + linear * dtype.itemsize)
            stream.write(np.array(value, dtype=dtype).tobytes())
    return markers


def install_sample(name, folder):
    """Copy the sample header name into folder with a matching data file; returns (header, markers)."""
    header = Path(folder) / Path(name).name
    shutil.copyfile(sample_path(name), header)
    if name == METAHEADER_SAMPLE:
        return header, install_metaheader_frames(folder)
    if name in IMAGE_SAMPLES:
        data, _, shape, dtype = IMAGE_SAMPLES[name]
        return header, write_marker_data(Path(folder) / data, shape, dtype)
    return header, {}


def install_metaheader_frames(folder):
    """The CASToR frame headers img_frm<n>.hdr + .img that the metaheader sample lists; returns
    {(frame, z, y, x): value} of their markers. Frame n starts at 60 n s and lasts 60 s."""
    markers = {}
    nz, ny, nx = FRAME_SHAPE
    for frame in range(METAHEADER_FRAMES):
        text = CASTOR_FRAME.format(frame=frame, nx=nx, ny=ny, nz=nz, start=60 * frame)
        (Path(folder) / f"img_frm{frame}.hdr").write_text(text)
        found = write_marker_data(Path(folder) / f"img_frm{frame}.img", FRAME_SHAPE, "<f4")
        markers.update({(frame,) + voxel: value for voxel, value in found.items()})
    return markers


CASTOR_FRAME = """!INTERFILE :=
!imaging modality := PET
!version of keys := CASToRv3.1
CASToR version := 3.1
!GENERAL DATA :=
!data offset in bytes := 0
!name of data file := img_frm{frame}.img
patient name := img_frm{frame}
!GENERAL IMAGE DATA :=
!type of data := Dynamic
imagedata byte order := LITTLEENDIAN
!STATIC STUDY (General) :=
number of dimensions := 3
!matrix size [1] := {nx}
!matrix size [2] := {ny}
!matrix size [3] := {nz}
!number format := short float
!number of bytes per pixel := 4
scaling factor (mm/pixel) [1] := 2
scaling factor (mm/pixel) [2] := 2
scaling factor (mm/pixel) [3] := 3
first pixel offset (mm) [1] := 0
first pixel offset (mm) [2] := 0
first pixel offset (mm) [3] := 0
!image duration (sec) := 60
!image start time (sec) := {start}
!END OF INTERFILE :=
"""


def stir_header(shape, spacing=(2.0, 2.0, 3.0), *, data="img.v", orientation="head_in", rotation="supine",
                first_pixel=None, number_format="float", bytes_per_pixel=4, byte_order="LITTLEENDIAN",
                extra=()):  # fmt: skip
    """A STIR image header for a [z, y, x] shape; pass None to leave a key out."""
    nz, ny, nx = shape
    lines = ["!INTERFILE  :=", "!imaging modality := PET", "!version of keys := STIR4.0",
             f"name of data file := {data}", "!GENERAL DATA :=", "!GENERAL IMAGE DATA :=",
             "!type of data := PET"]  # fmt: skip
    if byte_order is not None:
        lines.append(f"imagedata byte order := {byte_order}")
    lines.append("!PET STUDY (General) :=")
    if orientation is not None:
        lines.append(f"patient orientation := {orientation}")
    if rotation is not None:
        lines.append(f"patient rotation := {rotation}")
    lines += ["!PET data type := Image", "process status := Reconstructed", f"!number format := {number_format}",
              f"!number of bytes per pixel := {bytes_per_pixel}", "number of dimensions := 3"]  # fmt: skip
    for axis, (label, size, step) in enumerate(zip("xyz", (nx, ny, nz), spacing), start=1):
        lines += [f"matrix axis label [{axis}] := {label}", f"!matrix size [{axis}] := {size}",
                  f"scaling factor (mm/pixel) [{axis}] := {step}"]  # fmt: skip
    if first_pixel is not None:
        lines += [f"first pixel offset (mm) [{axis}] := {value}" for axis, value in enumerate(first_pixel, start=1)]
    lines += list(extra)
    lines.append("!END OF INTERFILE :=")
    return "\n".join(lines) + "\n"


def castor_header(shape, spacing=(2.0, 2.0, 3.0), *, data="img.img", extra=()):
    """A CASToR 3.x image header for a [z, y, x] float32 shape."""
    nz, ny, nx = shape
    lines = ["!INTERFILE := ", "!imaging modality := PET", "!version of keys := CASToRv3.1", "CASToR version := 3.1",
             "!GENERAL DATA := ", "!data offset in bytes := 0", f"!name of data file := {data}",
             "!GENERAL IMAGE DATA ", "!type of data := Dynamic", "imagedata byte order := LITTLEENDIAN",
             "!STATIC STUDY (General) :=", "number of dimensions := 3", f"!matrix size [1] := {nx}",
             f"!matrix size [2] := {ny}", f"!matrix size [3] := {nz}", "!number format := short float",
             "!number of bytes per pixel := 4"]  # fmt: skip
    lines += [f"scaling factor (mm/pixel) [{axis}] := {step}" for axis, step in enumerate(spacing, start=1)]
    lines += list(extra)
    lines.append("!END OF INTERFILE := ")
    return "\n".join(lines) + "\n"


def write_image(folder, name, header_text, array, dtype="<f4", offset=0):
    """header_text as folder/name, and array (in the given file dtype) as the data file it names."""
    header = Path(folder) / name
    header.write_text(header_text)
    data_name = next(
        line.split(":=", 1)[1].strip() for line in header_text.splitlines() if "name of data file" in line
    )
    with open(Path(folder) / data_name, "wb") as stream:
        stream.write(b"\xff" * offset)
        stream.write(np.ascontiguousarray(array, dtype=dtype).tobytes())
    return header
