"""dcmforge's output read the way users' viewers read it, with their default settings (issue 10).

SimpleITK's ImageSeriesReader picks one pixel type for a whole series from its
first file's rescale (GDCM: an integer type when the slope is whole), so an
empty first slice must not carry slope 1.
"""

import numpy as np
import SimpleITK as sitk

from dcmforge import SeriesWriter, write_series

PET_METADATA = {
    "isotope": "F-18",
    "acquisition_datetime": "2025-01-31T10:45:00",
    "PatientID": "PHANTOM-1",
    "InstanceCreationDate": "20250131",
    "InstanceCreationTime": "120000",
}


def peaked_volume():
    """Float PET slices: the first and last empty, fractions, a peak above 65535 (uint16 would wrap it)."""
    volume = np.random.default_rng(10).random((6, 5, 7)).astype(np.float32) * 4000 + 0.25
    volume[0] = 0
    volume[-1] = 0
    volume[2, 1, 1] = 100000.5
    volume[3, 2, 2] = 3821.153
    return volume


def read_series_as_itk_does(folder):
    """ImageSeriesReader with default settings, files in GDCM's order: (array [z, y, x], pixel type)."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    return sitk.GetArrayFromImage(image).astype(np.float64), image.GetPixelIDTypeAsString()


def slopes_of(paths):
    reader = sitk.ImageFileReader()
    slopes = []
    for path in paths:
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        slopes.append(float(reader.GetMetaData("0028|1053")))
    return np.array(slopes)


def assert_within_half_a_step(array, volume, slopes):
    assert array.shape == volume.shape
    excess = np.abs(array - volume) - 0.5 * slopes[:, None, None] * (1 + 1e-9)
    assert excess.max() <= 0, f"a voxel is off by more than half its slice's slope (worst excess {excess.max()})"


def test_simpleitk_series_reader_reads_real_values_when_the_first_slice_is_empty(tmp_path):
    volume = peaked_volume()
    paths = write_series(volume, tmp_path / "pet", spacing=(2.0, 2.0, 3.0), metadata=PET_METADATA)
    slopes = slopes_of(paths)
    assert slopes[0] == slopes[1] and slopes[-1] == slopes[-2]  # the empty slices take their neighbour's slope
    assert all(s != np.floor(s) for s in slopes)  # a whole slope would make GDCM choose integers
    array, pixel_type = read_series_as_itk_does(tmp_path / "pet")
    assert "float" in pixel_type, pixel_type
    assert_within_half_a_step(array, volume, slopes)
    assert abs(array[2, 1, 1] - 100000.5) <= slopes[2] / 2 and abs(array[3, 2, 2] - 3821.153) <= slopes[3] / 2


def test_simpleitk_series_reader_reads_a_streamed_series_that_starts_empty(tmp_path):
    volume = peaked_volume()
    with SeriesWriter(tmp_path / "pet", volume.shape, spacing=(2.0, 2.0, 3.0), metadata=PET_METADATA) as series:
        for plane in volume:  # one slice per call: the empty first slice has no neighbour yet
            series.write_slice(plane)
    slopes = slopes_of(series.paths)
    assert slopes[-1] == slopes[-2]  # the last slice written before it
    array, pixel_type = read_series_as_itk_does(tmp_path / "pet")
    assert "float" in pixel_type, pixel_type
    assert_within_half_a_step(array, volume, slopes)
