#!/usr/bin/env python3
"""The stability benchmark: trains and scores a config with several seeds, then prints per seed
mask/bbox AP50 and AP, final losses, collapse warnings and wall time, and min/median/max.

    scripts/seeds.py --config fassst_cpu_sample --seeds 0-4 --out results/seeds/cpu_sample
    scripts/seeds.py --config my.json --ann train.json --images DIR --seeds 0,1,2 --iters 2000 --out ...
    scripts/seeds.py ... --val-ann val.json --val-images DIR --class person   # unseen photos

Resumable: run the same command again after an interruption. Writes OUT/seeds.{md,json}.
A benchmark (it prints measured numbers), not a test.
"""
import argparse
import os
import sys

import _init_paths  # noqa: F401

from fassst import cli
from fassst.config import load_config
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.sample_data import ensure_sample_data
from fassst.engine.seeds import parse_seeds, run_seeds
from fassst.engine.trainer import check_val_set
from fassst.weights.convert_mobilenet_v2 import imagenet_weights


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="config name or .json path")
    ap.add_argument("--seeds", type=cli.seed_list, default="0-4", help="e.g. 0-4 or 0,2,5")
    ap.add_argument("--iters", type=cli.positive_int, help="iterations per seed (default: the schedule)")
    ap.add_argument("--ann", help="COCO json (default: the sample data set)")
    ap.add_argument("--images", help="image folder of --ann")
    ap.add_argument("--workers", type=cli.nonneg_int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--val-ann", help="held-out COCO json: each seed is scored on it (not on the "
                                      "training photos) and reports its best validation iteration")
    ap.add_argument("--val-images", help="image folder of --val-ann")
    ap.add_argument("--eval-every", type=cli.nonneg_int, default=250, metavar="K",
                    help="with --val-ann: validation every K iterations (default 250)")
    ap.add_argument("--class", dest="classes", action="append", default=[], metavar="NAME",
                    help="add a mask AP50 column for this class (repeatable), e.g. person")
    args = ap.parse_args()
    if bool(args.ann) != bool(args.images):
        ap.error("--ann and --images go together")
    if bool(args.val_ann) != bool(args.val_images):
        ap.error("--val-ann and --val-images go together")
    ann, images = (args.ann, args.images) if args.ann else ensure_sample_data()
    cfg = load_config(args.config, num_classes=CocoDataset(ann, images).num_classes)
    os.makedirs(args.out, exist_ok=True)
    val = (dict(ann=args.val_ann, images=args.val_images,
                every=check_val_set(ann, images, args.val_ann, args.val_images, args.eval_every))
           if args.val_ann else None)
    names = CocoDataset(ann, images).class_names
    unknown = [c for c in args.classes if c not in names]
    if unknown:
        ap.error(f"--class {', '.join(unknown)}: not a class of {ann}")
    run_seeds(cfg, args.out, ann, images, imagenet_weights(cfg), parse_seeds(args.seeds),
              max_iter=args.iters, workers=args.workers, quiet=not sys.stdout.isatty(), val=val,
              classes=args.classes)
    return 0


if __name__ == "__main__":
    cli.run(main)
