"""A data root in the --data-root layout made from the sample data set, for smoke runs.

It stands in for COCO and Cityscapes so that a smoke run goes through the same code as a full
one (layout checks, the Cityscapes conversion, the official Cityscapes evaluation, the test-dev
submission). It is tiny and proves nothing about accuracy:

  coco/       train2017 = val2017 = the 14 sample photos (links), one json for both;
              test-dev = the first TEST_DEV_IMAGES photos (image info only, as the real file)
  cityscapes/ the sample photos with persons, cars, buses or trucks, as one city "sample";
              each instance is its mask's largest outer contour, a Cityscapes polygon, drawn
              back to front by size; instanceIds.png made by cityscapesscripts' own
              createInstanceImage, as the dataset's were; train = val
"""
import json
import os
import shutil

import cv2
import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from PIL import Image

from fassst.data.coco_dataset import CocoDataset, decode_mask
from fassst.datasets.sample_data import ensure_sample_data
from fassst.images.read import read_rgb

VERSION = 1  # bump when the content changes
TEST_DEV_IMAGES = 4
CITYSCAPES_NAMES = {"person": "person", "car": "car", "bus": "bus", "truck": "truck"}
CITY = "sample"


def build_sample_root(folder):
    """Builds (once) the stand-in data root in `folder`; returns its path."""
    stamp = os.path.join(folder, "sample_root.json")
    if os.path.isfile(stamp):
        with open(stamp) as f:
            if json.load(f).get("version") == VERSION:
                return folder
    shutil.rmtree(folder, ignore_errors=True)
    ann, images = ensure_sample_data()
    _coco(folder, ann, images)
    n = _cityscapes(folder, ann, images)
    with open(stamp, "w") as f:
        json.dump(dict(version=VERSION, source=ann, cityscapes_images=n), f)
    return folder


def _coco(folder, ann, images):
    coco = os.path.join(folder, "coco")
    os.makedirs(os.path.join(coco, "annotations"))
    for split in ("train2017", "val2017", "test2017"):
        os.symlink(os.path.abspath(images), os.path.join(coco, split))
    for split in ("train2017", "val2017"):
        shutil.copyfile(ann, os.path.join(coco, "annotations", f"instances_{split}.json"))
    with open(ann) as f:
        doc = json.load(f)
    test_dev = dict(info=doc.get("info", {}), images=doc["images"][:TEST_DEV_IMAGES],
                    categories=doc["categories"])
    with open(os.path.join(coco, "annotations", "image_info_test-dev2017.json"), "w") as f:
        json.dump(test_dev, f)


def _polygon(mask):
    """The largest outer contour of a binary mask as [[x, y], ...] (None under 3 points)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)[:, 0, :]
    return c.tolist() if len(c) >= 3 else None


def _cityscapes(folder, ann, images):
    data = CocoDataset(ann, images)
    frames = []
    for i in range(len(data)):
        s = data.load(i)
        objects = []
        for cls, rle, area in zip(s.classes, s.rles, s.areas):
            name = CITYSCAPES_NAMES.get(data.class_names[int(cls)])
            poly = _polygon(decode_mask(rle)) if name else None
            if poly:
                objects.append((area, {"label": name, "polygon": poly, "deleted": 0}))
        if objects:
            objects.sort(key=lambda o: -o[0])  # Cityscapes lists objects back to front
            frames.append((s.path, s.image.shape[:2], [o for _, o in objects]))
    for split in ("train", "val"):
        gt = os.path.join(folder, "cityscapes", "gtFine", split, CITY)
        left = os.path.join(folder, "cityscapes", "leftImg8bit", split, CITY)
        os.makedirs(gt)
        os.makedirs(left)
        for k, (path, (h, w), objects) in enumerate(frames):
            stem = f"{CITY}_{0:06d}_{k:06d}"
            Image.fromarray(read_rgb(path)).save(os.path.join(left, f"{stem}_leftImg8bit.png"))
            polygons = os.path.join(gt, f"{stem}_gtFine_polygons.json")
            with open(polygons, "w") as f:
                json.dump({"imgHeight": int(h), "imgWidth": int(w), "objects": objects}, f)
            annotation = Annotation()
            annotation.fromJsonFile(polygons)
            # Pillow cannot write createInstanceImage's mode "I" image as PNG; the dataset's
            # instanceIds are 16-bit PNGs, so it is saved as one (tests/test_cityscapes.py too).
            ids = np.array(createInstanceImage(annotation, "ids"), dtype=np.uint16)
            Image.fromarray(ids).save(os.path.join(gt, f"{stem}_gtFine_instanceIds.png"))
    return len(frames)
