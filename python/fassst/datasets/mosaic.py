"""A larger, harder proxy data set built from a COCO set: 2 x 2 mosaics of its photos.

Why: the sample set (14 photos, about 8 instances each) cannot show what happens when training
meets more images, more instances than slots and small objects (the 128-photo collapse in
docs/EXPERIMENTS.md). Each mosaic tile is one source photo, flipped at random and resized to the
tile (aspect kept, letterboxed in the tile with grey); so a mosaic holds about four photos'
instances at half their size, often more than the 16 slots of the demo config. Masks are moved
with their photos (nearest-neighbour resampling) and stored as COCO RLE; boxes and areas are
recomputed from the moved masks, so the json is a plain COCO instance file.
"""
import json
import os

import cv2
import numpy as np
from tqdm import tqdm

from fassst.data import coco_rle
from fassst.data.coco_dataset import CocoDataset, decode_mask


def _place(src, tile, rng):
    """Scale and offset that fit an (h, w) photo into a tile x tile square, and a flip."""
    h, w = src
    scale = tile / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return nh, nw, (tile - nh) // 2, (tile - nw) // 2, bool(rng.integers(2))


def make_mosaics(ann, images, out_dir, count, side=512, seed=0, quiet=False):
    """Writes `count` mosaics (side x side JPEG) and OUT/annotations.json; returns its path.

    Deterministic in (source set, count, side, seed). Crowd regions move like instances.
    """
    src = CocoDataset(ann, images)
    if len(src) < 1:
        raise ValueError(f"{ann}: no images to build mosaics from")
    rng = np.random.default_rng(seed)
    tile = side // 2
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    cats = src.coco.loadCats(src.category_ids)
    out = {"info": {"description": f"2x2 mosaics of {os.path.basename(ann)}, seed {seed}"},
           "images": [], "annotations": [], "categories": cats}
    cache = {}
    for m in tqdm(range(count), desc="mosaics", unit="img", disable=quiet):
        canvas = np.full((side, side, 3), 114, np.uint8)
        picks = rng.integers(len(src), size=4)
        tiles = []  # provenance: which photo went where, flipped or not
        for t, k in enumerate(picks):
            if k not in cache:
                cache[k] = src.load(int(k))
            s = cache[k]
            nh, nw, dy, dx, flip = _place(s.image.shape[:2], tile, rng)
            oy, ox = (t // 2) * tile + dy, (t % 2) * tile + dx
            img = cv2.resize(s.image, (nw, nh), interpolation=cv2.INTER_AREA)
            canvas[oy:oy + nh, ox:ox + nw] = img[:, ::-1] if flip else img
            tiles.append({"file_name": os.path.basename(s.path), "box": [ox, oy, nw, nh],
                          "flip": flip})
            crowds = src.coco.loadAnns(src.coco.getAnnIds(imgIds=s.image_id, iscrowd=True))
            for rle, cat, crowd in ([(r, src.category_ids[int(c)], 0)
                                     for r, c in zip(s.rles, s.classes)]
                                    + [(src.coco.annToRLE(a), a["category_id"], 1)
                                       for a in crowds if a.get("iscrowd")]):
                mask = cv2.resize(decode_mask(rle).astype(np.uint8), (nw, nh),
                                  interpolation=cv2.INTER_NEAREST)
                if flip:
                    mask = mask[:, ::-1]
                if not mask.any():
                    continue  # too small to survive the halving: not an instance any more
                full = np.zeros((side, side), np.uint8)
                full[oy:oy + nh, ox:ox + nw] = mask
                enc = coco_rle.encode_one(full)
                area, box = coco_rle.area_and_bbox(enc)
                out["annotations"].append({"id": len(out["annotations"]) + 1, "image_id": m + 1,
                                           "category_id": cat, "segmentation": enc,
                                           "area": area, "bbox": box, "iscrowd": crowd})
        name = f"mosaic_{m:05d}.jpg"
        cv2.imwrite(os.path.join(out_dir, "images", name), canvas[:, :, ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        out["images"].append({"id": m + 1, "file_name": name, "height": side, "width": side,
                              "tiles": tiles})
    path = os.path.join(out_dir, "annotations.json")
    with open(path, "w") as f:
        json.dump(out, f)
    return path



def describe(ann_path):
    """One-paragraph summary: images, instances, instances per image, per category."""
    with open(ann_path) as f:
        doc = json.load(f)
    inst = [a for a in doc["annotations"] if not a["iscrowd"]]
    per_img = np.bincount([a["image_id"] for a in inst], minlength=len(doc["images"]) + 1)[1:]
    names = {c["id"]: c["name"] for c in doc["categories"]}
    per_cat = {n: sum(1 for a in inst if names[a["category_id"]] == n) for n in names.values()}
    return (f"{ann_path}: {len(doc['images'])} images, {len(inst)} instances "
            f"({per_img.mean():.1f} per image, max {per_img.max()}), "
            f"{len(doc['annotations']) - len(inst)} crowd regions; per category: "
            + ", ".join(f"{n} {c}" for n, c in per_cat.items()))
