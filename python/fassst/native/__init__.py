"""The package's compiled helpers (masks.cpp beside this file, built by CMake into <build>/python):
`masks()` gives the fassst_masks module, or None where it is not built (an ONNX-only install
without the CMake build) or FASSST_NATIVE=0 turns it off; callers then run their numpy path,
which gives the same results (tests/test_native_masks.py) more slowly."""
import functools
import importlib.machinery
import importlib.util
import os

from fassst.build_paths import build_dir
from fassst.errors import FassstError


class NativeLoadError(FassstError, ImportError):
    """The built module is there but cannot be loaded (a broken or foreign build)."""


def native_dir():
    return os.path.join(build_dir(), "python")


@functools.lru_cache(maxsize=None)
def _load():
    # PathFinder matches only this interpreter's extension suffix: another Python's build is
    # "not built" here, and the numpy path runs
    spec = importlib.machinery.PathFinder.find_spec("fassst_masks", [native_dir()])
    if spec is None:
        return None
    try:
        module = importlib.util.module_from_spec(spec)  # an extension is loaded here
        spec.loader.exec_module(module)
    except ImportError as e:
        raise NativeLoadError(f"{spec.origin}: cannot load it ({e}); rebuild it with "
                              f"scripts/setup.sh, or set FASSST_NATIVE=0 to run the numpy path") from None
    return module


def masks():
    """fassst_masks (paste_masks, rle_strings), or None: not built, or FASSST_NATIVE=0."""
    if os.environ.get("FASSST_NATIVE", "1") == "0":
        return None
    return _load()
