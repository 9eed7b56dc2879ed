#!/usr/bin/env python3
"""Prints forward and backward milliseconds of each FASSST layer at paper sizes.

Each case is a small net (Input layers + the layer) timed through pycaffe: median of --repeats
runs after warm-up. A benchmark, not a test: it prints numbers and asserts nothing.
"""
import argparse
import json
import os
import platform

import _init_paths  # noqa: F401

import caffe
from fassst.bench.cases import CASES
from fassst.bench.timing import net_from_spec, time_net


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--gpu", type=int, default=None, help="GPU id (GPU build only); default CPU")
    ap.add_argument("--only", default="", help="run only cases whose name contains this text")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
