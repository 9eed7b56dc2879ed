"""fassst.native's loader: a module that is there but cannot be loaded is a one-line error that
names the file and what to do; one that is not built (or FASSST_NATIVE=0) gives None, and the
predictor's numpy path runs."""
import importlib.machinery

import pytest

from fassst import native


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FASSST_BUILD_DIR", str(tmp_path))
    monkeypatch.delenv("FASSST_NATIVE", raising=False)
    native._load.cache_clear()
    yield tmp_path
    native._load.cache_clear()


def test_a_broken_build_names_the_file_and_the_remedy(build_dir):
    (build_dir / "python").mkdir()
    bad = build_dir / "python" / ("fassst_masks" + importlib.machinery.EXTENSION_SUFFIXES[0])
    bad.write_bytes(b"not a shared object")
    with pytest.raises(native.NativeLoadError) as err:
        native.masks()
    text = str(err.value)
    assert str(bad) in text and "scripts/setup.sh" in text and "FASSST_NATIVE=0" in text
    assert "\n" not in text


def test_not_built_or_turned_off_gives_none(build_dir, monkeypatch):
    assert native.masks() is None
    monkeypatch.setenv("FASSST_NATIVE", "0")
    assert native.masks() is None
