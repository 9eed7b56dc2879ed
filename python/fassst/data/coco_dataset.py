"""COCO-format instance annotations for training, read with pycocotools.

Box convention (COCO's): continuous pixel-edge coordinates, no +1. A bbox [x, y, w, h] covers
x .. x + w; boxes here are (x1, y1, x2, y2) = (x, y, x + w, y + h) in original image pixels,
clipped to the image.
Classes: contiguous 0..C-1 in the order of the sorted category ids; `category_ids[c]` is class
c's COCO id (evaluation maps predictions back with it).
Masks stay compressed RLEs until a caller decodes the few it needs (`decode_mask`): COCO images
carry up to hundreds of annotations, of which at most n slots are used.

What is dropped, and counted (per load, so a data layer can report counts per epoch):
  degenerate_box: box narrower or lower than 1 px after clipping to the image;
  zero_area: a segmentation that covers no pixel (also empty or malformed polygons).
Crowd regions (iscrowd=1) are kept apart from the instances and never become training slots.
Images with no instances are kept: they train the classifier's negatives.
The file is checked before pycocotools indexes it, and each annotation's geometry when its image
is loaded (data/coco_json.py): a malformed file is a DatasetError naming where, never a KeyError
or a crash inside pycocotools' C code.
"""
import contextlib
import io
import logging
import os
import warnings
from typing import List, NamedTuple

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from fassst.data.coco_json import DatasetError, check_segmentation, read_coco
from fassst.errors import InputError
from fassst.images.read import read_rgb

log = logging.getLogger(__name__)

DROP_REASONS = ("degenerate_box", "zero_area")


class Sample(NamedTuple):
    """One image and its usable annotations. k instances, g crowd regions."""
    image_id: int
    path: str
    image: np.ndarray      # (H, W, 3) uint8 RGB; None from CocoDataset.instances
    boxes: np.ndarray      # (k, 4) float32 (x1, y1, x2, y2), original pixels
    classes: np.ndarray    # (k,) int64 contiguous class index
    areas: np.ndarray      # (k,) float64 mask area in pixels
    rles: List[dict]       # k compressed RLEs (decode_mask)
    crowd_boxes: np.ndarray  # (g, 4) float32
    crowd_rles: List[dict]
    dropped: dict          # reason -> count, reasons in DROP_REASONS


def decode_mask(rle):
    """(H, W) uint8 0/1 mask of a compressed RLE."""
    with warnings.catch_warnings():  # pycocotools 2.0.11 under numpy 2: an __array__ notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle)


def uncompressed_rle(mask):
    """COCO's uncompressed RLE of a binary (H, W) mask: column-major run lengths, zeros first."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def segmentation_to_rle(segm, height, width, where):
    """Compressed RLE of a COCO segmentation (polygons, RLE or uncompressed RLE), or None if it
    covers nothing. Polygons with fewer than 3 points are left out (pycocotools would misread a
    4-value list as a box); `where` names the annotation in errors (DatasetError)."""
    check_segmentation(segm, height, width, where)
    if isinstance(segm, list):
        polys = [p for p in segm if len(p) >= 6 and len(p) % 2 == 0]
        if not polys:
            return None
        return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, height, width)
    counts = segm["counts"]
    return {"size": [height, width],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


class CocoDataset:
    """Images and instance annotations of one COCO json; `load(i)` reads image i.

    ann_file: the COCO json. image_dir: the folder that images' file_name are relative to.
    """

    def __init__(self, ann_file, image_dir):
        if not os.path.isfile(ann_file):
            raise DatasetError(f"{ann_file}: no such annotation file")
        try:
            doc = read_coco(ann_file)
        except DatasetError:
            raise
        except InputError as e:  # empty, or not JSON
            raise DatasetError(f"{ann_file}: not a readable COCO json "
                               f"({str(e).removeprefix(f'{ann_file}: ')})") from None
        self.coco = COCO()
        self.coco.dataset = doc
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            self.coco.createIndex()
        self.ann_file, self.image_dir = ann_file, image_dir
        cats = sorted(self.coco.loadCats(self.coco.getCatIds()), key=lambda c: c["id"])
        if not cats:
            raise DatasetError(f"{ann_file}: no categories")
        self.category_ids = [c["id"] for c in cats]
        self.class_names = [c.get("name", str(c["id"])) for c in cats]
        self._class_of = {cid: i for i, cid in enumerate(self.category_ids)}
        self.image_ids = sorted(self.coco.getImgIds())
        anns = self.coco.dataset.get("annotations", [])
        crowd = sum(1 for a in anns if a.get("iscrowd", 0))
        bad_boxes = sum(1 for a in anns if "bbox" in a and min(a["bbox"][2:4]) < 1)
        log.info("%s: %d images, %d instances, %d crowd regions, %d classes", ann_file,
                 len(self.image_ids), len(anns) - crowd, crowd, len(cats))
        if bad_boxes:
            log.warning("%s: %d annotations have boxes under 1 px wide or high; they are "
                        "dropped (and counted) when their image is loaded", ann_file, bad_boxes)

    @property
    def num_classes(self):
        return len(self.category_ids)

    def __len__(self):
        return len(self.image_ids)

    def image_path(self, index):
        return os.path.join(self.image_dir, self.coco.imgs[self.image_ids[index]]["file_name"])

    def load(self, index):
        """Sample of image `index` (0..len-1). Raises fassst.images.read.ImageReadError naming the
        file when it is missing or undecodable, DatasetError when its size contradicts the json."""
        info = self.coco.imgs[self.image_ids[index]]
        path = self.image_path(index)
        image = read_rgb(path)
        h, w = int(info["height"]), int(info["width"])
        if image.shape[:2] != (h, w):
            raise DatasetError(f"{path}: image is {image.shape[1]}x{image.shape[0]} (WxH) but "
                               f"{self.ann_file} says {w}x{h}")
        return self.instances(index)._replace(image=image)

    def instances(self, index):
        """Sample of image `index` without its pixels (image None): the annotations exactly as
        training uses them, for tools that need no photo (evaluation/slot_ceiling.py)."""
        img_id = self.image_ids[index]
        info = self.coco.imgs[img_id]
        path = self.image_path(index)
        h, w = int(info["height"]), int(info["width"])
        dropped = dict.fromkeys(DROP_REASONS, 0)
        inst, crowd = ([], [], [], []), ([], [])
        for ann in self.coco.imgToAnns.get(img_id, []):
            where = f"{self.ann_file}: annotation {ann.get('id')} (image {path})"
            rle = segmentation_to_rle(ann.get("segmentation", []), h, w, where)
            area = float(mask_utils.area(rle)) if rle is not None else 0.0
            if area <= 0:
                dropped["zero_area"] += 1
                continue
            x, y, bw, bh = ann["bbox"] if "bbox" in ann else mask_utils.toBbox(rle).tolist()
            box = np.array([max(x, 0.0), max(y, 0.0), min(x + bw, w), min(y + bh, h)], np.float32)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                dropped["degenerate_box"] += 1
                continue
            if ann.get("iscrowd", 0):
                crowd[0].append(box)
                crowd[1].append(rle)
                continue
            for column, value in zip(inst, (box, self._class_of[ann["category_id"]], area, rle)):
                column.append(value)
        boxes, classes, areas, rles = inst
        return Sample(img_id, path, None,
                      np.array(boxes, np.float32).reshape(-1, 4),
                      np.array(classes, np.int64), np.array(areas, np.float64), rles,
                      np.array(crowd[0], np.float32).reshape(-1, 4), crowd[1], dropped)
