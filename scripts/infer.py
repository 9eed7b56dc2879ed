#!/usr/bin/env python3
"""Runs a trained FASSST model on an image, a folder of images or a video.

    scripts/infer.py --config fassst_cpu_sample --weights results/demo/train/snapshots/X.caffemodel \
        --input photo.jpg --out results/infer [--ann train.json]
    scripts/infer.py --backend onnxruntime --config fassst_cpu_sample --weights fassst.onnx ...

--backend caffe (default) runs the deploy net with a .caffemodel; onnxruntime runs the .onnx
written by scripts/export_onnx.py (no pycaffe needed). Letterbox and mask paste are shared.

Writes OUT/<name>.png overlays (mask, box, class, score) or OUT/<video>.mp4, and OUT/results.json
(COCO results format; image ids from --ann where the file names match, else 1, 2, ...).
Class names come from --ann (default: the sample data set the demo trains on).

An unreadable image (missing, not an image, truncated) or video frame is skipped with a warning
naming it and counted; the rest is processed, and the exit status is then 1. --strict stops at
the first one.
"""
import argparse
import json
import os
import sys

import _init_paths  # noqa: F401

from fassst import cli
from fassst.config import load_config
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.sample_data import ensure_sample_data
from fassst.inference.backends import BACKENDS, make_predictor
from fassst.inference.run import predict_media


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True, help=".caffemodel (caffe) or .onnx (onnxruntime)")
    ap.add_argument("--backend", choices=BACKENDS, default="caffe")
    ap.add_argument("--input", required=True, help="image, folder of images, or video")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ann", help="COCO json of the classes the model was trained on")
    ap.add_argument("--images", help="image folder of --ann (only for its file names)")
    ap.add_argument("--score-threshold", type=cli.fraction)
    ap.add_argument("--draw-threshold", type=cli.fraction, default=0.3,
                    help="overlays show instances scoring at least this (results json: all)")
    ap.add_argument("--gpu", type=cli.nonneg_int)
    ap.add_argument("--strict", action="store_true",
                    help="stop at the first unreadable image or frame (default: skip, count, exit 1)")
    args = ap.parse_args()
    ann, images = (args.ann, args.images or ".") if args.ann else ensure_sample_data()
    data = CocoDataset(ann, images)
    ids = {os.path.basename(data.coco.imgs[i]["file_name"]): i for i in data.image_ids}
    cfg = load_config(args.config, num_classes=data.num_classes)
    predict = make_predictor(args.backend, cfg, args.weights, gpu=args.gpu,
                             score_threshold=args.score_threshold)
    run = predict_media(predict, args.input, args.out, data.class_names, data.category_ids,
                        image_ids=ids, draw_threshold=args.draw_threshold, strict=args.strict)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(run.results, f)
    print(f"wrote {args.out}: {run.processed} predicted, {run.skipped} skipped")
    if run.skipped:
        print(f"{run.skipped} unreadable input(s) skipped (named above); exit status 1",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main)
