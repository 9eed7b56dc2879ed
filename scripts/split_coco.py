#!/usr/bin/env python3
"""Split a COCO json by image into train.json and val.json (a held-out validation set).

    scripts/split_coco.py --val 4 --seed 0 --out-dir data/sample_split   # the sample data set
    scripts/split_coco.py --ann instances.json --val-frac 0.1 --out-dir data/split

Each image goes to one side with all its annotations; both files keep every category. Images
are not copied: train and validate with the source's image folder (printed at the end).
"""
import argparse

import _init_paths  # noqa: F401  (this checkout's python/ first on sys.path)
from fassst import cli
from fassst.datasets.coco_split import split_coco_file
from fassst.datasets.sample_data import ensure_sample_data
from fassst.errors import read_json


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ann", help="COCO-format annotation json (default: the sample data set)")
    ap.add_argument("--images", help="image folder of --ann (only printed, for the train command)")
    size = ap.add_mutually_exclusive_group(required=True)
    size.add_argument("--val", type=cli.positive_int, metavar="N", help="images held out for validation")
    size.add_argument("--val-frac", type=cli.open_fraction, metavar="F", help="fraction of images held out")
    ap.add_argument("--seed", type=cli.seed, default=0, help="which images are held out")
    ap.add_argument("--out-dir", required=True, help="folder for train.json and val.json")
    args = ap.parse_args()
    ann, images = (args.ann, args.images) if args.ann else ensure_sample_data()
    train, val = split_coco_file(ann, args.out_dir, n_val=args.val, val_frac=args.val_frac,
                                 seed=args.seed)
    for path in (train, val):
        d = read_json(path)
        print(f"{path}: {len(d['images'])} images, {len(d['annotations'])} annotations")
    print(f"images: {images or 'the folder of ' + ann}")


if __name__ == "__main__":
    cli.run(main)
