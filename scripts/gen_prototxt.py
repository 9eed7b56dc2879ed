#!/usr/bin/env python3
"""Regenerates the checked-in prototxt/<config>/*.prototxt and solvers/<config>.prototxt.

    scripts/gen_prototxt.py              # every named config
    scripts/gen_prototxt.py --config fassst_416_coco --out /tmp/gen
"""
import argparse
import os

import _init_paths  # noqa: F401

from fassst import cli
from fassst.caffe_tool.generate import write_generated
from fassst.config import config_names, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", help="config name (repeatable); default: all")
    ap.add_argument("--out", default=ROOT, help="root to write prototxt/ and solvers/ under")
    args = ap.parse_args()
    for name in args.config or config_names():
        for rel in write_generated(load_config(name), args.out):
            print(os.path.join(args.out, rel))


if __name__ == "__main__":
    cli.run(main)
