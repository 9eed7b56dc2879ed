#!/usr/bin/env python3
"""The most n slots can score on a data set: every instance the grid assignment keeps, predicted
exactly, scored by pycocotools against all the ground truth. No training scores above it.

    scripts/slot_ceiling.py --ann instances.json --config fassst_cpu_custom
    scripts/slot_ceiling.py --ann instances.json --size 256 --slots 16 --slots 36 --class person

Prints one row per slot count: instances kept and dropped (no free cell), mask AP50 and AP, box
AP50, and each --class's mask AP50. Read it before choosing n for crowded photos. Needs no photo.
"""
import argparse

import _init_paths  # noqa: F401  (this checkout's python/ first on sys.path)
from fassst import cli
from fassst.config import load_config
from fassst.datasets.sample_data import ensure_sample_data
from fassst.evaluation.slot_ceiling import ceiling_header, ceiling_row, slot_ceiling
from fassst.net.geometry import grid_side


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ann", help="COCO-format annotation json (default: the sample data set)")
    ap.add_argument("--config", default="fassst_cpu_sample",
                    help="config name or .json path whose input size and n are used (default "
                         "fassst_cpu_sample)")
    ap.add_argument("--size", type=cli.positive_int, help="input size (default: the config's)")
    ap.add_argument("--slots", type=cli.positive_int, action="append", metavar="N",
                    help="slot count, a square; repeatable (default: the config's n)")
    ap.add_argument("--class", dest="classes", action="append", default=[], metavar="NAME",
                    help="add a mask AP50 column for this class (repeatable), e.g. person")
    args = ap.parse_args()
    cfg = load_config(args.config)
    size, slots = args.size or cfg.input_size, args.slots or [cfg.num_slots]
    for n in slots:
        try:
            grid_side(n)
        except ValueError as e:
            ap.error(f"argument --slots: {e}")
    ann = args.ann or ensure_sample_data()[0]
    print(f"{ann} at input {size}: perfect predictions of the instances the slots keep")
    print(ceiling_header(args.classes))
    for n in slots:
        print(ceiling_row(n, slot_ceiling(ann, size, n), args.classes), flush=True)


if __name__ == "__main__":
    cli.run(main)
