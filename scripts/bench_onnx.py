#!/usr/bin/env python3
"""Times the same FASSST deploy net, same weights, batch 1, in Caffe (pycaffe, CPU) and in
ONNX Runtime (CPU), alternating, after warm-up; prints the medians of K and writes
results/bench/onnx_<config>.json. Every slot goes through the mask tail in both (score
threshold 0; the script checks R = n), the cost the paper counts. A benchmark: it asserts
nothing about speed.

    scripts/bench_onnx.py --config fassst_416_coco --iters 10
    scripts/bench_onnx.py --config fassst_cpu_sample --weights X.caffemodel --iters 30
"""
import argparse
import json
import os

import _init_paths  # noqa: F401

from fassst import cli
from fassst.bench import onnx_bench
from fassst.build_paths import REPO_ROOT
from fassst.config import load_config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", help=".caffemodel (default: random weights; timing does not depend on them)")
    ap.add_argument("--num-classes", type=cli.positive_int, help="C, if the weights differ from the config's")
    ap.add_argument("--iters", type=cli.positive_int, default=10, help="timed runs per runtime (median)")
    ap.add_argument("--warmup", type=cli.nonneg_int, default=2)
    ap.add_argument("--out", help="JSON path (default results/bench/onnx_<config>.json)")
    args = ap.parse_args()
    overrides = {"num_classes": args.num_classes} if args.num_classes else {}
    cfg = load_config(args.config, **overrides)
    result = onnx_bench.run(cfg, weights=args.weights, iters=args.iters, warmup=args.warmup)
    print(onnx_bench.table(result))
    m = result["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, load average {m['load_avg_1min']:.2f} at the start, numpy "
          f"sgemm {m['sgemm_gmacs']} G multiply-adds/s; onnxruntime {result['versions']['onnxruntime']}")
    a = result["agreement"]
    print(f"agreement (ONNX Runtime vs Caffe, {a['common']} ROIs): boxes {a['box']:.2g} px, "
          f"scores {a['score']:.2g}, masks {a['mask']:.2g}, classes differing {a['class_mismatches']}")
    out = args.out or os.path.join(REPO_ROOT, "results", "bench", f"onnx_{cfg.name}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
