"""Cityscapes gtFine polygons -> one COCO instance json with the paper's 8 classes.

Input: <root>/gtFine/<split>/<city>/<name>_gtFine_polygons.json. Output: COCO json whose images
have file_name "<city>/<name>_leftImg8bit.png" (relative to <root>/leftImg8bit/<split>/), width
and height; categories 1..8 = cityscapes_labels.CLASSES; segmentations as compressed RLE.

Masks are the visible pixels, rendered as the official tools render them. Cityscapes objects
are listed back to front and overlap; cityscapesscripts' json2instanceImg (which makes the
`*_gtFine_instanceIds.png` that the official evaluation reads) draws every polygon in file order
with PIL ImageDraw.polygon, each overwriting what lies under it, so an occluded car keeps only
its visible part. We draw the same polygons, in the same order, with the same PIL call and skip
rules, but fill each object with its own index: every mask equals its region of the official
instanceIds.png pixel for pixel (tests/test_cityscapes.py checks it). Rasterising each polygon
alone (pycocotools frPyObjects) would count occluded pixels and use another pixel convention.
pycocotools then encodes each mask and gives its area and box.

- "<class>group" polygons (cargroup, persongroup, ...) become iscrowd=1 regions of their class.
- Objects of other labels are not exported, but they are drawn: a pole in front of a car hides
  its pixels, as in the official ground truth. Labels with a negative id (license plate) are not
  drawn (as json2instanceImg); deleted objects are skipped.
- An object left with no visible pixel (hidden by later ones, or a polygon of fewer than two
  points, which PIL cannot draw) is dropped; the drops are counted and warned about once.
"""
import glob
import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import name2label
from PIL import Image, ImageDraw

from fassst.data import coco_rle
from fassst.data.cityscapes_labels import CATEGORIES, CLASSES

_GROUP = "group"


@dataclass
class ConversionStats:
    images: int = 0
    instances: int = 0
    crowd: int = 0
    dropped: list = field(default_factory=list)  # "<file>: object <index> (<label>)" per drop


def resolve_label(label):
    """(cityscapes Label, is_group) for an object's label string; ValueError if unknown."""
    if label in name2label:
        return name2label[label], False
    if label.endswith(_GROUP) and label[:-len(_GROUP)] in name2label:
        return name2label[label[:-len(_GROUP)]], True
    raise ValueError(f"label {label!r} is not a Cityscapes label")


def render_objects(annotation):
    """(H, W) int32 canvas where pixel value k + 1 means object k of annotation.objects is the
    visible one there, 0 means no drawn object. Same order, PIL call and skips as
    cityscapesscripts.preparation.json2instanceImg.createInstanceImage."""
    canvas = Image.new("I", (annotation.imgWidth, annotation.imgHeight), 0)
    drawer = ImageDraw.Draw(canvas)
    for k, obj in enumerate(annotation.objects):
        if obj.deleted:
            continue
        label, _ = resolve_label(obj.label)
        if label.id < 0 or len(obj.polygon) < 2:
            continue
        drawer.polygon(obj.polygon, fill=k + 1)
    return np.array(canvas, dtype=np.int32)


def convert_image(polygons_json, image_id, first_ann_id, stats):
    """(image entry, annotation list) for one *_gtFine_polygons.json."""
    annotation = Annotation()
    annotation.fromJsonFile(polygons_json)
    name = os.path.basename(polygons_json)[:-len("_gtFine_polygons.json")]
    city = os.path.basename(os.path.dirname(polygons_json))
    image = {"id": image_id, "file_name": f"{city}/{name}_leftImg8bit.png",
             "width": annotation.imgWidth, "height": annotation.imgHeight}
    try:
        canvas = render_objects(annotation)
    except ValueError as e:
        raise ValueError(f"{polygons_json}: {e}") from None
    anns = []
    for k, obj in enumerate(annotation.objects):
        if obj.deleted:
            continue
        label, is_group = resolve_label(obj.label)
        if label.name not in CLASSES:
            continue
        rle = coco_rle.encode_one(canvas == k + 1)
        area, bbox = coco_rle.area_and_bbox(rle)
        if area == 0:
            stats.dropped.append(f"{polygons_json}: object {k} ({obj.label})")
            continue
        anns.append({"id": first_ann_id + len(anns), "image_id": image_id,
                     "category_id": CLASSES.index(label.name) + 1, "segmentation": rle,
                     "area": area, "bbox": bbox, "iscrowd": int(is_group)})
        stats.crowd += int(is_group)
    stats.images += 1
    stats.instances += len(anns)
    return image, anns


def polygon_files(root, split):
    """Sorted *_gtFine_polygons.json of one split; FileNotFoundError if there are none."""
    pattern = os.path.join(root, "gtFine", split, "*", "*_gtFine_polygons.json")
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no Cityscapes polygon files match {pattern}")
    return files


def convert_split(root, split):
    """(COCO dataset dict, ConversionStats) for gtFine/<split> under the Cityscapes root.
    Image ids are 1.. in sorted file order, annotation ids 1.. (pycocotools' matcher reads an
    annotation id of 0 as "unmatched")."""
    stats = ConversionStats()
    images, annotations = [], []
    for image_id, path in enumerate(polygon_files(root, split), start=1):
        image, anns = convert_image(path, image_id, len(annotations) + 1, stats)
        images.append(image)
        annotations.extend(anns)
    if stats.dropped:
        shown = "; ".join(stats.dropped[:5]) + (" ..." if len(stats.dropped) > 5 else "")
        warnings.warn(f"cityscapes_to_coco: dropped {len(stats.dropped)} object(s) with no "
                      f"visible pixel: {shown}", stacklevel=2)
    dataset = {"info": {"description": f"Cityscapes gtFine {split}, FASSST's 8 classes"},
               "images": images, "annotations": annotations, "categories": CATEGORIES}
    return dataset, stats


def write_json(dataset, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(dataset, f)
