"""Checking a metadata file alone: merged with the description's defaults and stand-ins for what the
series writer derives, so that only the user's side shows (``dcmforge check``).
"""

from ..dicom import tags
from ..dicom.values import is_empty, text_value, values_of
from ..iods import defaults, description_for
from ..iods.validate import element_problems, problem, validate
from .friendly import resolve
from .statements import unstated

# Stand-ins for what the series writer derives, valid for their VR and the rules.
_STAND_INS = {
    "Rows": 1,
    "Columns": 1,
    "PixelData": b"\0\0",
    "PixelSpacing": [1, 1],
    "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
    "ImagePositionPatient": [0, 0, 0],
    "PixelRepresentation": 0,
    "RescaleIntercept": 0,
}
_STAND_INS_BY_VR = {
    "DA": "20000101",
    "TM": "000000",
    "DT": "20000101000000",
    "UI": "2.25.1",
    "DS": 1,
    "IS": 1,
    "US": 1,
    "UL": 1,
}

_SUV_NEEDS = (
    ("PatientWeight", "PatientWeight"),
    ("RadionuclideTotalDose", "injected_activity"),
    ("RadionuclideHalfLife", "isotope"),
    ("RadiopharmaceuticalStartDateTime", "injection_datetime"),
)


def check_metadata(meta, modality):
    """Every problem of a metadata dict for ``modality``, as ``dcmforge check`` prints them."""
    description = description_for(modality)
    resolved, problems = resolve(meta, description)
    if description.modality == "NM":
        # The NM writer derives whole modules (the detector's geometry, energy windows, rotations) from the
        # volume and the isotope: only the values the file gives are checked here; convert.refusal then runs
        # the writer itself on a stand-in volume.
        return problems + element_problems(resolved) + [
            problem(key, text, level="warning") for key, text in unstated(resolved)]  # fmt: skip
    dataset = defaults(description)
    dataset.update((key, value) for key, value in resolved.items() if key not in ("frame_start", "frame_duration"))
    for row in description.attributes:
        if row.source in ("uid", "clock", "series", "slice") and row.keyword not in dataset:
            required = row.type in ("1", "2") or (row.type in ("1C", "2C") and row.condition.test(dataset))
            if required:
                dataset[row.keyword] = _STAND_INS.get(row.keyword, _STAND_INS_BY_VR.get(tags.lookup(row.keyword).vr))
    problems += validate(dataset, description)
    if description.modality != "CT":
        problems += [problem(key, text, level="warning") for key, text in unstated(resolved)]
    if description.modality == "PT" and text_value(dataset, "Units") == "BQML":
        problems += _suv_problems(dataset)
    return problems


def _suv_problems(dataset):
    items = values_of(dataset.get("RadiopharmaceuticalInformationSequence"))
    item = items[0] if items and isinstance(items[0], dict) else {}
    missing = [
        keyword if keyword == key else f"{keyword} ({key})"
        for keyword, key in _SUV_NEEDS
        if is_empty((dataset if keyword == "PatientWeight" else item).get(keyword))
    ]
    if not missing:
        return []
    return [problem("SUV", "viewers cannot compute SUV without " + ", ".join(missing), level="warning")]
