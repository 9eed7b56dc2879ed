#!/usr/bin/env python3
"""Whole-net benchmark shaped like the paper's Tables 2 (COCO) and 4 (Cityscapes): forward-only
and end-to-end FPS (batch 1, median of --iters after warm-up), multiply-adds, params, caffemodel
size, time per part and top layers, and this machine's sgemm rate measured in the same run, for
the plain and the BatchNorm-folded deploy net (fassst.bench.net_bench has the details).
A benchmark that prints numbers, not a test.

    scripts/bench.py --config fassst_416_coco                   # random weights, all n slots
    scripts/bench.py --config fassst_cpu_sample --weights W.caffemodel --deploy folded
    scripts/bench.py --config fassst_416_coco --stock-depthwise  # + the baseline, same run
    scripts/bench.py --config fassst_cpu_sample --stock-conv     # + folded on im2col + GEMM
    scripts/bench.py --config fassst_416_coco --profile-python   # the Python side by stage

The variants (plain, folded, with --stock-depthwise the plain net with Caffe's grouped
Convolution, with --stock-conv the folded net with engine: CAFFE, i.e. without the CPU's Winograd
3x3 path) take turns in every round, so load from other processes hits them alike.
Writes results/bench/<config>.json and .md; the nets it ran are in results/bench/<config>/.

Where pycaffe cannot load (a GPU box with another Python), --export DIR writes the nets for
Caffe's own `caffe time -phase TEST` (noise input, n random ROIs); run the printed commands there,
bring the logs back, and --from-logs DIR prints forward ms, FPS and ms per part from them.
"""
import argparse
import json
import os

import _init_paths  # noqa: F401

from fassst import cli
from fassst.bench import net_bench, net_report
from fassst.build_paths import REPO_ROOT
from fassst.config import load_config
from fassst.errors import MissingFileError


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", help="trained deploy caffemodel; default: random weights")
    ap.add_argument("--iters", type=cli.positive_int, default=20, help="timed runs (median)")
    ap.add_argument("--warmup", type=cli.nonneg_int, default=3)
    ap.add_argument("--deploy", choices=net_bench.DEPLOYS, action="append",
                    help="plain and/or folded (repeatable); default both")
    ap.add_argument("--gpu", type=cli.nonneg_int, default=None, help="GPU id (GPU build only); default CPU")
    ap.add_argument("--stock-depthwise", action="store_true",
                    help="also time the plain net with depthwise convs as Caffe's grouped "
                         "Convolution (the baseline)")
    ap.add_argument("--stock-conv", action="store_true",
                    help="also time the folded net with every Convolution on Caffe's im2col + "
                         "GEMM (engine: CAFFE), the baseline of the CPU's Winograd 3x3 path")
    ap.add_argument("--all-slots", action="store_true",
                    help="with --weights too: every slot through the tail (score threshold 0)")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "results", "bench"))
    ap.add_argument("--export", metavar="DIR", help="write the nets for `caffe time` and stop")
    ap.add_argument("--from-logs", metavar="DIR", help="print the table from `caffe time` logs")
    ap.add_argument("--hardware", default="GPU", help="with --from-logs: the machine's name")
    ap.add_argument("--profile-python", action="store_true",
                    help="only the Python side (read, letterbox, decode, paste, RLE), stage by "
                         "stage, --iters rounds over the sample photos")
    args = ap.parse_args()
    if args.from_logs:
        print(net_report.from_logs(args.from_logs, args.hardware))
        return 0
    if args.export:
        cmds = net_bench.export(load_config(args.config), args.export, args.stock_depthwise,
                                tuple(args.deploy or net_bench.DEPLOYS), args.stock_conv)
        print(f"wrote the nets to {args.export}; time each with\n  " + "\n  ".join(cmds))
        return 0
    if args.weights and not os.path.isfile(args.weights):
        raise MissingFileError(f"{args.weights}: no such caffemodel")
    cfg = load_config(args.config)
    name = cfg.name
    if args.profile_python:
        rec = net_bench.profile_python(cfg, os.path.join(args.out, name), args.weights,
                                       args.all_slots, args.iters, args.warmup, args.gpu)
        _write(os.path.join(args.out, name + "_python"), rec, net_report.profile_markdown(rec))
        return 0
    rec = net_bench.benchmark(cfg, os.path.join(args.out, name), weights=args.weights,
                              repeats=args.iters, warmup=args.warmup, gpu=args.gpu,
                              stock_depthwise=args.stock_depthwise, all_slots=args.all_slots,
                              deploys=tuple(args.deploy or net_bench.DEPLOYS),
                              stock_conv=args.stock_conv)
    _write(os.path.join(args.out, name), rec, net_report.markdown(rec))
    return 0


def _write(stem, rec, text):
    with open(stem + ".json", "w") as f:
        json.dump(rec, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(text)
    print(text)
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    cli.run(main)
