#!/usr/bin/env python3
"""Prints how much each watched blob of a model depends on the image: per blob, over K photos,
the mean |activation|, the mean over units of the standard deviation across photos, and their
ratio. An ImageNet backbone gives ratios near 1; a blob below 0.01 no longer depends on the
image (a collapsed run: every photo gets the same prediction).

    scripts/spread.py --config fassst_cpu_sample --weights RUN/snapshots/X.caffemodel
    scripts/spread.py --config fassst_cpu_sample --weights imagenet      # the converted backbone
    scripts/spread.py ... --ann train.json --images DIR --max-images 12 --blobs features.6,iam/out
"""
import argparse

import _init_paths  # noqa: F401

from fassst import cli
from fassst.config import load_config
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.sample_data import ensure_sample_data
from fassst.diagnostics.net_spread import deploy_spread
from fassst.diagnostics.spread import collapsed, format_table
from fassst.errors import InputError
from fassst.weights.convert_mobilenet_v2 import weights_file


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True, help=".caffemodel, or 'imagenet' (backbone only)")
    ap.add_argument("--ann", help="COCO json (default: the sample data set)")
    ap.add_argument("--images", help="image folder of --ann")
    ap.add_argument("--max-images", type=cli.positive_int, default=12)
    ap.add_argument("--blobs", help="comma-separated blob names (default: the watched blobs)")
    args = ap.parse_args()
    if bool(args.ann) != bool(args.images):
        ap.error("--ann and --images go together")
    ann, images = (args.ann, args.images) if args.ann else ensure_sample_data()
    cfg = load_config(args.config, num_classes=CocoDataset(ann, images).num_classes)
    weights = weights_file(cfg, args.weights)
    try:
        report = deploy_spread(cfg, weights, ann, images, args.max_images,
                               blobs=args.blobs.split(",") if args.blobs else None)
    except ValueError as e:  # diagnostics' own checks (unknown blob, too few images)
        raise InputError(str(e)) from None
    print(format_table(report))
    dead = collapsed(report)
    if dead:
        print(f"{len(dead)} blob(s) do not depend on the image: {', '.join(dead)}")
    return 0


if __name__ == "__main__":
    cli.run(main)
