#!/usr/bin/env python3
"""Stages the GPU bundle: a build's `caffe` tool and layer tests with the shared libraries they
load, and the benchmark nets (the --export routes of bench.py, bench_depthwise.py,
bench_layers.py, plus the mask tail's 3x3 convs for the cuDNN question), packed into
OUT/bundle.tar.xz for one run on a GPU machine (scripts/gpu_check.sh runs it there;
scripts/gpu_report.py reads what comes back). Idempotent: a previous bundle in OUT is replaced.
fassst.gpu_check.bundle has the details.

    scripts/gpu_bundle.py [--build DIR] [--out DIR] [--plan STEP,STEP,...] [--compress xz|gz]

The nets are written with this checkout's pycaffe (FASSST_BUILD_DIR, default ./build).
"""
import argparse
import os

import _init_paths  # noqa: F401

from fassst import cli
from fassst.build_paths import REPO_ROOT
from fassst.gpu_check import bundle


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("FASSST_GPU_BUILD_DIR")
                    or os.path.join(REPO_ROOT, "build-gpu"),
                    help="the build whose binaries are staged: default $FASSST_GPU_BUILD_DIR or "
                         "./build-gpu (a CPU build works too, for scripts/gpu_check.sh --cpu)")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, ".gpu"),
                    help="default ./.gpu (git-ignored; carry it to the GPU machine)")
    ap.add_argument("--plan", help="comma-separated steps instead of python/fassst/gpu_check/"
                                   "gpu_check.json's plan, e.g. bench:fassst_cpu_sample,layers,"
                                   "tail:fassst_cpu_sample,probe,gtests")
    ap.add_argument("--compress", choices=sorted(bundle.COMPRESSION), default="xz",
                    help="xz (default; smallest) or gz (faster to pack)")
    args = ap.parse_args()
    bundle.stage(args.build, args.out, args.plan and args.plan.split(","), args.compress)
    return 0


if __name__ == "__main__":
    cli.run(main)
