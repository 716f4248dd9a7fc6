"""A dynamic PET as one series per time frame (``split_frames=True``, ``--split-frames``).

GDCM, and with it ITK, SimpleITK and plastimatch, reads the files of one
series as one 3-D stack sorted along the slice normal: a dynamic series of T
frames of Z slices becomes one stack of T x Z slices at a fraction of the
spacing (192 slices 0.49 mm apart; plastimatch stops at "spacing of 0").
That is their limit, not the series' (DICOM describes it; dcm2niix reads it):
for them each frame is written as a series of its own, ``out_dir/frame_NN``,
with the frame's start and duration, the decay factor of the dynamic series,
and one study, frame of reference and reference time shared by all.
``out_dir`` holds the frames' series; it appears with all of them or none.
"""

import os
from pathlib import Path

from ..metadata.files import flatten_sections, metadata_mapping
from ..dicom.uids import new_uid
from ..dicom.values import dicom_date, dicom_time
from .commit import SeriesFolder, abort_on_interrupt, refuse_existing
from .plan import WriteOptions, folder_options, options_from, plan_series


def write_frames(volume, out_dir, options, write_one):
    """Write each frame of the [t, z, y, x] ``volume`` with ``write_one`` (write_series) into out_dir/frame_NN.

    ``options``: write_series' keyword arguments. Returns every written path, frame by frame.
    """
    given = options_from(options, "write_series")
    refuse_existing(out_dir, given.overwrite)  # before any voxel is read
    plan = plan_series(volume.shape, given)
    count = plan.frame_count
    width = max(2, len(str(count)))
    shared = _shared_values(plan, given)
    mapping = {k: v for k, v in flatten_sections(metadata_mapping(given.metadata)).items() if k not in _TIMING}
    description = plan.user.get("SeriesDescription")
    paths = []
    with abort_on_interrupt(), SeriesFolder(out_dir, **folder_options(given)) as folder:
        private = Path(folder.parent, folder.temporary)
        for t, timing in enumerate(plan.frames):
            label = f"frame {t + 1}/{count}"
            metadata = {
                **mapping,
                **shared,
                "SeriesDescription": f"{description} {label}" if description else label,
                "frame_start": [timing.start],
                **({} if timing.duration is None else {"frame_duration": [timing.duration]}),
            }
            frame_options = {
                **options,
                "metadata": metadata,
                "seed": None if given.seed is None else f"{given.seed}/frame {t + 1}",
                "overwrite": False,
                "before_commit": None,
            }
            written = write_one(volume[t], private / f"frame_{t + 1:0{width}d}", **frame_options)
            paths += [Path(out_dir, os.path.relpath(p, private)) for p in written]
        folder.commit()
    return paths


# The frame timing keys: each frame's series gets its own.
_TIMING = ("frame_start", "frame_duration")


def _shared_values(plan, options: WriteOptions):
    """What every frame's series shares: the study and frame of reference (unless a study gives them), the
    reference time, so that FrameReferenceTime and DecayFactor are the dynamic series' own, and the decay
    correction as the plan settled it."""
    values = {}
    if options.study is None:
        for keyword in ("StudyInstanceUID", "FrameOfReferenceUID"):
            values[keyword] = plan.user.get(keyword) or new_uid(options.seed, keyword)
    if not (plan.user.get("SeriesDate") and plan.user.get("SeriesTime")):
        values["SeriesDate"], values["SeriesTime"] = dicom_date(plan.reference), dicom_time(plan.reference)
    if "DecayCorrection" not in plan.user:  # as the plan settled it (and warned, once)
        values["DecayCorrection"], values["CorrectedImage"] = plan.values["DecayCorrection"], plan.values["CorrectedImage"]
    return values
