"""The --data-root layout: where each split of COCO 2017 and Cityscapes is, and what to fetch
when it is missing (docs/REPRODUCE.md, "Data").

    DIR/coco/annotations/instances_train2017.json, instances_val2017.json,
                         image_info_test-dev2017.json
    DIR/coco/train2017/  val2017/  test2017/
    DIR/cityscapes/gtFine/{train,val}/<city>/*_gtFine_polygons.json, *_gtFine_instanceIds.png
    DIR/cityscapes/leftImg8bit/{train,val}/<city>/*_leftImg8bit.png

These are the official archives unpacked in place. Cityscapes is converted once per split to a
COCO json with the paper's 8 classes (datasets/cityscapes_to_coco.py), cached in the work folder
beside a stamp naming the source, so a data root is only read.
"""
import json
import os

from fassst.data.cityscapes_labels import CATEGORIES as CITYSCAPES_CATEGORIES
from fassst.datasets.cityscapes_to_coco import convert_split, polygon_files, write_json
from fassst.errors import InputError, read_json
from fassst.reproduce.paths import rel

COCO_SITE = "https://cocodataset.org/#download"
CITYSCAPES_SITE = "https://www.cityscapes-dataset.com/downloads/ (free account)"
# relative path under DIR -> (archive that holds it, where to get the archive)
SOURCES = {
    "coco/annotations/instances_train2017.json": ("annotations_trainval2017.zip", COCO_SITE),
    "coco/annotations/instances_val2017.json": ("annotations_trainval2017.zip", COCO_SITE),
    "coco/annotations/image_info_test-dev2017.json": ("image_info_test2017.zip", COCO_SITE),
    "coco/train2017": ("train2017.zip", COCO_SITE),
    "coco/val2017": ("val2017.zip", COCO_SITE),
    "coco/test2017": ("test2017.zip", COCO_SITE),
    "cityscapes/gtFine": ("gtFine_trainvaltest.zip", CITYSCAPES_SITE),
    "cityscapes/leftImg8bit": ("leftImg8bit_trainvaltest.zip", CITYSCAPES_SITE),
}
COCO_SPLITS = {  # split -> (annotation json, image folder)
    "train": ("coco/annotations/instances_train2017.json", "coco/train2017"),
    "val": ("coco/annotations/instances_val2017.json", "coco/val2017"),
    "test-dev": ("coco/annotations/image_info_test-dev2017.json", "coco/test2017"),
}


class MissingDataError(InputError):
    """A file or folder of the data root is missing; the message says which archive holds it."""


class DataRoot:
    def __init__(self, root, cache_dir):
        self.root = os.path.abspath(root)
        self.cache_dir = cache_dir

    def path(self, part):
        return os.path.join(self.root, part)

    def _require(self, *parts):
        for part in parts:
            p = self.path(part)
            if not os.path.exists(p):
                archive, site = SOURCES[part]
                raise MissingDataError(f"{p}: missing; unpack {archive} from {site} into "
                                       f"{os.path.dirname(p)} (docs/REPRODUCE.md, 'Data')")
            if os.path.isdir(p) and not os.listdir(p):
                raise MissingDataError(f"{p}: empty; unpack {SOURCES[part][0]} into it")

    def has(self, part):
        return os.path.exists(self.path(part))

    def check(self, data, test_dev=False):
        """Raises MissingDataError naming the first missing piece a cell on `data` needs."""
        if data == "coco":
            for split in ("train", "val") + (("test-dev",) if test_dev else ()):
                self._require(*COCO_SPLITS[split])
        else:
            self._require("cityscapes/gtFine", "cityscapes/leftImg8bit")
            for split in ("train", "val"):
                for kind in ("gtFine", "leftImg8bit"):
                    self._require_split(f"cityscapes/{kind}", split)

    def _require_split(self, part, split):
        p = os.path.join(self.path(part), split)
        if not os.path.isdir(p):
            raise MissingDataError(f"{p}: missing; {SOURCES[part][0]} from {SOURCES[part][1]} "
                                   f"holds it (docs/REPRODUCE.md, 'Data')")

    def has_test_dev(self):
        return all(self.has(part) for part in COCO_SPLITS["test-dev"])

    def coco(self, split):
        """(annotation json, image folder) of a COCO split."""
        self._require(*COCO_SPLITS[split])
        return tuple(self.path(part) for part in COCO_SPLITS[split])

    def num_classes(self, data):
        """Classes of a data set, from its val json's categories (the train json is ~450 MB)."""
        if data == "cityscapes":
            return len(CITYSCAPES_CATEGORIES)
        ann, _ = self.coco("val")
        doc = read_json(ann, "annotation file")
        cats = doc.get("categories") if isinstance(doc, dict) else None
        if not cats:
            raise InputError(f"{ann}: no categories")
        return len(cats)

    def cityscapes(self, split):
        """(COCO json with the 8 classes, leftImg8bit/<split>, gtFine/<split>); the json is
        converted from the polygons on first use and cached."""
        self.check("cityscapes")
        gt_dir = os.path.join(self.path("cityscapes/gtFine"), split)
        images = os.path.join(self.path("cityscapes/leftImg8bit"), split)
        out = os.path.join(self.cache_dir, f"cityscapes_{split}.json")
        stamp_path = out + ".source"
        stamp = dict(root=self.path("cityscapes"), split=split,
                     files=len(polygon_files(self.path("cityscapes"), split)))
        if os.path.isfile(out) and os.path.isfile(stamp_path):
            with open(stamp_path) as f:
                if json.load(f) == stamp:
                    return out, images, gt_dir
        dataset, stats = convert_split(self.path("cityscapes"), split)
        write_json(dataset, out)
        with open(stamp_path, "w") as f:
            json.dump(stamp, f)
        print(f"[reproduce] {rel(out)}: Cityscapes {split}, {stats.images} images, {stats.instances} "
              f"instances ({stats.crowd} crowd)", flush=True)
        return out, images, gt_dir

    def train_set(self, data):
        return self.coco("train") if data == "coco" else self.cityscapes("train")[:2]
