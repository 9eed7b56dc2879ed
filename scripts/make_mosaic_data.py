#!/usr/bin/env python3
"""Builds a proxy data set of 2 x 2 mosaics from a COCO set (default: the sample data): more
images, more instances per image than slots, smaller objects. See python/fassst/datasets/mosaic.py.

    scripts/make_mosaic_data.py --count 128 --out results/mosaic128
    scripts/train.py --config fassst_cpu_sample --ann results/mosaic128/annotations.json \
        --images results/mosaic128/images --iters 2000 --out results/mosaic128_train
"""
import argparse

import _init_paths  # noqa: F401

from fassst import cli
from fassst.datasets.mosaic import describe, make_mosaics
from fassst.datasets.sample_data import ensure_sample_data


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ann", help="source COCO json (default: the sample data set)")
    ap.add_argument("--images", help="image folder of --ann")
    ap.add_argument("--count", type=cli.positive_int, default=128, help="mosaics to write")
    ap.add_argument("--side", type=cli.positive_int, default=512, help="mosaic side in pixels")
    ap.add_argument("--seed", type=cli.seed, default=0)
    ap.add_argument("--out", required=True, help="folder for annotations.json and images/")
    args = ap.parse_args()
    if bool(args.ann) != bool(args.images):
        ap.error("--ann and --images go together")
    if args.count < 1 or args.side < 64 or args.side % 2:
        ap.error("--count must be >= 1 and --side an even number >= 64")
    ann, images = (args.ann, args.images) if args.ann else ensure_sample_data()
    path = make_mosaics(ann, images, args.out, args.count, side=args.side, seed=args.seed)
    print(describe(path))
    return 0


if __name__ == "__main__":
    cli.run(main)
