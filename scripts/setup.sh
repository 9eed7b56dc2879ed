#!/usr/bin/env bash
# Installs what FASSST-Caffe needs and builds it. Idempotent: with nothing changed, a second run
# checks and returns in seconds (apt: dpkg-query; pip: a stamp of requirements.txt; build: make).
# Env: FASSST_BUILD_DIR (default ./build), FASSST_CMAKE_ARGS (extra configure args, e.g.
# "-DFASSST_CUDA=ON"), FASSST_CACHE (downloads, default ~/.cache/fassst), FASSST_BUILD_TARGETS
# (default: everything; the demo asks for fassst_caffe alone: Caffe, pycaffe and the tools,
# without the layer test binary and the nvcc check, which only the tests need).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FASSST_BUILD_DIR:-$root/build}"
py="${PYTHON:-python3}"

apt_pkgs=(build-essential cmake ccache patch pkg-config
  libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-regex-dev
  libboost-python-dev libgflags-dev libgoogle-glog-dev libprotobuf-dev protobuf-compiler
  libhdf5-dev libopenblas-dev libpython3-dev)

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "[setup] apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] missing Debian packages. Run this, then run scripts/setup.sh again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

mkdir -p "$build"
req_hash="$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)-$("$py" -c 'import sys; print(sys.prefix)')"
if [[ "$(cat "$build/.pip-stamp" 2>/dev/null)" != "$req_hash" ]]; then
  echo "[setup] pip install -r requirements.txt"
  "$py" -m pip install -q --disable-pip-version-check --root-user-action=ignore -r "$root/requirements.txt"
  echo "$req_hash" > "$build/.pip-stamp"
fi

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  # shellcheck disable=SC2086
  cmake -S "$root" -B "$build" -DPYTHON_EXECUTABLE="$(command -v "$py")" ${FASSST_CMAKE_ARGS:-}
fi
targets=()
for t in ${FASSST_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"

# Whether this build compiles the project's CUDA code (written by cmake/NvccCheck.cmake).
cuda="$(cat "$build/fassst-cuda-status.txt" 2>/dev/null || echo "CUDA: unknown (no $build/fassst-cuda-status.txt)")"
if [[ "$cuda" == "CUDA: compiled by the nvcc check"* && ${#targets[@]} -gt 0 \
      && " ${FASSST_BUILD_TARGETS:-} " != *" fassst_nvcc_check "* ]]; then
  cuda="CUDA: nvcc check configured, not built now (FASSST_BUILD_TARGETS=${FASSST_BUILD_TARGETS:-})"
fi
if [[ "$cuda" == "CUDA: NOT"* || "$cuda" == "CUDA: unknown"* ]]; then
  echo "[setup] WARNING: $cuda" >&2
else
  echo "[setup] $cuda"
fi

# Let `import caffe` / `import fassst` work without PYTHONPATH. Scripts and tests also pin their
# own tree first (scripts/_init_paths.py, tests/conftest.py), so another clone cannot shadow them.
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
pth="$root/python"$'\n'"$build/caffe/python"
if [[ "$(cat "$site/fassst_caffe.pth" 2>/dev/null)" != "$pth" ]]; then
  printf '%s\n' "$pth" > "$site/fassst_caffe.pth" 2>/dev/null \
    || echo "[setup] note: cannot write $site/fassst_caffe.pth; scripts still find caffe themselves"
fi
echo "[setup] ready: $build"
