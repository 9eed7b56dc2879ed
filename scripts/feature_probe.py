#!/usr/bin/env python3
"""How far a model's features, held fixed, carry to photos not seen: two linear probes fitted on
one COCO set and scored on another (diagnostics/feature_probe.py says what each measures).

  where  logistic regression per grid cell: is the centre of a --class box in this cell?
         (AUC and AP; a probe on the cell's position alone is the floor)
  boxes  ridge regression of every box's edges from the cell holding its centre and the 8
         around it; the share within IoU 0.5 given that cell (the mean offset is the floor)

    scripts/feature_probe.py --config fassst_cpu_custom --weights imagenet \\
        --ann split/train.json --images DIR --val-ann split/val.json --val-images DIR --class person

--weights imagenet probes the converted ImageNet backbone; a trained .caffemodel probes what
training made of it, and adds the network's own class output per slot, scored the same way.
--blob picks another blob than the IAM's input (E); --grid another cell grid than the config's
slots. The fit set is read with mirrored copies as well (--no-flips: not). A benchmark of the
data and the features: nothing here is trained in Caffe.
"""
import argparse
import math
import os

import _init_paths  # noqa: F401

from fassst import cli
from fassst.config import load_config
from fassst.data.coco_dataset import CocoDataset
from fassst.diagnostics.feature_probe import box_probe, format_report, where_probe
from fassst.diagnostics.net_features import collect, head_input, open_net
from fassst.errors import InputError
from fassst.weights.convert_mobilenet_v2 import weights_file

WHERE_LAMS = (1e-3, 1e-2, 1e-1)
BOX_LAMS = (1.0, 10.0, 100.0, 1000.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True, help=".caffemodel, or 'imagenet' (backbone only)")
    ap.add_argument("--ann", required=True, help="COCO json the probes are fitted on")
    ap.add_argument("--images", required=True, help="image folder of --ann")
    ap.add_argument("--val-ann", required=True, help="COCO json they are scored on")
    ap.add_argument("--val-images", required=True, help="image folder of --val-ann")
    ap.add_argument("--class", dest="class_name", default="person")
    ap.add_argument("--blob", help="blob to probe (default: the IAM's input, E)")
    ap.add_argument("--grid", type=cli.positive_int, help="cells per side (default: sqrt of the slots)")
    ap.add_argument("--no-flips", action="store_true", help="fit on the photos as they are only")
    args = ap.parse_args()
    dataset = CocoDataset(args.ann, args.images)
    cfg = load_config(args.config, num_classes=dataset.num_classes)
    weights = weights_file(cfg, args.weights)
    net = open_net(cfg, weights)
    blob = args.blob or head_input(net)
    grid = args.grid or math.isqrt(cfg.num_slots)
    try:
        own = args.weights != "imagenet" and grid * grid == cfg.num_slots
        fit = collect(net, cfg, args.ann, args.images, args.class_name, grid, blob,
                      flips=not args.no_flips, own=own)
        scored = collect(net, cfg, args.val_ann, args.val_images, args.class_name, grid, blob,
                         own=own)
    except ValueError as e:  # an unknown blob or class, named by collect
        raise InputError(str(e)) from None
    for what, data in (("fit", fit), ("scored", scored)):
        if not data.cell_label.any() or not data.box_is_class.any():
            raise InputError(f"{args.ann if what == 'fit' else args.val_ann}: no "
                             f"{args.class_name!r} instance to probe")
    print(f"{cfg.name}, {os.path.basename(weights)}, blob {blob} "
          f"({fit.cells.shape[1]} channels), {grid} x {grid} cells at input {cfg.input_size}\n")
    print(format_report(where_probe(fit, scored, WHERE_LAMS), box_probe(fit, scored, BOX_LAMS),
                        args.class_name, fit, scored))


if __name__ == "__main__":
    cli.run(main)
