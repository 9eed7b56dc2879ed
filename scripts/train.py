#!/usr/bin/env python3
"""Trains a FASSST config on a COCO-format data set (or the built-in sample data).

    scripts/train.py --config fassst_cpu_sample --out results/train_sample
    scripts/train.py --config fassst_416_coco --ann instances_train2017.json --images train2017/ \
        --weights imagenet --gpu 0 --out results/coco
    scripts/train.py ... --resume        # continue from the newest snapshot in --out
    scripts/train.py ... --val-ann val.json --val-images DIR --eval-every 250   # + validation AP

Ctrl-C (or SIGTERM) snapshots before stopping. Caffe's own log is OUT/train.log.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("GLOG_minloglevel", "0")  # Caffe's INFO log is the run's train.log
import _init_paths  # noqa: F401,E402

from fassst import cli  # noqa: E402
from fassst.config import load_config  # noqa: E402
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.sample_data import ensure_sample_data
from fassst.engine.trainer import train
from fassst.net.load import check_config_weights
from fassst.weights.convert_mobilenet_v2 import imagenet_weights


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="config name (python/fassst/configs) or .json path")
    ap.add_argument("--ann", help="COCO-format annotation json (default: the sample data set)")
    ap.add_argument("--images", help="image folder for --ann")
    ap.add_argument("--weights", default="imagenet",
                    help="'imagenet' (converted MobileNetV2), a .caffemodel, or 'none'")
    ap.add_argument("--out", required=True, help="run folder (snapshots, logs, loss curve)")
    ap.add_argument("--resume", action="store_true", help="continue from the newest snapshot in --out")
    ap.add_argument("--iters", type=cli.positive_int,
                    help="stop after this many iterations (default: the schedule)")
    ap.add_argument("--seed", type=cli.seed, default=0)
    ap.add_argument("--workers", type=cli.nonneg_int, default=1,
                    help="data prefetch processes (0: in-process)")
    ap.add_argument("--no-augment", action="store_true",
                    help="no flip or colour jitter (default: the config's train_augment)")
    ap.add_argument("--skip-bad-images", action="store_true",
                    help="skip and count unreadable or truncated training images instead of stopping")
    ap.add_argument("--val-ann", help="held-out COCO json: mask and box AP during training "
                                      "(OUT/metrics.csv, OUT/snapshots/best.caffemodel)")
    ap.add_argument("--val-images", help="image folder for --val-ann")
    ap.add_argument("--eval-every", type=cli.nonneg_int, metavar="K",
                    help="evaluate every K iterations and at the end (default: at every snapshot; "
                         "0: only at the end)")
    ap.add_argument("--gpu", type=cli.nonneg_int, help="GPU id (GPU build); default CPU")
    ap.add_argument("--stop-on-collapse", action="store_true",
                    help="end the run (snapshot kept) as soon as the collapse watch reports a blob "
                         "that no longer depends on the image; --resume without it trains on")
    args = ap.parse_args()
    if bool(args.ann) != bool(args.images):
        ap.error("--ann and --images go together")
    if bool(args.val_ann) != bool(args.val_images):
        ap.error("--val-ann and --val-images go together")
    if args.eval_every is not None and not args.val_ann:
        ap.error("--eval-every needs --val-ann and --val-images")
    ann, images = (args.ann, args.images) if args.ann else ensure_sample_data()
    # Classes come from the json, so custom data sets need no config edit.
    cfg = load_config(args.config, num_classes=CocoDataset(ann, images).num_classes)
    if args.weights == "imagenet" and cfg.backbone != "mobilenet_v2":
        ap.error(f"--weights imagenet is the converted MobileNetV2; {cfg.backbone} has no ImageNet "
                 f"weights here: pass a .caffemodel with its layer names, or 'none'")
    weights = {"imagenet": lambda: imagenet_weights(cfg),
               "none": lambda: None}.get(args.weights, lambda: args.weights)()
    if weights:
        check_config_weights(cfg, weights)  # Caffe would abort the process on a misfit
    result = train(cfg, args.out, ann, images, weights=weights, resume=args.resume, seed=args.seed,
                   max_iter=args.iters, workers=args.workers,
                   augment=False if args.no_augment else None, gpu=args.gpu,
                   skip_bad_images=args.skip_bad_images, val_ann=args.val_ann,
                   val_images=args.val_images, eval_every=args.eval_every,
                   stop_on_collapse=args.stop_on_collapse)
    print(json.dumps(result))
    if result["stopped_by"] == "collapse":
        print(f"[train] stopped at iteration {result['iter']}: the collapse watch reported a blob "
              f"({os.path.join(args.out, 'train.log')}); change the recipe and start a new --out, "
              f"or --resume without --stop-on-collapse to train on", file=sys.stderr)
        return 3
    return 130 if result["stopped_by"] else 0


if __name__ == "__main__":
    cli.run(main)
