"""Geometry of Interfile images: the index -> LPS affine, the spacing and a line naming the convention.

Each dialect has a native voxel frame; a sign table maps it to STIR's gantry
frame, and STIR's table maps that to LPS for the patient position
(docs/interfile.md 4.1). The origin rule is the dialect's (STIR first
pixel offset, or a grid centred on the scanner axis); Siemens headers may give
the directions (%image orientation). :mod:`dcmforge.readers.interfile` calls this while
reading; :mod:`dcmforge.readers.interfile.writer` uses the position tables to write.
"""

import numpy as np

from ...errors import InterfileError
from .grammar import normalise_key, parse_list
from .numbers import list_number

DIALECT_NAMES = {
    "stir": "STIR", "castor": "CASToR", "gate": "GATE", "siemens": "Siemens", "interfile33": "Interfile 3.3"
}  # fmt: skip
# How each dialect's voxel frame is described in Image.convention.
DIALECT_FRAMES = {
    "stir": "STIR",
    "castor": "CASToR (x right, y up, z front -> back of the gantry)",
    "gate": "GATE (world assumed x -> L, y -> A, z -> S)",
    "siemens": "Siemens e7tools (i -> L, j -> P, k -> S for HFS; unverified)",
    "interfile33": "Interfile 3.3 (read with STIR's axes)",
}
POSITIONS = ("HFS", "HFP", "FFS", "FFP")

# LPS sign of STIR's x, y, z for each patient position (STIR DiscretisedDensity; docs/interfile.md 4.1).
STIR_TO_LPS = {"HFS": (1, 1, -1), "HFP": (-1, -1, -1), "FFS": (-1, 1, 1), "FFP": (1, -1, 1)}
# Sign of each dialect's native axis 1, 2, 3 in STIR's frame (x right, y down, z gantry -> bed):
# CASToR and the declared GATE world have y up and z front -> back (docs/interfile.md 4.2,
# 4.3); Siemens e7tools images are axially reversed against STIR (4.4); 3.3 is read like STIR (4.5).
NATIVE_TO_STIR = {
    "stir": (1, 1, 1),
    "interfile33": (1, 1, 1),
    "castor": (1, -1, -1),
    "gate": (1, -1, -1),
    "siemens": (1, 1, -1),
}


def patient_position_from_header(header, dialect, override, warnings):
    """(position, note for the convention line, whether the header or the user stated it)."""
    if override:
        return override, " (given)", True
    if dialect == "gate":
        warnings.append(f"{header.source}: GATE ignores patient position keys: assumed HFS in the GATE world")
        return "HFS", " (assumed)", False
    code = header.get("%patient orientation")
    if code is not None and code.value.strip():
        position = code.value.strip().upper()
        if position not in POSITIONS:
            raise header.fail(code, f"patient position {position} is not one of {POSITIONS}: give patient_position")
        return position, "", True
    orientation = _first_word(header.text("patient orientation"))
    rotation = _first_word(header.text("patient rotation"))
    known = {"headin": "HF", "feetin": "FF", "supine": "S", "prone": "P"}
    for key, word, allowed in (("patient orientation", orientation, ("headin", "feetin")),
                               ("patient rotation", rotation, ("supine", "prone"))):  # fmt: skip
        if word not in allowed + ("", "unknown"):
            raise header.fail(
                header.get(key), "only head_in/feet_in with supine/prone are supported: give patient_position"
            )
    if orientation in ("", "unknown") and rotation in ("", "unknown"):
        what = "not recorded by CASToR" if dialect == "castor" else "patient position unknown"
        warnings.append(f"{header.source}: {what}: assumed HFS")
        return "HFS", f" ({what} -> assumed HFS)", False
    if orientation in ("", "unknown") or rotation in ("", "unknown"):
        position = known.get(orientation, "HF") + known.get(rotation, "S")
        warnings.append(f"{header.source}: patient orientation or rotation unknown: assumed {position}")
        return position, f" (partly unknown -> assumed {position})", False
    return known[orientation] + known[rotation], "", True


def _first_word(text):
    words = (text or "").split()
    return normalise_key(words[0]) if words else ""


def geometry_from_header(header, dialect, shape, position, position_note, overrides, warnings):
    """(affine index -> LPS, spacing, one-line description of the convention)."""
    sizes = np.array(shape[::-1], dtype=np.float64)  # n1, n2, n3
    steps = np.array(_steps(header, dialect, shape[0], warnings))  # signed: a negative size reverses its axis
    directions = np.diag(np.multiply(STIR_TO_LPS[position], NATIVE_TO_STIR[dialect])).astype(np.float64)
    if dialect == "stir":
        origin, origin_note = _stir_origin(header, sizes, steps, warnings)
    else:
        origin, origin_note = _centred_origin(header, dialect, sizes, steps, warnings)
    if dialect == "siemens" and not overrides["patient_position"]:
        directions = _siemens_directions(header, directions)
    affine = np.eye(4)
    affine[:3, :3] = directions * steps
    affine[:3, 3] = directions @ origin
    notes = []
    if overrides["dialect"]:
        notes.append(f"dialect {overrides['dialect']} given")
    for axis in overrides["flip"]:
        column = "xyz".index(axis)
        affine[:3, 3] += (sizes[column] - 1) * affine[:3, column]
        affine[:3, column] *= -1
        notes.append(f"{axis} flipped")
    if overrides["first_voxel"] is not None:
        affine[:3, 3] = overrides["first_voxel"]
        origin_note = "first voxel given"
    if not np.all(np.isfinite(affine)):
        raise InterfileError(f"{header.source}: voxel sizes or offsets too large for a position in mm")
    convention = f"{DIALECT_FRAMES[dialect]}, {position}{position_note}, {origin_note}"
    if notes:
        convention += "; " + ", ".join(notes)
    return affine, tuple(float(s) for s in np.abs(steps)), convention


def _steps(header, dialect, slices, warnings):
    """Signed voxel sizes (d1, d2, d3) in mm."""
    steps = []
    for axis in (1, 2, 3):
        size = header.number("scaling factor (mm/pixel)", axis)
        if size is None:
            size = header.number("scale factor (mm/pixel)", axis)
        steps.append(size)
    for axis in (0, 1):
        if steps[axis] is None:
            warnings.append(f"{header.source}: no 'scaling factor (mm/pixel) [{axis + 1}]': assumed 1 mm")
            steps[axis] = 1.0
    if steps[2] is None:
        steps[2] = _slice_step(header, dialect, abs(steps[0]), slices, warnings)
    for axis, step in enumerate(steps):
        if step == 0:
            raise InterfileError(f"{header.source}: voxel size {axis + 1} is 0 mm")
    return steps


def _slice_step(header, dialect, pixel, slices, warnings):
    """Slice spacing from the 3.3 slice keys: in pixels by the standard, in mm for GATE and CASToR."""
    for key in ("centre-centre slice separation (pixels)", "center-center slice separation (pixels)",
                "slice thickness (pixels)"):  # fmt: skip
        value = header.number(key)
        if value is not None:
            if dialect in ("gate", "castor"):
                warnings.append(f"{header.source}: '{key}' read as mm, as {DIALECT_NAMES[dialect]} does")
                return value
            warnings.append(f"{header.source}: '{key}' read in pixels of {pixel:g} mm (the 3.3 standard)")
            return value * pixel
    if slices > 1:
        warnings.append(f"{header.source}: no slice spacing: assumed equal to the pixel size")
    return pixel


def _stir_origin(header, sizes, steps, warnings):
    """STIR's first voxel: first pixel offset (mm), else -floor(n/2) * d in x, y and 0 in z."""
    default = [-(sizes[0] // 2) * steps[0], -(sizes[1] // 2) * steps[1], 0.0]
    given = [header.number("first pixel offset (mm)", axis) for axis in (1, 2, 3)]
    origin = np.array([d if g is None else g for g, d in zip(given, default)])
    if all(g is not None for g in given):
        return origin, "first voxel from first pixel offset"
    warnings.append(f"{header.source}: no (complete) 'first pixel offset (mm)': STIR's default origin used")
    return origin, "first voxel from STIR default origin (no first pixel offset)"


def _centred_origin(header, dialect, sizes, steps, warnings):
    """A grid centred on the scanner axis and the axial centre (CASToR, GATE, Siemens, 3.3)."""
    origin = -(sizes - 1) / 2 * steps
    if dialect == "castor":
        for key in ("first pixel offset (mm)", "origin (mm)", "offset"):
            shifts = [header.number(key, axis, default=0.0) for axis in (1, 2, 3)]
            if any(shifts):
                warnings.append(
                    f"{header.source}: CASToR '{key}' {shifts} is a FOV shift with an unknown sign, "
                    "not applied: give first_voxel to place the image"
                )
        return origin, "centred grid"
    if dialect == "siemens":
        shift = [header.number("%x-offset (mm)", default=0.0), header.number("%y-offset (mm)", default=0.0), 0.0]
        warnings.append(f"{header.source}: Siemens image geometry is unverified against scanner DICOM")
        return origin + np.array(shift), "centred grid + %x/%y-offset (unverified)"
    what = "GATE headers carry no position" if dialect == "gate" else "Interfile 3.3 defines no origin"
    warnings.append(f"{header.source}: {what}: image centred on the scanner axis")
    return origin, "centred grid (assumed)"


def _siemens_directions(header, directions):
    """Columns i, j, k of the index -> LPS rotation from %image orientation (DICOM IOP) if given."""
    entry = header.get("%image orientation")
    if entry is None:
        return directions
    values = np.array([list_number(header, entry, item) for item in parse_list(header, entry)])
    if values.shape != (6,):
        raise header.fail(entry, "expected six direction cosines")
    row, column = values[:3], values[3:]
    if not (np.isclose(row @ row, 1, atol=1e-4) and np.isclose(column @ column, 1, atol=1e-4)
            and abs(row @ column) < 1e-4):  # fmt: skip
        raise header.fail(entry, "the two directions are not orthogonal unit vectors")
    return np.column_stack([row, column, np.cross(row, column)])
