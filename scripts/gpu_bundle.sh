#!/usr/bin/env bash
# Stages the GPU bundle: a build's `caffe` tool and layer tests with the shared libraries they
# load, and the benchmark nets (the --export routes of bench.py, bench_depthwise.py,
# bench_layers.py, plus the mask tail's 3x3 convs for the cuDNN question), packed into
# OUT/bundle.tar.xz for one call on a lent GPU machine (scripts/gpu_check.sh runs it there;
# scripts/gpu_report.py reads what comes back). Idempotent: a previous bundle in OUT is replaced.
#
#   scripts/gpu_bundle.sh [--build DIR] [--out DIR] [--plan STEP,STEP,...] [--compress xz|gz]
#
#   --build    the build whose binaries are staged: default $FASSST_GPU_BUILD_DIR or ./build-gpu
#              (a CPU build works too, for scripts/gpu_check.sh --cpu)
#   --out      default ./.gpu (git-ignored; carry it to the device call)
#   --plan     the steps instead of python/fassst/bench/gpu_check.json's "plan", e.g.
#              bench:fassst_cpu_sample,layers,tail:fassst_cpu_sample,probe,gtests
#   --compress xz (default; smallest) or gz (faster to pack)
# The nets are written with this checkout's pycaffe (FASSST_BUILD_DIR, default ./build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec python3 - "$root" "$@" <<'EOF'
import argparse
import os
import sys

root = sys.argv.pop(1)
sys.path.insert(0, os.path.join(root, "scripts"))
import _init_paths  # noqa: E402,F401

from fassst import cli  # noqa: E402
from fassst.bench import gpu_bundle  # noqa: E402

ap = argparse.ArgumentParser(prog="scripts/gpu_bundle.sh",
                             description="Stage the GPU bundle (see the script's header).")
ap.add_argument("--build", default=os.environ.get("FASSST_GPU_BUILD_DIR")
                or os.path.join(root, "build-gpu"))
ap.add_argument("--out", default=os.path.join(root, ".gpu"))
ap.add_argument("--plan", help="comma-separated steps (default: gpu_check.json's plan)")
ap.add_argument("--compress", choices=sorted(gpu_bundle.COMPRESSION), default="xz")
args = ap.parse_args(sys.argv[1:])
cli.run(lambda: gpu_bundle.stage(args.build, args.out, args.plan and args.plan.split(","),
                                 args.compress) and None)
EOF
