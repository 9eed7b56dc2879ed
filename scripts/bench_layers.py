#!/usr/bin/env python3
"""Prints forward and backward milliseconds of each FASSST layer at paper sizes.

Each case is a small net (Input layers + the layer) timed through pycaffe: median of --repeats
runs after warm-up. A benchmark, not a test: it prints numbers and asserts nothing.

Where pycaffe cannot run (an edge board, a GPU box with another Python), --export DIR writes each
case as a net for Caffe's own tool; run `caffe time -model DIR/NAME.prototxt [-gpu 0] 2> DIR/NAME.log`
there, bring the logs back, and --from-logs DIR prints the same table from them.
"""
import argparse
import json
import os
import platform
import sys

import _init_paths  # noqa: F401

import caffe
from fassst import cli
from fassst.bench import caffe_time
from fassst.bench.cases import CASES
from fassst.bench.timing import net_from_spec, time_net


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=cli.positive_int, default=10)
    ap.add_argument("--gpu", type=cli.nonneg_int, default=None, help="GPU id (GPU build only); default CPU")
    ap.add_argument("--only", default="", help="run only cases whose name contains this text")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--export", metavar="DIR", help="write the cases as `caffe time` nets and stop")
    ap.add_argument("--from-logs", metavar="DIR", help="print the table from `caffe time` logs")
    args = ap.parse_args()
    if args.export:
        return export(args.export)
    if args.from_logs:
        return from_logs(args.from_logs)
    if args.gpu is None:
        caffe.set_mode_cpu()
        device = f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    else:
        caffe.set_device(args.gpu)
        caffe.set_mode_gpu()
        device = f"GPU {args.gpu}"
    rows = []
    print(f"| layer ({device}) | forward ms | backward ms |\n|---|---:|---:|")
    for name, build, fill in CASES:
        if args.only and args.only not in name:
            continue
        net = net_from_spec(build())
        fill(net)
        fwd, bwd = time_net(net, repeats=args.repeats)
        rows.append(dict(layer=name, forward_ms=round(fwd, 3), backward_ms=round(bwd, 3)))
        print(f"| {name} | {fwd:.2f} | {bwd:.2f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=device, rows=rows), f, indent=2)


def export(out_dir):
    count = caffe_time.write_cases(CASES, out_dir)
    print(f"wrote {count} nets to {out_dir}; time each with\n"
          f"  caffe time -model {out_dir}/NAME.prototxt -iterations 20 [-gpu 0] 2> {out_dir}/NAME.log")


def from_logs(log_dir):
    try:
        rows = caffe_time.rows_from_logs(log_dir)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    print("| layer (caffe time, mean) | forward ms | backward ms |\n|---|---:|---:|")
    for name, fwd, bwd in rows:
        print(f"| {name} | {fwd:.3f} | {bwd:.3f} |")


if __name__ == "__main__":
    main()
