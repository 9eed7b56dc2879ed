#!/usr/bin/env python3
"""Writes a config's train net at the start of training as one caffemodel (the ImageNet backbone,
the head from its fillers at --seed, the IAM's class prior) and prints its path: the `-weights`
for Caffe's own tool, which then starts where scripts/train.py starts
(python/fassst/caffe_tool/init_weights.py).

    scripts/caffe train -solver solvers/fassst_cpu_sample.prototxt \\
        -weights "$(scripts/init_weights.py --config fassst_cpu_sample)"
"""
import argparse
import sys

import _init_paths  # noqa: F401

from fassst import cli
from fassst.caffe_tool.init_weights import init_weights
from fassst.config import load_config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="config name (python/fassst/configs) or .json path")
    ap.add_argument("--seed", type=cli.seed, default=0,
                    help="the fillers' seed (the solvers' random_seed: 0)")
    ap.add_argument("--weights", default="imagenet",
                    help="'imagenet' (converted MobileNetV2), a .caffemodel, or 'none'")
    ap.add_argument("--out", help="write here (default: cached under ~/.cache/fassst/weights/init)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    weights = None if args.weights == "none" else args.weights
    if weights == "imagenet" and cfg.backbone != "mobilenet_v2":
        ap.error(f"--weights imagenet is the converted MobileNetV2; {cfg.backbone} has no ImageNet "
                 f"weights here: pass a .caffemodel with its layer names, or 'none'")
    print(init_weights(cfg, seed=args.seed, weights=weights, out=args.out,
                       log=lambda m: print(m, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    cli.run(main)
