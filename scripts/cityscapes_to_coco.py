#!/usr/bin/env python3
"""Convert Cityscapes gtFine polygons of one split to a COCO json with the paper's 8 classes.

    scripts/cityscapes_to_coco.py --root CITYSCAPES --split val --out cityscapes_val.json

CITYSCAPES holds gtFine/<split>/<city>/*_gtFine_polygons.json; images are referenced as
<city>/<name>_leftImg8bit.png relative to CITYSCAPES/leftImg8bit/<split>/.
"""
import argparse

import _init_paths  # noqa: F401  (this checkout's python/ first on sys.path)
from fassst import cli
from fassst.datasets.cityscapes_to_coco import convert_split, write_json


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--root", required=True, help="Cityscapes root (holds gtFine/)")
    p.add_argument("--split", required=True, help="train, val or test")
    p.add_argument("--out", required=True, help="output COCO json")
    args = p.parse_args()
    dataset, stats = convert_split(args.root, args.split)
    write_json(dataset, args.out)
    print(f"{args.out}: {stats.images} images, {stats.instances} instances "
          f"({stats.crowd} crowd), {len(stats.dropped)} objects dropped (no visible pixel)")


if __name__ == "__main__":
    cli.run(main)
