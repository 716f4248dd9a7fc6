"""The public API as Python users meet it: real, typed signatures (help() shows them), and a TypeError for a
keyword a function does not take, like any Python function."""

import inspect
import pydoc

import numpy as np
import pytest

import dcmforge
from dcmforge.write.plan import WriteOptions

PUBLIC_CALLABLES = [
    name
    for name in dcmforge.__all__
    if name != "__version__" and not (isinstance(getattr(dcmforge, name), type) and issubclass(getattr(dcmforge, name), Exception))
]


@pytest.mark.parametrize("name", PUBLIC_CALLABLES)
def test_every_public_function_is_typed(name):
    signature = inspect.signature(getattr(dcmforge, name))
    untyped = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"dcmforge.{name}: parameters without a type: {untyped}"
    if not isinstance(getattr(dcmforge, name), type):
        assert signature.return_annotation is not inspect.Signature.empty, f"dcmforge.{name}: no return type"


def test_write_options_fields_are_typed():
    loose = [name for name, kind in WriteOptions.__annotations__.items() if kind in (object, "object")]
    assert not loose, f"WriteOptions fields typed object: {loose}"


@pytest.mark.parametrize("function", [dcmforge.write_series, dcmforge.SeriesWriter])
def test_help_shows_the_writers_real_parameters(function):
    text = pydoc.render_doc(function, renderer=pydoc.plaintext)
    assert "**options" not in text
    for name in WriteOptions._fields:
        assert f"{name}: " in text, name
    assert "spacing: collections.abc.Sequence[float] | None = None" in text
    assert "overwrite: bool = False" in text


def test_a_misspelled_keyword_is_a_type_error_naming_it(tmp_path):
    volume = np.ones((2, 4, 4), np.float32)
    with pytest.raises(TypeError, match=r"write_series\(\) got an unexpected keyword argument 'spcing' \(did you mean 'spacing'\?\)"):
        dcmforge.write_series(volume, tmp_path / "a", spcing=(1, 1, 1))
    with pytest.raises(TypeError, match=r"SeriesWriter\(\) got an unexpected keyword argument 'overwrit'"):
        dcmforge.SeriesWriter(tmp_path / "b", (2, 4, 4), spacing=(1, 1, 1), overwrit=True)
    with pytest.raises(TypeError, match=r"read_image\(\) got an unexpected keyword argument 'dialekt'"):
        dcmforge.read_image(tmp_path / "x.hv", dialekt="stir")
    assert not list(tmp_path.iterdir())  # nothing was written


def test_the_writers_still_take_every_option(tmp_path):
    volume = np.arange(32, dtype=np.float32).reshape(2, 4, 4)
    paths = dcmforge.write_series(volume, tmp_path / "s", spacing=(1, 1, 2), seed="api", backend="numpy")
    assert len(paths) == 2
    with dcmforge.SeriesWriter(tmp_path / "w", (2, 4, 4), spacing=(1, 1, 2), workers=2) as series:
        series.write_frame(volume)
    assert len(series.paths) == 2
