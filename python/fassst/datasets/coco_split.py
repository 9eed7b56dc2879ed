"""Splits a COCO json by image into a training and a held-out validation json.

Whole images go to one side or the other, each with all of its annotations (crowd regions
included), so no object of a validation photo is ever trained on. Both files keep every
category in the source's order: a model trained on one scores on the other with the same
class indices (and a category absent from the validation images is simply not scored).
The choice depends only on the seed and the set of image ids, not on the file's order.
"""
import json
import os

import numpy as np

from fassst.data.coco_json import check_coco
from fassst.errors import InputError, read_json


def val_count(n_images, n_val=None, val_frac=None, where="annotations"):
    """How many of n_images go to validation: n_val, or round(val_frac * n_images); both sides
    must keep at least one image."""
    if (n_val is None) == (val_frac is None):
        raise InputError("give exactly one of the validation image count or fraction")
    if val_frac is not None:
        if not 0 < val_frac < 1:
            raise InputError(f"validation fraction must be in (0, 1), got {val_frac}")
        n_val = int(round(val_frac * n_images))
    if not 0 < n_val < n_images:
        raise InputError(f"{where}: {n_images} images cannot give {n_val} to validation and keep "
                         f"at least one on each side")
    return n_val


def split_coco(dataset, n_val=None, val_frac=None, seed=0, where="annotations"):
    """(train, val): two COCO dicts from `dataset`, the val one holding n_val images (or
    val_frac of them) drawn by `seed`. `where` names the source in errors."""
    check_coco(dataset, where)  # unique integer ids, annotations of images in the file
    images = dataset["images"]
    ids = sorted(img["id"] for img in images)
    n = val_count(len(ids), n_val, val_frac, where)
    order = np.random.default_rng(seed).permutation(len(ids))
    val_ids = {ids[k] for k in order[:n]}
    anns = dataset.get("annotations", [])

    def part(keep):
        out = {k: v for k, v in dataset.items() if k not in ("images", "annotations")}
        out["images"] = [img for img in images if keep(img["id"])]
        out["annotations"] = [a for a in anns if keep(a["image_id"])]
        return out

    return part(lambda i: i not in val_ids), part(lambda i: i in val_ids)


def split_coco_file(ann, out_dir, n_val=None, val_frac=None, seed=0):
    """Writes out_dir/train.json and out_dir/val.json from the COCO json `ann`; returns their
    paths. Image file names stay as they are: both use the source's image folder."""
    train, val = split_coco(read_json(ann, "annotation file"), n_val, val_frac, seed, where=ann)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, part in (("train", train), ("val", val)):
        path = os.path.join(out_dir, f"{name}.json")
        with open(path, "w") as f:
            json.dump(part, f)
        paths.append(path)
    return tuple(paths)
