#!/usr/bin/env python3
"""Exports a trained FASSST deploy net, end to end, to ONNX (standard operators only).

    scripts/export_onnx.py --config fassst_cpu_sample \
        --weights results/demo/train/snapshots/X_precise_bn.caffemodel --out results/fassst.onnx

Input `image` (1, 3, S, S): the letterboxed, ImageNet-normalised RGB photo. Outputs: boxes (R, 4)
in input pixels, scores (R), classes (R), masks (R, 1, 56, 56) probabilities, slots (R); R is 0
to n. Run it with scripts/infer.py --backend onnxruntime. The mapping of every layer is in
docs/DESIGN.md, "ONNX export".
"""
import argparse
import os

import _init_paths  # noqa: F401

from onnx.defs import onnx_opset_version

from fassst import cli
from fassst.config import load_config
from fassst.export.graph import MIN_OPSET
from fassst.export.onnx_export import DEFAULT_OPSET, export_deploy, save


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True, help="trained .caffemodel")
    ap.add_argument("--out", required=True, help="the .onnx file to write")
    ap.add_argument("--opset", type=cli.int_range(MIN_OPSET, onnx_opset_version()), default=DEFAULT_OPSET,
                    help=f"ONNX opset, {MIN_OPSET} (RoiAlign) to {onnx_opset_version()} (this onnx)")
    ap.add_argument("--fold-bn", action="store_true",
                    help="fold BatchNorm + Scale into the convolutions (else BatchNormalization nodes)")
    ap.add_argument("--num-classes", type=cli.positive_int, help="C, if the weights differ from the config's")
    ap.add_argument("--score-threshold", type=cli.fraction, help="keep slots scoring above this "
                    "(default: the config's); fixed in the graph")
    args = ap.parse_args()
    overrides = {k: v for k, v in (("num_classes", args.num_classes),
                                   ("score_threshold", args.score_threshold)) if v is not None}
    cfg = load_config(args.config, **overrides)
    model = export_deploy(cfg, args.weights, opset=args.opset, fold_bn=args.fold_bn)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save(model, args.out)
    print(f"wrote {args.out}: opset {args.opset}, IR version {model.ir_version}, "
          f"{len(model.graph.node)} nodes, {os.path.getsize(args.out) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    cli.run(main)
