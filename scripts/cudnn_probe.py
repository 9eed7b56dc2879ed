#!/usr/bin/env python3
"""UNVERIFIED: written without a GPU; nothing in it has run on one. Device side only: it imports
torch, not caffe (the GPU machine's Python cannot load this build's pycaffe).

    scripts/cudnn_probe.py --shapes .gpu/.../cudnn_shapes.json [--json OUT.json]

Times the mask tail's 3x3 convolutions and MobileNetV2's depthwise convolutions (the shapes
scripts/gpu_bundle.py wrote) in torch with cuDNN (FP32 and TF32) and with cuDNN disabled: the
cuDNN question for this Caffe, whose GPU build runs convolutions without cuDNN. Prints a table,
writes JSON for scripts/gpu_report.py (fassst.gpu_check.cudnn_probe has the details). Without torch
or a CUDA device it says so in one line and exits 3. Run by scripts/gpu_check.sh.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from fassst import cli
from fassst.gpu_check import cudnn_probe


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", required=True, help="cudnn_shapes.json from the bundle")
    ap.add_argument("--json", help="write the record here")
    ap.add_argument("--warmup", type=cli.nonneg_int, default=5)
    ap.add_argument("--repeats", type=cli.positive_int, default=30)
    args = ap.parse_args()
    try:
        cudnn_probe.main(args.shapes, args.json, args.warmup, args.repeats)
    except cudnn_probe.NoDevice as e:
        print(f"cudnn_probe: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    cli.run(main)
