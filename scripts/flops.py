#!/usr/bin/env python3
"""Multiply-adds, parameters and fp32 caffemodel size of a config's deploy net, with n ROIs
through the mask tail, next to the paper's numbers where it gives them.

    scripts/flops.py --config fassst_416_coco [--layers] [--json FILE]
"""
import argparse
import json

import _init_paths  # noqa: F401

from fassst import cli
from fassst.bench import cost
from fassst.config import load_config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--rois", type=cli.positive_int,
                    help="ROIs through the tail (default: n, the slot count)")
    ap.add_argument("--layers", action="store_true", help="print every layer")
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()
    cfg = load_config(args.config)
    summary = cost.count(cfg, args.rois)
    print(cost.markdown(summary, cfg, layers=args.layers))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: v for k, v in summary.items() if k != "layers"}, f, indent=2)


if __name__ == "__main__":
    cli.run(main)
