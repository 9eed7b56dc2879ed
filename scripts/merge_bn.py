#!/usr/bin/env python3
"""Folds BatchNorm + Scale into the preceding Convolution of a deploy net (prototxt + caffemodel).

Example, on the converted backbone:
  scripts/merge_bn.py ~/.cache/fassst/weights/mobilenet_v2_imagenet_v2.{prototxt,caffemodel} \
      --out results/mv2_merged
writes results/mv2_merged.prototxt and results/mv2_merged.caffemodel.
"""
import argparse
import os

import _init_paths  # noqa: F401

from fassst import cli
from fassst.net.merge_bn import merge_bn


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prototxt")
    ap.add_argument("caffemodel")
    ap.add_argument("--out", required=True, help="output path prefix (.prototxt/.caffemodel added)")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    out_prototxt, out_caffemodel = args.out + ".prototxt", args.out + ".caffemodel"
    merged = merge_bn(args.prototxt, args.caffemodel, out_prototxt, out_caffemodel)
    print(f"folded BatchNorm into {len(merged)} convolutions\n"
          f"wrote {out_prototxt}\n      {out_caffemodel}")
    return 0


if __name__ == "__main__":
    cli.run(main)
