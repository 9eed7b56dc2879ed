#!/usr/bin/env bash
# The whole test suite: set-up (cached), the C++ layer tests (ctest), the linter (ruff, ruff.toml),
# the Python tests (pytest), and a last line saying whether the build compiled the CUDA code.
# Exits non-zero if any part fails; every part runs either way, so one report shows everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FASSST_BUILD_DIR:-$root/build}"
export FASSST_BUILD_DIR="$build"

# Build everything the tests use (the layer test binary, fassst_time, the nvcc check): a target
# list meant for the demo would leave ctest running a stale test binary.
unset FASSST_BUILD_TARGETS
"$root/scripts/setup.sh"

# Caffe's OpenBLAS on a CPU newer than the library: name its kernels (python/fassst/openblas_core.py)
core="$(python3 "$root/python/fassst/openblas_core.py")"
if [ -n "$core" ]; then export OPENBLAS_CORETYPE="$core"; fi

rc=0
echo "== ctest (C++ layer tests) =="
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" || rc=1
echo "== ruff (lint) =="
(cd "$root" && python3 -m ruff check --no-cache .) || rc=1
echo "== pytest =="
(cd "$root" && python3 -m pytest tests -v -p no:cacheprovider) || rc=1
echo "== CUDA =="
cat "$build/fassst-cuda-status.txt" 2>/dev/null || echo "CUDA: unknown (no $build/fassst-cuda-status.txt)"
exit $rc
