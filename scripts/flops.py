#!/usr/bin/env python3
"""Multiply-adds, parameters and fp32 caffemodel size of a config's deploy net, with n ROIs
through the mask tail, next to the paper's numbers where it gives them.

    scripts/flops.py --config fassst_416_coco [--layers] [--json FILE]
"""
import argparse
import collections
import json
import os

import _init_paths  # noqa: F401

from fassst import cli, cost
from fassst.config import load_config
from fassst.net.fassst_net import build_net

TARGETS = os.path.join(os.path.dirname(cost.__file__), "cost_targets.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--rois", type=cli.positive_int,
                    help="ROIs through the tail (default: n, the slot count)")
    ap.add_argument("--layers", action="store_true", help="print every layer")
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()
    cfg = load_config(args.config)
    rois = args.rois or cfg.num_slots
    rows, net = cost.layer_costs(cost.with_rois(build_net(cfg, "deploy"), rois))
    total = cost.summarize(rows, net)
    parts = collections.OrderedDict()
    for r in rows:
        p = parts.setdefault(cost.group_of(r["name"]), [0, 0])
        p[0] += r["macs"]
        p[1] += r["params"]
    if args.layers:
        print(f"{'layer':32s} {'type':16s} {'GMACs':>9s} {'params':>10s}  top")
        for r in rows:
            if r["macs"] or r["params"]:
                print(f"{r['name']:32s} {r['type']:16s} {r['macs'] / 1e9:9.4f} {r['params']:10d}  "
                      f"{r['shape']}")
    print(f"{cfg.name}: input {cfg.input_size}, n = {cfg.num_slots}, C = {cfg.num_classes}, "
          f"D = {cfg.mask_dim}, IAM width {cfg.iam_dim}, {rois} ROIs through the tail")
    print("| part | GMACs | params (M) |\n|---|---:|---:|")
    for name, (macs, params) in parts.items():
        if macs or params:
            print(f"| {name} | {macs / 1e9:.2f} | {params / 1e6:.2f} |")
    gmacs, mb = total["macs"] / 1e9, total["caffemodel_bytes"] / 1e6
    print(f"| **total** | **{gmacs:.2f}** | **{total['params'] / 1e6:.2f}** |")
    print(f"caffemodel (fp32): {mb:.2f} MB")
    with open(TARGETS) as f:
        paper = json.load(f).get(cfg.name)
    if paper and rois == cfg.num_slots:
        print(f"paper: {paper['gflops']} GFLOPs ({100 * (gmacs / paper['gflops'] - 1):+.1f}%), "
              f"{paper['mb']} MB ({100 * (mb / paper['mb'] - 1):+.1f}%)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(config=cfg.name, rois=rois, gmacs=gmacs, params=total["params"],
                           caffemodel_mb=mb, parts={k: dict(gmacs=v[0] / 1e9, params=v[1])
                                                    for k, v in parts.items()}, paper=paper), f, indent=2)


if __name__ == "__main__":
    cli.run(main)
