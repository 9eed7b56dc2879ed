#!/usr/bin/env python3
"""Reproduces one of the paper's tables: trains every cell (resuming finished or interrupted
ones), scores it on the paper's split, benchmarks its speed and cost, and writes
results/table<N>.md with the paper's numbers beside ours (docs/REPRODUCE.md).

    scripts/reproduce.py --table 7 --data-root /data [--gpu 0]
    scripts/reproduce.py --table 7 --smoke          # a few iterations per cell, sample data, CPU

--data-root holds coco/{annotations,train2017,val2017,test2017} and
cityscapes/{gtFine,leftImg8bit}. Run the same command again after an interruption: finished
cells are read back, an interrupted one resumes from its last snapshot.
"""
import argparse
import sys

import _init_paths  # noqa: F401

from fassst import cli
from fassst.reproduce.runner import reproduce_table
from fassst.reproduce.spec import TABLE_NUMBERS


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", type=int, required=True, choices=TABLE_NUMBERS)
    ap.add_argument("--data-root", help="folder with coco/ and cityscapes/ (not with --smoke)")
    ap.add_argument("--smoke", action="store_true",
                    help="every cell for a few iterations on the sample data (plumbing, not results)")
    ap.add_argument("--gpu", type=cli.nonneg_int, help="GPU id (GPU build); default CPU")
    ap.add_argument("--seed", type=cli.seed, default=0)
    ap.add_argument("--r50-weights", help="ImageNet ResNet-50 caffemodel for Table 6's ResNet-50-FPN row")
    ap.add_argument("--work", help="cells folder (default results/reproduce, smoke: results/reproduce_smoke)")
    ap.add_argument("--results", help="where table<N>.md goes (default results/)")
    args = ap.parse_args()
    if args.smoke and args.data_root:
        ap.error("--smoke runs on the sample data; leave out --data-root")
    out = reproduce_table(args.table, data_root=args.data_root, smoke=args.smoke, gpu=args.gpu,
                          seed=args.seed, r50_weights=args.r50_weights, work_dir=args.work,
                          results_dir=args.results, quiet=not sys.stdout.isatty())
    if out is None:
        return 130
    print(open(out).read())
    return 0


if __name__ == "__main__":
    cli.run(main)
