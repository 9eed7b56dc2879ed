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

import _init_paths  # noqa: F401

from fassst import cli
from fassst.bench import caffe_time, machine
from fassst.bench.cases import CASES
from fassst.bench.timing import net_from_spec, time_net
from fassst.net.load import use_device


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
        count = caffe_time.write_cases(CASES, args.export)
        print(f"wrote {count} nets to {args.export}; time each with\n  caffe time -model "
              f"{args.export}/NAME.prototxt -iterations 20 [-gpu 0] 2> {args.export}/NAME.log")
        return 0
    if args.from_logs:
        print(caffe_time.logs_markdown(args.from_logs))
        return 0
    use_device(args.gpu)
    device = machine.hardware(args.gpu)
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
    return 0


if __name__ == "__main__":
    cli.run(main)
