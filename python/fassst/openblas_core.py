"""OpenBLAS's kernels, named where its own CPU detection gives up.

Caffe links the system OpenBLAS (Debian's 0.3.21). Built for many CPUs, it picks its kernels from
the CPU's model when it is loaded; a model newer than the library is unknown to it, and it falls
back to Prescott's SSE3 kernels. On a 2-core Xeon of model 207 (Emerald Rapids) that made the
demo config's train step 1.7x slower than with the AVX-512 kernels (docs/EXPERIMENTS.md,
"OpenBLAS on a CPU it does not know"). So, before anything loads Caffe (scripts/_init_paths.py),
the library is asked which kernels it chose, in a child process since it chooses once, when
loaded; where it fell back on a CPU with AVX2 or AVX-512, OPENBLAS_CORETYPE names the kernels for
it (OpenBLAS reads it when loaded). A user's own OPENBLAS_CORETYPE is left as it is.

    python3 python/fassst/openblas_core.py   # prints the OPENBLAS_CORETYPE to export, or nothing
"""
import os
import subprocess
import sys

LIBRARY = "libopenblas.so.0"   # the soname Caffe links
FALLBACK = "Prescott"          # what OpenBLAS runs on a CPU it does not know
# The instruction sets OpenBLAS's SkylakeX kernels use; Haswell's need AVX2 and FMA.
AVX512 = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")


def kernels_for(flags):
    """The OpenBLAS core to name for a CPU with these /proc/cpuinfo flags, or None where the
    fallback is as good as it gets."""
    flags = set(flags)
    if flags.issuperset(AVX512):
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def cpu_flags(path="/proc/cpuinfo"):
    """The first CPU's instruction-set flags ([] where the file has none: not x86, not Linux)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def detected_core(library=LIBRARY):
    """The core the library chooses by itself (openblas_get_corename), or None where it cannot be
    loaded or asked."""
    code = ("import ctypes, sys; f = ctypes.CDLL(sys.argv[1]).openblas_get_corename; "
            "f.restype = ctypes.c_char_p; print(f().decode())")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    try:
        done = subprocess.run([sys.executable, "-c", code, library], capture_output=True,
                              text=True, timeout=60, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def choose_core(environ=None, detect=detected_core, flags=cpu_flags):
    """Sets environ["OPENBLAS_CORETYPE"] (default os.environ) where the library falls back on a
    CPU it has better kernels for; returns what it set, or None."""
    environ = os.environ if environ is None else environ
    if environ.get("OPENBLAS_CORETYPE"):
        return None
    core = kernels_for(flags())  # a file read; the library is asked (a child process) only
    if core is None or detect() != FALLBACK:  # where its answer could change anything
        return None
    environ["OPENBLAS_CORETYPE"] = core
    return core


if __name__ == "__main__":
    choose_core()
    print(os.environ.get("OPENBLAS_CORETYPE", ""))
