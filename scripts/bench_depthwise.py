#!/usr/bin/env python3
"""Times every MobileNetV2 depthwise convolution shape at an input size, stock grouped Convolution
against the DepthwiseConvolution layer: forward and backward ms (pycaffe, batch 1, median of
--repeats after warm-up, the two layers taking turns) and the speedups. A benchmark, not a test.

--export DIR / --from-logs DIR: the same cases through Caffe's own `caffe time` (machines without
pycaffe, e.g. a GPU box), as in scripts/bench_layers.py.
--train-step CONFIG: instead, the config's train net forward + backward (a solver step less the
data layer and the update), grouped Convolution against DepthwiseConvolution.
"""
import argparse
import json

import _init_paths  # noqa: F401

from fassst import cli
from fassst.bench import caffe_time, depthwise_cases, machine
from fassst.bench.timing import CLOCKS
from fassst.bench.train_step import time_train_step
from fassst.config import load_config
from fassst.net.load import use_device


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=cli.positive_int, default=416, help="network input side")
    ap.add_argument("--repeats", type=cli.positive_int, default=20)
    ap.add_argument("--gpu", type=cli.nonneg_int, default=None, help="GPU id (GPU build only); default CPU")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall: elapsed time; cpu: this thread's CPU time (a machine shared with "
                         "other jobs; run with OPENBLAS_NUM_THREADS=1)")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--export", metavar="DIR", help="write the cases as `caffe time` nets and stop")
    ap.add_argument("--from-logs", metavar="DIR", help="print the table from `caffe time` logs")
    ap.add_argument("--train-step", metavar="CONFIG", help="time CONFIG's train net instead")
    args = ap.parse_args()
    if args.clock == "cpu" and args.gpu is not None:
        ap.error("--clock cpu times the CPU; a GPU run needs --clock wall")
    if args.train_step:
        cfg = load_config(args.train_step)
        t = time_train_step(cfg, repeats=args.repeats)
        print(f"{cfg.name} train net forward + backward, batch {cfg.solver.images_per_pass}, "
              f"median of {args.repeats}: grouped Convolution {t['stock']:.0f} ms, "
              f"DepthwiseConvolution {t['layer']:.0f} ms ({t['stock'] / t['layer']:.2f}x)")
        return 0
    if args.export:
        n = caffe_time.write_cases(depthwise_cases.cases(args.size), args.export)
        print(f"wrote {n} nets to {args.export}; time each with\n  caffe time -model "
              f"{args.export}/NAME.prototxt -iterations 50 [-gpu 0] 2> {args.export}/NAME.log")
        return 0
    if args.from_logs:
        print(caffe_time.logs_markdown(args.from_logs))
        return 0
    use_device(args.gpu)
    device = machine.hardware(args.gpu)
    rows = depthwise_cases.table(args.size, repeats=args.repeats, clock=args.clock)
    print(depthwise_cases.markdown(rows, args.size, device, args.clock, args.repeats))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=device, size=args.size, clock=args.clock, rows=rows), f, indent=2)
    return 0


if __name__ == "__main__":
    cli.run(main)
