#!/usr/bin/env python3
"""Classifies photos with the converted ImageNet MobileNetV2 (torchvision's preprocessing).

Prints the top-k ImageNet classes per image. The model is converted on first use (see
convert_backbone.py). Exits 1 if any image could not be read.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from fassst import cli
from fassst.images.read import ImageReadError
from fassst.imagenet.classify import ImageNetClassifier
from fassst.weights.convert_mobilenet_v2 import convert


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("images", nargs="+", metavar="IMAGE")
    ap.add_argument("--top", type=cli.positive_int, default=5, help="classes to print per image (default 5)")
    ap.add_argument("--model-dir", help="converted model folder (default: the cache)")
    args = ap.parse_args()
    classifier = ImageNetClassifier(*convert(out_dir=args.model_dir))
    failed = 0
    for path in args.images:
        try:
            top = classifier.top_k(path, k=args.top)
        except ImageReadError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(path)
        for rank, (index, name, prob) in enumerate(top, 1):
            print(f"  {rank}. {prob:.3f}  {name} ({index})")
    return 1 if failed else 0


if __name__ == "__main__":
    cli.run(main)
