"""The package's compiled helpers (masks.cpp beside this file, built by CMake into <build>/python):
`masks()` gives the fassst_masks module, or None where it is not built (an ONNX-only install
without the CMake build) or FASSST_NATIVE=0 turns it off; callers then run their numpy path,
which gives the same results (tests/test_native_masks.py) more slowly."""
import functools
import importlib.machinery
import importlib.util
import os

from fassst.build_paths import build_dir


def native_dir():
    return os.path.join(build_dir(), "python")


@functools.lru_cache(maxsize=None)
def _load():
    spec = importlib.machinery.PathFinder.find_spec("fassst_masks", [native_dir()])
    if spec is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def masks():
    """fassst_masks (paste_masks, rle_strings), or None: not built, or FASSST_NATIVE=0."""
    if os.environ.get("FASSST_NATIVE", "1") == "0":
        return None
    return _load()
