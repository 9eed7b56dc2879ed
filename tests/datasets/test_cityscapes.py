"""Cityscapes: the polygon -> COCO converter and the official instance-level evaluation, on a
tiny Cityscapes-format tree written here (the dataset cannot be downloaded): 2 images, objects
that occlude each other, crowd groups, other labels, a deleted and an undrawable object. The
ground-truth instanceIds PNGs are drawn by cityscapesscripts' own createInstanceImage (what its
json2instanceImg runs), as the dataset's were. PIL fills rectangles inclusive of both corners:
(x0, y0)-(x1, y1) covers (x1 - x0 + 1) * (y1 - y0 + 1) pixels.
"""
import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as official
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from PIL import Image

from fassst.build_paths import REPO_ROOT
from fassst.data import coco_rle
from fassst.data.cityscapes_labels import CLASSES, LABEL_IDS
from fassst.datasets.cityscapes_to_coco import convert_split
from fassst.evaluation.cityscapes_eval import (CityscapesInstanceEvaluator, core_name,
                                              evaluate_coco_results)
from fassst.evaluation.coco_evaluator import load_coco_gt

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
W, H = 160, 96


def rect(label, x0, y0, x1, y1, **extra):
    return {"label": label, "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], **extra}


SCENE = {  # objects back to front, as in Cityscapes files
    ("aachen", "aachen_000000_000019"): [
        rect("road", 0, 60, 159, 95),
        rect("truck", 2, 2, 6, 6),            # hidden by the building: no visible pixel
        rect("building", 0, 0, 9, 9),
        rect("car", 10, 20, 49, 59),           # 1600 px, 300 hidden by the next car: 1300
        rect("car", 40, 30, 79, 59),           # 1200 px, 90 hidden by the pole: 1110
        rect("person", 90, 10, 104, 59),       # 750
        rect("cargroup", 110, 30, 149, 59),    # crowd car, 1200
        rect("persongroup", 120, 0, 139, 9),   # crowd person, 200
        rect("pole", 60, 0, 62, 59),
        rect("caravan", 150, 60, 159, 95),     # an instance label outside the 8: not exported
        rect("license plate", 15, 40, 25, 45),  # id -1: not drawn, hides nothing
        rect("car", 0, 0, 159, 95, deleted=1),
    ],
    ("bochum", "bochum_000000_000313"): [
        rect("sky", 0, 0, 159, 40),
        rect("rider", 20, 10, 39, 49),         # 800 px, rows 35.. hidden by the bicycle: 500
        rect("bicycle", 15, 35, 49, 59),       # 875
        rect("bus", 60, 5, 119, 55),           # 3060
        {"label": "motorcycle", "polygon": [[125, 80], [135, 80], [130, 80]]},  # a line: 11 px
    ],
}
# (file stem, class, iscrowd, visible area, [x, y, w, h]) in file order
EXPECTED = [
    ("aachen_000000_000019", "car", 0, 1300, [10, 20, 40, 40]),
    ("aachen_000000_000019", "car", 0, 1110, [40, 30, 40, 30]),
    ("aachen_000000_000019", "person", 0, 750, [90, 10, 15, 50]),
    ("aachen_000000_000019", "car", 1, 1200, [110, 30, 40, 30]),
    ("aachen_000000_000019", "person", 1, 200, [120, 0, 20, 10]),
    ("bochum_000000_000313", "rider", 0, 500, [20, 10, 20, 25]),
    ("bochum_000000_000313", "bicycle", 0, 875, [15, 35, 35, 25]),
    ("bochum_000000_000313", "bus", 0, 3060, [60, 5, 60, 51]),
    ("bochum_000000_000313", "motorcycle", 0, 11, [125, 80, 11, 1]),
]


def write_tree(root, scene, split="val", official_png=True):
    for (city, stem), objects in scene.items():
        folder = os.path.join(root, "gtFine", split, city)
        os.makedirs(folder, exist_ok=True)
        polygons = os.path.join(folder, f"{stem}_gtFine_polygons.json")
        with open(polygons, "w") as f:
            json.dump({"imgHeight": H, "imgWidth": W, "objects": objects}, f)
        if official_png:
            annotation = Annotation()
            annotation.fromJsonFile(polygons)
            # json2instanceImg would save the mode "I" image as is, which Pillow 13 refuses to
            # write as PNG; the dataset's files are 16-bit PNGs, so save it as one.
            ids = np.array(createInstanceImage(annotation, "ids"), dtype=np.uint16)
            Image.fromarray(ids).save(os.path.join(folder, f"{stem}_gtFine_instanceIds.png"))
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_tree(str(tmp_path_factory.mktemp("cityscapes")), SCENE)


@pytest.fixture(scope="module")
def converted(tree):
    with pytest.warns(UserWarning, match=r"dropped 1 object.*object 1 \(truck\)"):
        return convert_split(tree, "val")


def gt_dir(tree):
    return os.path.join(tree, "gtFine", "val")


def test_label_ids_are_the_official_ones():
    assert LABEL_IDS == (24, 25, 26, 27, 28, 31, 32, 33)
    args = copy.deepcopy(official.args)
    official.setInstanceLabels(args)
    assert args.instLabels == list(CLASSES)  # the 8 the official script evaluates, same order


def test_converter_images_categories_annotations(converted):
    dataset, stats = converted
    assert dataset["images"] == [
        {"id": 1, "file_name": "aachen/aachen_000000_000019_leftImg8bit.png", "width": W,
         "height": H},
        {"id": 2, "file_name": "bochum/bochum_000000_000313_leftImg8bit.png", "width": W,
         "height": H}]
    assert [(c["id"], c["name"]) for c in dataset["categories"]] == list(
        enumerate(CLASSES, start=1))
    stems = {img["id"]: core_name(img["file_name"]) for img in dataset["images"]}
    got = [(stems[a["image_id"]], CLASSES[a["category_id"] - 1], a["iscrowd"], a["area"],
            a["bbox"]) for a in dataset["annotations"]]
    assert got == EXPECTED
    assert [a["id"] for a in dataset["annotations"]] == list(range(1, len(EXPECTED) + 1))
    assert (stats.images, stats.instances, stats.crowd, len(stats.dropped)) == (2, 9, 2, 1)
    json.dumps(dataset)  # json-ready: RLE counts are str


def test_converter_masks_equal_official_instance_ids_png(tree, converted):
    """Each exported mask is exactly its region of the PNG json2instanceImg drew; crowd regions
    are the pixels holding the bare class id (the official encoding of a group)."""
    dataset, _ = converted
    for img in dataset["images"]:
        city, name = img["file_name"].split("/")
        stem = name[:-len("_leftImg8bit.png")]
        png = np.array(Image.open(os.path.join(gt_dir(tree), city,
                                               f"{stem}_gtFine_instanceIds.png")))
        anns = [a for a in dataset["annotations"] if a["image_id"] == img["id"]]
        for label_id in LABEL_IDS:
            mine = [a for a in anns if LABEL_IDS[a["category_id"] - 1] == label_id]
            official_ids = [v for v in np.unique(png) if v // 1000 == label_id]
            assert len([a for a in mine if not a["iscrowd"]]) == len(official_ids)
            crowd = np.zeros((H, W), bool)
            for a in mine:
                mask = coco_rle.decode(a["segmentation"])
                if a["iscrowd"]:
                    crowd |= mask
                else:
                    (value,) = np.unique(png[mask])
                    assert value in official_ids and np.array_equal(png == value, mask)
            assert np.array_equal(crowd, png == label_id)


def test_converter_drops_undrawable_and_rejects_unknown_labels(tmp_path):
    scene = {("ulm", "ulm_000000_000001"): [
        rect("car", 10, 10, 30, 30), {"label": "person", "polygon": [[5, 5]]}]}
    root = write_tree(str(tmp_path / "a"), scene, official_png=False)  # PIL cannot draw it
    with pytest.warns(UserWarning, match=r"dropped 1 object.*object 1 \(person\)"):
        dataset, stats = convert_split(root, "val")
    assert [a["area"] for a in dataset["annotations"]] == [441.0] and len(stats.dropped) == 1
    scene = {("ulm", "ulm_000000_000001"): [rect("unicorn", 1, 1, 5, 5)]}
    root = write_tree(str(tmp_path / "b"), scene, official_png=False)
    with pytest.raises(ValueError, match="ulm_000000_000001_gtFine_polygons.json: label 'unicorn'"):
        convert_split(root, "val")
    with pytest.raises(FileNotFoundError):
        convert_split(root, "train")


def gt_results(dataset, skip=()):
    """The non-crowd ground truth as COCO results with score 1 (ann ids in skip left out)."""
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
             "bbox": a["bbox"], "segmentation": a["segmentation"]}
            for a in dataset["annotations"] if not a["iscrowd"] and a["id"] not in skip]


def test_official_eval_ground_truth_as_predictions(tree, converted, tmp_path):
    """Through scripts/eval.py: AP 100 for every class with ground truth of >= 100 px (the
    official minimum region); NaN for truck, train (none) and motorcycle (11 px, ignored)."""
    dataset, _ = converted
    (tmp_path / "gt.json").write_text(json.dumps(dataset))
    (tmp_path / "res.json").write_text(json.dumps(gt_results(dataset)))
    (tmp_path / "targets.json").write_text(json.dumps({"targets": [
        ["synthetic", "cityscapes/AP", 100.0, 1e-6, "GT as predictions"],
        ["synthetic", "segm/AP", 100.0, 1e-6, "GT as predictions"]]}))
    run = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "eval.py"), "--ann",
         str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json"), "--out",
         str(tmp_path / "out"), "--cityscapes-gt", gt_dir(tree), "--targets",
         str(tmp_path / "targets.json"), "--check", "synthetic"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())["cityscapes"]
    assert (m["AP"], m["AP50"]) == (100.0, 100.0)
    for name in CLASSES:
        present = name in ("person", "rider", "car", "bicycle", "bus")
        assert m["per_class"][name] == ({"AP": 100.0, "AP50": 100.0} if present
                                        else {"AP": None, "AP50": None}), name
    assert "| FASSST | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | - | 100.0 | - | - | 100.0 |" \
        in run.stdout


def test_official_eval_drop_one_car_and_empty(tree, converted, tmp_path):
    """Without one of the two cars, car recall is 1/2 at precision 1: the official step-wise
    integration gives car AP 50, the mean over the 5 classes 90. No predictions: AP 0."""
    dataset, _ = converted
    coco_gt = load_coco_gt(dataset)
    m = evaluate_coco_results(coco_gt, gt_results(dataset, skip={2}), gt_dir(tree), tmp_path)
    assert m["per_class"]["car"] == {"AP": 50.0, "AP50": 50.0}
    assert m["AP"] == pytest.approx(90.0) and m["per_class"]["bus"]["AP"] == 100.0

    ev = CityscapesInstanceEvaluator(gt_dir(tree), tmp_path / "empty")
    for img in dataset["images"]:
        ev.process(img["file_name"], {"masks": np.zeros((0, H, W), bool), "labels": [],
                                      "scores": []})
    m = ev.evaluate()
    assert (m["AP"], m["per_class"]["car"]["AP"]) == (0.0, 0.0)
    assert math.isnan(m["per_class"]["train"]["AP"])
    assert not os.path.exists(os.path.join(os.getcwd(), "matches.json"))  # kept in work_dir
    ev.reset()
    with pytest.raises(ValueError, match="paste them back"):
        ev.process("aachen_000000_000019", {"masks": np.ones((1, 2, 2), bool), "labels": [0],
                                         "scores": [1.0]})


def test_official_eval_unmatched_prediction_inside_a_crowd_region(tree, converted, tmp_path):
    """Cars have ground truth and one car prediction, but it lies inside the crowd car region
    (ignored, not a false positive) and matches no car: the official script's AP code then
    indexes an empty array (IndexError). The evaluator gives car AP 0: recall 0."""
    dataset, _ = converted
    ev = CityscapesInstanceEvaluator(gt_dir(tree), tmp_path / "void")
    for img in dataset["images"]:
        masks = np.zeros((0, H, W), bool)
        labels, scores = [], []
        if core_name(img["file_name"]) == "aachen_000000_000019":
            masks = np.zeros((1, H, W), bool)
            masks[0, 30:60, 110:150] = True  # the cargroup's pixels
            labels, scores = [CLASSES.index("car")], [0.9]
        ev.process(img["file_name"], {"masks": masks, "labels": labels, "scores": scores})
    m = ev.evaluate()
    assert m["per_class"]["car"] == {"AP": 0.0, "AP50": 0.0}
    assert m["AP"] == 0.0
