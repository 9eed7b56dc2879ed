"""OPENBLAS_CORETYPE is named only where the system OpenBLAS falls back to Prescott's kernels on a
CPU it has better ones for, and never over the user's own; and a script's Caffe really runs on
the kernels named (the library asked after pycaffe has loaded it, in a child process)."""
import os
import subprocess
import sys

import pytest

from fassst import openblas_core as ob
from fassst.build_paths import REPO_ROOT

XEON_207 = "fpu sse2 ssse3 sse4_2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl".split()
ZEN2 = "fpu sse2 ssse3 sse4_2 avx avx2 fma".split()


@pytest.mark.parametrize("flags, core", [(XEON_207, "SkylakeX"), (ZEN2, "Haswell"),
                                         ("fpu sse2 avx".split(), None), ([], None),
                                         (XEON_207[:-1], "Haswell")])  # AVX-512 without VL
def test_kernels_follow_the_instruction_sets(flags, core):
    assert ob.kernels_for(flags) == core


def test_named_only_where_the_library_falls_back():
    env = {}
    assert ob.choose_core(env, detect=lambda: "Prescott", flags=lambda: XEON_207) == "SkylakeX"
    assert env == {"OPENBLAS_CORETYPE": "SkylakeX"}
    for detected in ("Haswell", "Zen", None):  # it knows the CPU, or cannot be asked
        env = {}
        assert ob.choose_core(env, detect=lambda: detected, flags=lambda: XEON_207) is None
        assert env == {}
    env = {}  # falls back on a CPU without AVX2: Prescott is right
    assert ob.choose_core(env, detect=lambda: "Prescott", flags=lambda: ["sse2"]) is None
    assert env == {}


def test_the_users_choice_stands():
    env = {"OPENBLAS_CORETYPE": "Haswell"}
    asked = []
    assert ob.choose_core(env, detect=lambda: asked.append(1) or "Prescott",
                          flags=lambda: XEON_207) is None
    assert env == {"OPENBLAS_CORETYPE": "Haswell"} and not asked


def test_cpu_flags_read_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert ob.cpu_flags(str(info)) == ["fpu", "avx2", "fma"]
    assert ob.cpu_flags(str(tmp_path / "missing")) == []


def test_a_library_that_cannot_be_loaded_is_no_answer():
    assert ob.detected_core("libno_such_blas.so.0") is None


def test_a_scripts_caffe_runs_on_the_kernels_this_cpu_has():
    """What scripts/*.py do (scripts/_init_paths.py), then pycaffe, then the core in use."""
    code = ("import runpy, sys, ctypes; runpy.run_path(sys.argv[1]); import caffe; "
            "f = ctypes.CDLL('libopenblas.so.0').openblas_get_corename; f.restype = ctypes.c_char_p; "
            "print(f().decode())")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    done = subprocess.run([sys.executable, "-c", code, os.path.join(REPO_ROOT, "scripts", "_init_paths.py")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    in_use = done.stdout.split()[-1]
    alone = ob.detected_core()
    expected = ob.kernels_for(ob.cpu_flags()) if alone == ob.FALLBACK else alone
    assert in_use == (expected or alone)
