#!/usr/bin/env python3
"""The report of a GPU check: what scripts/gpu_check.sh wrote to its --out folder.

    scripts/gpu_report.py DIR [--out results/bench/gpu_<date>.md]

DIR holds logs.tar.gz (and summary.txt) as fetched. Prints and writes the layer tests' pass/fail
count, FPS of the 416 and 768 nets against the targets (200 / 150), the bench.py / bench_depthwise.py /
bench_layers.py tables from the `caffe time` logs, and cuDNN against this Caffe's convolutions
(fassst.gpu_check.report has the details). The logs are unpacked beside the markdown (the same
path without .md). <date> is the day gpu_check.sh ran.
"""
import argparse
import os
import re

import _init_paths  # noqa: F401

from fassst import cli
from fassst.gpu_check import report
from fassst.build_paths import REPO_ROOT
from fassst.errors import MissingFileError


def default_out(src):
    summary = os.path.join(src, "summary.txt")
    day = None
    if os.path.isfile(summary):
        with open(summary) as f:
            m = re.search(r"gpu_check (\d{4})-(\d\d)-(\d\d)T", f.readline())
        day = m and "".join(m.groups())
    if not day:
        raise MissingFileError(f"{summary}: no gpu_check.sh summary to date the report; give --out")
    return os.path.join(REPO_ROOT, "results", "bench", f"gpu_{day}.md")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="the fetched output folder of scripts/gpu_check.sh")
    ap.add_argument("--out", help="markdown path (default results/bench/gpu_<date>.md)")
    args = ap.parse_args()
    out = args.out or default_out(args.dir)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    print(report.report(args.dir, out))
    print(f"wrote {out}")


if __name__ == "__main__":
    cli.run(main)
