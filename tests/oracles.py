"""Independent readers of a written series, for tests: SimpleITK, dcm2niix (+ a NIfTI-1 reader), pydicom.

Each reader returns an ``Image``: the voxels as float64 [z, y, x] (or [t, z, y, x]) and
the 4x4 affine taking index (x = column, y = row, z = slice, 1) to LPS mm, which is
the form dcmforge's own geometry takes, so the two compare directly:

    image = read_with_simpleitk(paths)
    image = read_with_dcm2niix(out_dir, tmp_path / "nifti")
    image = matched_to(image, expected)   # undo a reader's axis flips (e.g. slices sorted along the normal)

Nothing here uses dcmforge: the expected geometry is computed from first principles
(``affine_from_spacing``), so a shared mistake cannot hide.
"""

import subprocess
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dicom_tools import require

from dcmforge.pixels import FLOAT32_RELATIVE_ERROR

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


class Image(NamedTuple):
    affine: np.ndarray  # 4x4, index (x, y, z) -> LPS mm
    array: np.ndarray  # float64, [z, y, x] or [t, z, y, x]


def affine_from_spacing(spacing, origin=(0, 0, 0), orientation=(1, 0, 0, 0, 1, 0)):
    """Index -> LPS affine of a slice stack: columns row*dx, column*dy, (row x column)*dz, origin."""
    row, column = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    affine = np.eye(4)
    affine[:3, 0] = row * spacing[0]
    affine[:3, 1] = column * spacing[1]
    affine[:3, 2] = np.cross(row, column) * spacing[2]
    affine[:3, 3] = origin
    return affine


# -- SimpleITK --------------------------------------------------------------------------


def read_with_simpleitk(paths):
    """The files (one 3-D stack) as ITK's GDCM series reader sees them, rescaled per file in float64.

    ITK sorts the files itself (along the slice normal), so give it every file of one
    stack in any order; the voxels come back in ITK's order (see ``matched_to``).
    """
    paths = [str(p) for p in paths]
    folder = str(Path(paths[0]).parent)
    ordered = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
    # GetGDCMSeriesFileNames lists the whole folder's series; keep only the stack asked for.
    wanted = set(paths)
    chosen = [p for p in ordered if p in wanted]
    assert len(chosen) == len(paths), f"ITK lists {len(ordered)} files in {folder}, {len(chosen)} of {len(paths)} given"
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(chosen)
    reader.SetOutputPixelType(sitk.sitkFloat64)  # else the first file's slope picks the type for all
    image = reader.Execute()
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing())  # column i is axis i's step
    affine[:3, 3] = image.GetOrigin()
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    if array.shape[0] == 1 and len(chosen) > 1 and _rows(chosen[0]) == 1:
        # ITK takes one-row files for 1-D images and stacks them along its second axis,
        # in a made-up direction: only the origin and the column step are ITK's reading.
        affine[:3, 1:3] = np.nan
        array = array.reshape(len(chosen), 1, -1)
    return Image(affine, array)


def _rows(path):
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    return int(reader.GetMetaData("0028|0010"))


# -- dcm2niix and NIfTI-1 -------------------------------------------------------------------

# NIfTI-1 datatype code -> numpy type (the ones dcm2niix writes for 16-bit DICOM).
_NIFTI_TYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4"}


def read_nifti(path):
    """A single-file NIfTI-1 (.nii) image: the fixed 348-byte header, then the voxels at vox_offset."""
    data = Path(path).read_bytes()
    order = "<" if np.frombuffer(data, "<i4", 1)[0] == 348 else ">"
    assert np.frombuffer(data, f"{order}i4", 1)[0] == 348, f"{path}: not a NIfTI-1 header"
    assert data[344:348] == b"n+1\0", f"{path}: not a single-file NIfTI-1 (magic {data[344:348]!r})"

    def field(offset, kind, count=1):
        return np.frombuffer(data, f"{order}{kind}", count, offset)

    dim = field(40, "i2", 8)
    datatype = int(field(70, "i2")[0])
    vox_offset = int(field(108, "f4")[0])
    slope, intercept = (float(v) for v in field(112, "f4", 2))
    qform_code, sform_code = (int(v) for v in field(252, "i2", 2))
    assert sform_code > 0, f"{path}: no sform (qform_code {qform_code}); dcm2niix always writes one"
    affine = np.eye(4)
    affine[:3] = field(280, "f4", 12).reshape(3, 4)  # srow_x, srow_y, srow_z: index (i, j, k) -> RAS
    shape = tuple(int(n) for n in dim[1 : dim[0] + 1])
    kind = np.dtype(_NIFTI_TYPES[datatype]).newbyteorder(order)
    voxels = np.frombuffer(data, kind, int(np.prod(shape)), vox_offset)
    array = voxels.reshape(shape[::-1]).astype(np.float64)  # i varies fastest: C order is [.., k, j, i]
    if slope not in (0.0, 1.0) or intercept != 0.0:
        array = array * (slope or 1.0) + intercept
    while array.ndim < 3:
        array = array[None]
    return Image(RAS_TO_LPS @ affine, array)


def read_with_dcm2niix(folder, work_dir, program="dcm2niix"):
    """Convert ``folder`` with dcm2niix (one series expected) and read the NIfTI it writes.

    ``program``: the dcm2niix to run (the one on PATH unless a path is given).
    """
    require(program)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [program, "-b", "n", "-z", "n", "-f", "series", "-o", str(work_dir), str(folder)],
        capture_output=True, text=True, timeout=120,
    )
    written = sorted(work_dir.glob("*.nii"))
    assert done.returncode == 0 and len(written) == 1, f"dcm2niix wrote {written}:\n{done.stdout}{done.stderr}"
    return read_nifti(written[0])


# -- comparing ---------------------------------------------------------------------------


def matched_to(image, affine):
    """``image`` with each spatial axis flipped where it steps against ``affine``'s (origin moved with it).

    Readers may store an axis the other way round (ITK sorts slices along the normal,
    dcm2niix flips rows); flipping back lets voxels and affines compare one to one.
    An axis of length 1 takes the expected step (a single slice has no slice step to read).
    """
    result, array = image.affine.copy(), image.array
    for axis in range(3):
        along = array.ndim - 1 - axis  # x is the last array axis
        count = array.shape[along]
        if count == 1:
            result[:3, axis] = affine[:3, axis]
        elif result[:3, axis] @ affine[:3, axis] < 0:
            result[:3, 3] += (count - 1) * result[:3, axis]
            result[:3, axis] *= -1
            array = np.flip(array, along)
    return Image(result, array)


def geometry_error(image, affine):
    """Largest difference (mm) between two affines' voxel steps and origins (where the reader gave them)."""
    return float(np.nanmax(np.abs(image.affine[:3] - np.asarray(affine)[:3])))


# -- pydicom -----------------------------------------------------------------------------


def read_with_pydicom(paths):
    """Every file as a pydicom dataset (pixel data decoded), in the order given."""
    datasets = [pydicom.dcmread(str(p)) for p in paths]
    for ds, path in zip(datasets, paths):
        if ds.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.1":
            pytest.fail(f"{path}: transfer syntax {ds.file_meta.TransferSyntaxUID}")
    return datasets


def rescaled(ds):
    """One file's stored pixels times RescaleSlope plus RescaleIntercept, float64 [rows, columns]."""
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def allowed_value_error(slope, expected, dtype, intercept=0.0):
    """The packing contract's bound on |stored * slope + intercept - x|: half a slope, plus, for float32 voxels
    (packed in float32), FLOAT32_RELATIVE_ERROR of |x - intercept|; 1e-9 of a slope for the check's own rounding."""
    extra = FLOAT32_RELATIVE_ERROR * np.abs(np.asarray(expected) - intercept) if np.dtype(dtype) == np.float32 else 0.0
    return 0.5 * np.asarray(slope) * (1 + 1e-9) + extra
