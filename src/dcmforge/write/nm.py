"""Volumes to one NM Image file (PS3.3 A.5, RECON TOMO): every slice a frame, the pixels streamed.

An NM image is multi-frame by design, so ``modality="NM"`` writes one file
whatever ``multiframe`` says. The plan (plan.py) gives geometry and the
resolved metadata; this module says them the NM way (``nm_values``): the
frames run along the normal of the image plane from the first frame's
ImagePositionPatient in DetectorInformationSequence, SpacingBetweenSlices
apart; the radiopharmaceutical's dose in megabecquerels; the isotope's
photopeaks as energy windows; the units (``Units``, PET's defined terms)
as RealWorldValueMappingSequence. The pixels are unsigned 16 bits with one
rescale for the file (pixels._plan_nm), written twice: in
RealWorldValueMappingSequence, the standard's place, and as
RescaleSlope/RescaleIntercept, the only one GDCM (SimpleITK), dcm2niix and
most viewers apply (README, SPECT).

Data flows one way, as in multiframe.py, whose streaming it reuses: volume ->
its extrema (a NaN is found before a byte is written) -> the rescale -> the
dataset, validated -> header and PixelData header -> the frames, a chunk at a
time, into a temporary file renamed when whole.
"""

import logging
import re
import tempfile
from pathlib import Path

import numpy as np

from .. import iods, pixels
from ..dicom.encode import element_header, encode_elements, with_character_set
from ..dicom.part10 import file_meta
from ..dicom.uids import new_uid
from ..dicom.values import values_of
from ..errors import DcmforgeError, MetadataError, VolumeError
from ..geometry import Geometry
from ..iods import validate
from ..iods.codes import PET_UNITS, UNSTATED_UNITS, radionuclide_for_code
from ..iods.nm import NM_IMAGE
from ..iods.pet import PET_IMAGE
from ..paths import path_argument
from .commit import SeriesFolder, abort_on_interrupt, refuse_existing
from .multiframe import pixel_data_length, write_streamed
from .plan import (
    draw_preview,
    folder_options,
    options_from,
    plan_series,
    projections_for,
    set_derived,
    software_versions,
    uid_and_clock_values,
    volume_extrema,
)

log = logging.getLogger("dcmforge")

_PIXEL_DATA_TAG = 0x7FE00010

NM_FILE_NAME = "NM_multiframe.dcm"

# Resolved-metadata keywords said the NM way (nm_values); every other PET attribute an NM image
# lacks is reported and left out.
_SAID_OTHERWISE = frozenset({"Units", "RadiopharmaceuticalInformationSequence", "DetectorInformationSequence"})

# What the isotope table fills into a PET radiopharmaceutical item; the NM item's code says it.
_ISOTOPE_FACTS = frozenset({"RadionuclideHalfLife", "RadionuclidePositronFraction"})


def write_nm(volume, out_dir, **options):
    """Write ``volume`` ([z, y, x]) as one NM Image file, ``out_dir``/NM_FILE_NAME; returns [its path].

    The options are write_series' (``WriteOptions``); ``scaling`` may only be
    None or "volume": an NM image has one rescale for all its frames.
    ``out_dir`` is committed as a whole (``dcmforge.write.commit``).
    """
    options = options_from(options, "write_series")
    if options.scaling not in (None, "volume"):
        raise DcmforgeError(f"scaling={options.scaling!r}: an NM image has one rescale for all its frames (\"volume\")")
    if not isinstance(volume, np.ndarray):
        volume = np.asarray(volume)
    plan = plan_series(check_static(volume.shape), options)
    pixel_data_length(plan.shape)  # before anything is read or written
    place = along_normal(plan.geometry, plan.slice_count)
    if place is not plan.geometry:
        volume = volume[::-1]  # the frames run along the normal: the last slice first
    dataset = nm_values(plan, place)

    path = Path(out_dir) / NM_FILE_NAME
    refuse_existing(out_dir, options.overwrite)  # before any voxel is read
    backend = pixels.select_backend(volume.size, options.backend)
    with abort_on_interrupt(), SeriesFolder(out_dir, **folder_options(options)) as folder:
        mins, maxs = volume_extrema(volume, backend)
        scaling = pixels.plan_volume_scaling(mins, maxs, volume.dtype, "NM")
        set_derived(dataset, plan.user, rescale_values(float(scaling.slopes[0]), float(scaling.intercepts[0]), plan))
        dataset, codec = with_character_set(dataset)
        for warning in validate.check({**dataset, "PixelData": np.zeros(plan.shape[-2:], np.uint16)}, plan.description):
            log.warning("%s", warning)
        header = b"".join((
            file_meta(dataset["SOPClassUID"], dataset["SOPInstanceUID"]),
            b"".join(data for _, data in encode_elements(dataset, codec)),
            element_header(_PIXEL_DATA_TAG, "OW", pixel_data_length(plan.shape)),
        ))  # fmt: skip
        projections = projections_for(plan.shape) if options.preview else None
        write_streamed(folder, path.name, header, volume, scaling, backend, projections)
        folder.commit()
    if projections is not None:
        draw_preview(out_dir, projections, place, "NM")
    return [path]


def check_static(shape):
    """``shape``, unless it is [t, z, y, x]: dynamic or gated NM is not written."""
    if hasattr(shape, "__len__") and len(shape) == 4:
        raise VolumeError(
            f"shape {tuple(shape)}: dcmforge writes static NM images [z, y, x]; dynamic or gated SPECT "
            "([t, z, y, x]) is not written (write each time frame or gate as its own series)"
        )
    return shape


def along_normal(geometry, count):
    """``geometry``, or the same slices in reverse order when its slice step runs against row x column.

    Readers place an NM image's frames from the first one's position along the
    normal of the image plane (C.8.4.14); a stack that runs the other way is
    written last slice first.
    """
    if geometry.affine[:3, 2] @ geometry.normal >= 0:
        return geometry
    affine = geometry.affine.copy()
    affine[:3, 3] += (count - 1) * affine[:3, 2]
    affine[:3, 2] *= -1
    return Geometry(affine)


class NMSeriesWriter:
    """SeriesWriter for ``modality="NM"``: the slices as they come, then one NM Image file when the block ends.

    One rescale for the file needs every slice first, so the slices are kept
    in an unnamed temporary file beside ``out_dir`` (disk, not memory) in the
    type of the first ones, and written by ``write_nm`` on close. If the block
    raises or ends early, nothing is written.
    """

    def __init__(self, out_dir, shape, **options):
        self.options = options_from(options, "SeriesWriter")
        out_dir = path_argument(out_dir, "out_dir", DcmforgeError)
        refuse_existing(out_dir, self.options.overwrite)  # before anything else is done
        self.shape = plan_series(check_static(shape), self.options).shape  # what write_nm refuses, before a slice
        self.out_dir = Path(out_dir)
        self.paths = [self.out_dir / NM_FILE_NAME]
        self.written = 0
        self._spool = tempfile.TemporaryFile(dir=self.out_dir.parent)
        self._dtype = None

    def write_slice(self, image):
        """Write the next slice (a 2-D [y, x] array)."""
        self.write_slices(np.asarray(image)[None])

    def write_slices(self, slices):
        """Write the next len(slices) slices (a 3-D [z, y, x] array, in order)."""
        slices = np.asarray(slices)
        if slices.ndim != 3 or slices.shape[1:] != self.shape[1:]:
            raise VolumeError(f"expected slices of shape (n, {self.shape[1]}, {self.shape[2]}), got {slices.shape}")
        if self.written + len(slices) > self.shape[0]:
            raise VolumeError(f"the image has {self.shape[0]} slices; {self.written + len(slices)} were given")
        if self._dtype is None:
            self._dtype = slices.dtype.newbyteorder("=")
        elif not np.can_cast(slices.dtype, self._dtype, "same_kind"):
            raise VolumeError(f"slices of {slices.dtype} after slices of {self._dtype}: give every slice one type")
        self._spool.write(np.ascontiguousarray(slices, self._dtype).tobytes())
        self.written += len(slices)

    def close(self):
        """Write the NM file into out_dir; it is an error if slices are missing."""
        try:
            if self.written != self.shape[0]:
                raise VolumeError(f"the image ended after {self.written} of {self.shape[0]} slices; nothing was written")
            self._spool.flush()
            volume = np.memmap(self._spool, self._dtype, "r", shape=self.shape)
            return write_nm(volume, self.out_dir, **self.options._asdict())
        finally:
            self._spool.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._spool.close()
        return False


# -- the dataset ---------------------------------------------------------------------


def nm_values(plan, place):
    """Every value of the file but the rescale: the description's defaults, the metadata said the NM way,
    and what the volume, geometry, UIDs and clock decide."""
    user = plan.user
    values = iods.defaults(plan.description)
    for keyword, value in user.items():
        if keyword in _SAID_OTHERWISE:
            continue
        if iods.attribute(plan.description, keyword) is None and iods.attribute(PET_IMAGE, keyword):
            log.warning("%s: a PET attribute an NM image does not have; not written", keyword)
        else:
            values[keyword] = value
    items = [item for item in values_of(user.get("RadiopharmaceuticalInformationSequence")) if isinstance(item, dict)]
    values["RadiopharmaceuticalInformationSequence"] = [_radiopharmaceutical(n, item) for n, item in enumerate(items, 1)]
    if "EnergyWindowInformationSequence" not in user:
        values["EnergyWindowInformationSequence"] = photopeak_windows(items)
    values["SoftwareVersions"] = software_versions(user.get("SoftwareVersions"))
    set_derived(values, user, _derived_values(plan, place, values))
    values["DetectorInformationSequence"] = [_detector(user, place)]
    return values


def _derived_values(plan, place, values):
    slices = plan.slice_count
    derived = {
        "Rows": plan.shape[-2],
        "Columns": plan.shape[-1],
        "PixelSpacing": [round(v, 6) for v in place.pixel_spacing],
        "SliceThickness": round(place.slice_thickness, 6),
        "SpacingBetweenSlices": round(place.slice_thickness, 6),
        "NumberOfFrames": slices,
        "SliceVector": list(range(1, slices + 1)),
        "NumberOfSlices": slices,
        "NumberOfEnergyWindows": len(values_of(values.get("EnergyWindowInformationSequence"))),
        "NumberOfRotations": len(values_of(values.get("RotationInformationSequence"))),
        "InstanceNumber": 1,
        "PixelRepresentation": 0,
    }
    derived.update(uid_and_clock_values(plan, "NM"))
    derived["SOPInstanceUID"] = new_uid(plan.options.seed, derived["SeriesInstanceUID"], 0)
    return derived


def _detector(user, place):
    """The one DetectorInformationSequence item: the user's (collimator) with the first frame's geometry."""
    given = values_of(user.get("DetectorInformationSequence"))
    if len(given) > 1 or (given and not isinstance(given[0], dict)):
        raise MetadataError("DetectorInformationSequence (0054,0022) holds one item in a reconstructed NM image")
    given = given[0] if given else {}
    item = {**iods.defaults_of(iods.attribute(NM_IMAGE, "DetectorInformationSequence").items), **given}
    geometry = {
        "ImagePositionPatient": place.image_positions(1).round(6)[0].tolist(),
        "ImageOrientationPatient": place.image_orientation,
    }
    set_derived(item, given, geometry)
    return item


def _radiopharmaceutical(number, item):
    """One resolved (PET Isotope) item as an NM Isotope item: dose in MBq, start time, no isotope facts."""
    rows = iods.attribute(NM_IMAGE, "RadiopharmaceuticalInformationSequence").items
    allowed = {row.keyword for row in rows}
    nm = {keyword: value for keyword, value in item.items() if keyword in allowed}
    for keyword in sorted(set(item) - allowed - _ISOTOPE_FACTS - {"RadiopharmaceuticalStartDateTime"}):
        log.warning("RadiopharmaceuticalInformationSequence[%d].%s: not part of an NM image; not written", number, keyword)
    dose = item.get("RadionuclideTotalDose")
    if dose not in (None, ""):
        nm["RadionuclideTotalDose"] = float(dose) / 1e6  # Bq -> MBq
    start = item.get("RadiopharmaceuticalStartDateTime")
    if start and "RadiopharmaceuticalStartTime" not in nm:
        nm["RadiopharmaceuticalStartTime"] = re.split("[+-]", str(start)[8:])[0]  # DT -> its TM, no UTC offset
    return nm


def photopeak_windows(items):
    """One energy window per photopeak of the isotope the first radiopharmaceutical names, by name only:
    the isotope says where the peaks are, not how wide the camera's windows were."""
    code = (values_of(items[0].get("RadionuclideCodeSequence")) or [{}])[0] if items else {}
    nuclide = radionuclide_for_code(code.get("CodeValue"), code.get("CodingSchemeDesignator"))
    peaks = nuclide.photopeaks if nuclide is not None else ()
    return [{"EnergyWindowName": f"{peak:g} keV peak"} for peak in peaks]


def rescale_values(slope, intercept, plan):
    """RescaleSlope/Intercept and the RealWorldValueMappingSequence that says the same in the metadata's units."""
    units = str(plan.user.get("Units") or UNSTATED_UNITS).strip()  # not stated: the plan has warned
    if units not in PET_UNITS:
        known = ", ".join(PET_UNITS)
        raise MetadataError(f"Units (0054,1001) {units!r}: an NM image's values need one of {known}")
    code, meaning = PET_UNITS[units]
    low, high = pixels.UNSIGNED_RANGE
    mapping = {
        "RealWorldValueFirstValueMapped": low,
        "RealWorldValueLastValueMapped": high,
        "RealWorldValueIntercept": intercept,
        "RealWorldValueSlope": slope,
        "LUTExplanation": meaning,
        "LUTLabel": units,
        "MeasurementUnitsCodeSequence": [{"CodeValue": code, "CodingSchemeDesignator": "UCUM", "CodeMeaning": meaning}],
    }
    return {"RescaleSlope": slope, "RescaleIntercept": intercept, "RealWorldValueMappingSequence": [mapping]}

